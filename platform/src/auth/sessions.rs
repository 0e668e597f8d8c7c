//! Refresh sessions. A refresh token is 256 random bits, stored as SHA-256, usable once:
//! refreshing revokes it and issues a new one; logout revokes it.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;

use super::secrets;
use crate::error::{Error, Result};
use crate::limits;

/// Where the sessions of a kind of principal live.
#[derive(Debug, Clone, Copy)]
pub enum Store {
    /// `control.staff_sessions`, for staff of every level.
    Staff,
    /// `member_sessions` in the selected tenant schema.
    Member,
}

impl Store {
    fn insert_sql(self) -> &'static str {
        match self {
            Self::Staff => "INSERT INTO control.staff_sessions (token_hash, staff_id, expires_at) VALUES ($1, $2, $3)",
            Self::Member => "INSERT INTO member_sessions (token_hash, member_id, expires_at) VALUES ($1, $2, $3)",
        }
    }
    fn consume_sql(self) -> &'static str {
        match self {
            Self::Staff => {
                "UPDATE control.staff_sessions SET revoked_at = now() \
                            WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now() RETURNING staff_id"
            }
            Self::Member => {
                "UPDATE member_sessions SET revoked_at = now() \
                             WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now() RETURNING member_id"
            }
        }
    }
    fn revoke_all_sql(self) -> &'static str {
        match self {
            Self::Staff => {
                "UPDATE control.staff_sessions SET revoked_at = now() WHERE staff_id = $1 AND revoked_at IS NULL"
            }
            Self::Member => "UPDATE member_sessions SET revoked_at = now() WHERE member_id = $1 AND revoked_at IS NULL",
        }
    }
}

/// Opens a session; returns the refresh token (shown once) and its expiry.
pub async fn open(conn: &mut PgConnection, store: Store, principal: i64) -> Result<(String, DateTime<Utc>)> {
    let token = secrets::random_token(32);
    let expires_at = Utc::now() + Duration::seconds(limits::REFRESH_TOKEN_TTL_SECS);
    sqlx::query(store.insert_sql())
        .bind(secrets::digest(&token))
        .bind(principal)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok((token, expires_at))
}

/// Uses up a refresh token; returns whose it was. Unknown, used, revoked or expired
/// tokens are all refused alike.
pub async fn consume(conn: &mut PgConnection, store: Store, token: &str) -> Result<i64> {
    sqlx::query_scalar(store.consume_sql()).bind(secrets::digest(token)).fetch_optional(conn).await?.ok_or_else(|| {
        Error::unauthenticated("refresh_token_invalid", "the refresh token is unknown, used, revoked or expired")
    })
}

/// Ends every session of a principal (password change or reset).
pub async fn revoke_all(conn: &mut PgConnection, store: Store, principal: i64) -> Result<()> {
    sqlx::query(store.revoke_all_sql()).bind(principal).execute(conn).await?;
    Ok(())
}
