//! Fixed-window counters in the control schema (`control.throttles`), shared by every
//! server instance. One upsert counts a hit and answers the count, so concurrent
//! requests are counted one by one: 60 concurrent attempts against a bound of 10 let
//! exactly 10 through.

use sqlx::PgPool;

use crate::error::{Error, Result};

/// Counts one hit on `key`; refuses with 429 (and the seconds until the window ends)
/// when this hit is past `max` in the current window of `window_secs`.
pub async fn hit(pool: &PgPool, key: &str, max: u32, window_secs: i64) -> Result<()> {
    let (hits, left): (i32, f64) = sqlx::query_as(
        "INSERT INTO control.throttles AS t (key, window_started_at, hits) VALUES ($1, now(), 1) \
         ON CONFLICT (key) DO UPDATE SET \
           window_started_at = CASE WHEN t.window_started_at <= now() - make_interval(secs => $2) \
                                    THEN now() ELSE t.window_started_at END, \
           hits = CASE WHEN t.window_started_at <= now() - make_interval(secs => $2) THEN 1 ELSE t.hits + 1 END \
         RETURNING hits, extract(epoch FROM t.window_started_at + make_interval(secs => $2) - now())::float8",
    )
    .bind(key)
    .bind(window_secs as f64)
    .fetch_one(pool)
    .await?;
    if hits as i64 > max as i64 {
        return Err(Error::RateLimited { retry_after_secs: left.ceil().max(1.0) as u64 });
    }
    Ok(())
}

/// Gives one hit back (an attempt that succeeded should not count against a shared
/// address).
pub async fn refund(pool: &PgPool, key: &str) -> Result<()> {
    sqlx::query("UPDATE control.throttles SET hits = greatest(hits - 1, 0) WHERE key = $1")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

/// Clears the count of `key` (a successful login clears its account's failures).
pub async fn clear(pool: &PgPool, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM control.throttles WHERE key = $1").bind(key).execute(pool).await?;
    Ok(())
}

/// Deletes counters whose window ended long ago (a jobs step).
pub async fn sweep(pool: &PgPool, older_than_secs: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM control.throttles WHERE window_started_at < now() - make_interval(secs => $1)")
        .bind(older_than_secs as f64)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
