//! The alliance schema and the shared currency's place in each merchant's schema.

use sqlx::PgConnection;

use crate::db::select_schema;
use crate::directory::Alliance;
use crate::error::{Error, Result};
use crate::schema::apply_pending;

/// Advisory-lock namespace of alliance schema migrations.
const LOCK_NS_ALLIANCE_MIGRATE: i32 = 0x616c_6c69;

/// Creates the alliance schema if it is missing, migrates it to the latest version and
/// adds the shared currency (idempotent; run inside the caller's transaction). Leaves
/// the alliance schema selected. Returns the migrations applied.
pub async fn ensure(conn: &mut PgConnection, a: &Alliance) -> Result<usize> {
    if a.schema_name != super::schema_name(a.id) {
        return Err(Error::Internal(anyhow::anyhow!("alliance {} has schema {:?}", a.id, a.schema_name)));
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCK_NS_ALLIANCE_MIGRATE)
        .bind(i32::try_from(a.id.get() % i64::from(i32::MAX)).unwrap_or(0))
        .execute(&mut *conn)
        .await?;
    // "a_" and digits from the directory's sequence (checked above): no input reaches this SQL.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", a.schema_name)))
        .execute(&mut *conn)
        .await?;
    select_schema(conn, &a.schema_name).await?;
    let applied = apply_pending(conn, migrations::TENANT).await?;
    sqlx::query(
        "INSERT INTO currencies (code, name, spendable, transferable, expires, drives_level) \
         VALUES ($1, $2, true, true, false, false) ON CONFLICT (code) DO NOTHING",
    )
    .bind(&a.currency_code)
    .bind(&a.currency_name)
    .execute(&mut *conn)
    .await?;
    Ok(applied)
}

/// Lists the alliance's currency in the merchant schema selected on `conn` (idempotent).
/// Refused if the merchant already has a currency of its own under that code.
pub async fn join(conn: &mut PgConnection, a: &Alliance) -> Result<()> {
    sqlx::query(
        "INSERT INTO currencies (code, name, spendable, transferable, expires, drives_level, shared) \
         VALUES ($1, $2, true, true, false, false, true) ON CONFLICT (code) DO NOTHING",
    )
    .bind(&a.currency_code)
    .bind(&a.currency_name)
    .execute(&mut *conn)
    .await?;
    let shared: bool = sqlx::query_scalar("SELECT shared FROM currencies WHERE code = $1")
        .bind(&a.currency_code)
        .fetch_one(&mut *conn)
        .await?;
    if !shared {
        return Err(Error::conflict(
            "currency_code_taken",
            format!(
                "this mall has a currency of its own named {:?}, the code of the alliance's currency",
                a.currency_code
            ),
        ));
    }
    Ok(())
}
