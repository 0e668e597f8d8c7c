//! Applies numbered SQL migrations to one schema (the one selected on the connection),
//! recording each with its checksum in that schema's `schema_migrations`: an edited or
//! unknown migration is refused. `migrate` runs this over the fleet; provisioning a
//! tenant or an alliance runs it for one schema.

use migrations::Migration;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::error::{Error, Result};

fn checksum(m: &Migration) -> Vec<u8> {
    Sha256::digest(m.sql.as_bytes()).to_vec()
}

const CREATE_HISTORY: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version bigint PRIMARY KEY,
    name text NOT NULL,
    checksum bytea NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// Applies the pending migrations of `list` in the schema currently selected on `conn`
/// (which must be inside a transaction). Returns how many were applied.
pub async fn apply_pending(conn: &mut PgConnection, list: &[Migration]) -> Result<usize> {
    sqlx::raw_sql(CREATE_HISTORY).execute(&mut *conn).await?;
    let applied: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM schema_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await?;
    for (version, sum) in &applied {
        match list.iter().find(|m| m.version == *version) {
            Some(m) if checksum(m) == *sum => {}
            Some(m) => {
                return Err(Error::Internal(anyhow::anyhow!(
                    "migration {} was edited after it was applied (checksum differs); write a new migration instead",
                    m.name
                )));
            }
            None => {
                return Err(Error::Internal(anyhow::anyhow!(
                    "the database has migration version {version}, which this binary does not know: it is older than the schema"
                )));
            }
        }
    }
    let mut count = 0;
    for m in list.iter().filter(|m| !applied.iter().any(|(v, _)| *v == m.version)) {
        sqlx::raw_sql(m.sql)
            .execute(&mut *conn)
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("migration {} failed: {e}", m.name)))?;
        sqlx::query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(checksum(m))
            .execute(&mut *conn)
            .await?;
        count += 1;
    }
    Ok(count)
}
