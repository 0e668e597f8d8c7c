//! Dropping what a benchmark created: tenant schemas and directory rows, and the
//! platform operator a run signed in with.

use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::progress;

/// Tenant schemas dropped per transaction (each drop takes a lock per object of the
/// schema; this stays well inside PostgreSQL's default lock table).
const DROP_BATCH: usize = 25;

/// Drops the tenants whose slug matches `pattern` (a PostgreSQL regular expression):
/// their schemas, audit rows, development outbox rows and directory rows (staff, API
/// keys and sessions go with the directory row), `DROP_BATCH` per transaction.
/// Returns how many were dropped and how long it took.
pub async fn drop_tenants(pool: &PgPool, pattern: &str, label: &str) -> anyhow::Result<(usize, Duration)> {
    let started = Instant::now();
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, schema_name FROM control.tenants WHERE slug ~ $1 ORDER BY id")
            .bind(pattern)
            .fetch_all(pool)
            .await?;
    let bar = progress::bar(rows.len() as u64, label);
    for batch in rows.chunks(DROP_BATCH) {
        let mut schemas = Vec::with_capacity(batch.len());
        for (_, s) in batch {
            // The directory's CHECK guarantees t_<digits>; verified again because the
            // name is formatted into SQL.
            anyhow::ensure!(
                s.strip_prefix("t_").is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())),
                "unexpected schema name {s:?} in control.tenants"
            );
            schemas.push(format!("\"{s}\""));
        }
        let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {} CASCADE", schemas.join(", "))))
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM control.audit_log WHERE tenant_id = ANY($1)").bind(&ids).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM control.dev_outbox WHERE tenant_id = ANY($1)").bind(&ids).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM control.tenants WHERE id = ANY($1)").bind(&ids).execute(&mut *tx).await?;
        tx.commit().await?;
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    Ok((rows.len(), started.elapsed()))
}

/// Deletes platform operators whose e-mail matches `pattern` (a PostgreSQL regular
/// expression) with their sessions; returns how many.
pub async fn drop_platform_staff(pool: &PgPool, pattern: &str) -> anyhow::Result<u64> {
    let done = sqlx::query("DELETE FROM control.staff_users WHERE scope = 'platform' AND email ~ $1")
        .bind(pattern)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
