//! Idempotency of external writes (L8). The key row is inserted in the same transaction
//! as the write's effects: a concurrent duplicate blocks on the unique index until the
//! first commits (then replays its stored response) or rolls back (then runs itself).
//! Keys are scoped by credential and route; the same key with another body is refused.

use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::error::{Error, Result};

/// A stored first response.
pub struct Replay {
    pub status: u16,
    pub body: serde_json::Value,
}

/// Digest of what the request asked for.
pub fn request_hash(method: &str, path: &str, body: &serde_json::Value) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body.to_string().as_bytes());
    h.finalize().to_vec()
}

/// Checks the header value.
pub fn check_key(key: Option<&str>) -> Result<String> {
    let key = key.ok_or_else(|| {
        Error::bad_request(
            "idempotency_key_required",
            "this write needs an Idempotency-Key header (any unique string up to 200 characters)",
        )
    })?;
    if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(Error::bad_request(
            "idempotency_key_invalid",
            "Idempotency-Key: 1 to 200 visible ASCII characters",
        ));
    }
    Ok(key.to_string())
}

/// Claims `key` for this transaction, or returns the first response for it.
pub async fn begin(conn: &mut PgConnection, scope: &str, key: &str, hash: &[u8]) -> Result<Option<Replay>> {
    let claimed: Option<i32> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status, response) VALUES ($1, $2, $3, 0, 'null') \
         ON CONFLICT DO NOTHING RETURNING 1",
    )
    .bind(scope)
    .bind(key)
    .bind(hash)
    .fetch_optional(&mut *conn)
    .await?;
    if claimed.is_some() {
        return Ok(None);
    }
    let stored: Stored =
        sqlx::query_as("SELECT request_hash, status, response FROM idempotency_keys WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
    replay_of(stored, hash).map(Some)
}

/// A key's row: the request's digest, the answer's status and body.
type Stored = (Vec<u8>, i32, serde_json::Value);

fn replay_of((stored_hash, status, body): Stored, hash: &[u8]) -> Result<Replay> {
    if stored_hash != hash {
        return Err(Error::Invalid {
            code: "idempotency_key_reused",
            message: "this Idempotency-Key was used for a different request".into(),
            fields: vec![],
        });
    }
    Ok(Replay { status: status as u16, body })
}

/// The first answer recorded under `key`, read without claiming it: one statement, no
/// transaction, in the tenant's schema `schema` (a directory-made name). For a write
/// refused before it needs a transaction (a product already seen sold out): a replay
/// still gets its first answer, and a new key is refused without writing anything. A
/// claim not yet committed is not seen, so a duplicate sent while its first is still
/// running gets the refusal (nothing recorded); the same key later replays the first.
pub async fn recorded(pool: &PgPool, schema: &str, scope: &str, key: &str, hash: &[u8]) -> Result<Option<Replay>> {
    let schema = crate::db::plain_schema(schema)?;
    let sql = format!(
        "SELECT request_hash, status, response FROM \"{schema}\".idempotency_keys WHERE scope = $1 AND key = $2"
    );
    let stored: Option<Stored> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(scope).bind(key).fetch_optional(pool).await?;
    stored.map(|s| replay_of(s, hash)).transpose()
}

/// Stores the response of the claimed key (same transaction as the effects).
pub async fn finish(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
    status: u16,
    body: &serde_json::Value,
) -> Result<()> {
    sqlx::query("UPDATE idempotency_keys SET status = $3, response = $4 WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .bind(i32::from(status))
        .bind(body)
        .execute(conn)
        .await?;
    Ok(())
}
