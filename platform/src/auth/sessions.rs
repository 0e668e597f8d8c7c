//! Refresh sessions. A refresh token is 256 random bits, stored as SHA-256, usable once:
//! refreshing rotates it (the used token is marked, a new one joins the same family).
//!
//! A family is one sign-in. Access tokens carry its id (`sid`), and every authenticated
//! request checks that the family is still live and its principal still allowed
//! (`check_member`, `check_staff`), so logout, password reset, disabling and demotion
//! take effect on the next request. A used refresh token presented again is a reuse
//! (stolen, or replayed): the whole family is revoked.
//!
//! Live families are remembered in memory after one database check. Every revocation
//! returns the families it ended: the caller forgets them here once its transaction has
//! committed (`forget`), and a `Change::Sessions` notification, sent in that
//! transaction, makes every other instance forget them too. A listener that reconnects
//! forgets everything (notifications are lost while disconnected).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::notify::{self, Change};

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
    fn table(self) -> &'static str {
        match self {
            Self::Staff => "control.staff_sessions",
            Self::Member => "member_sessions",
        }
    }
    fn principal(self) -> &'static str {
        match self {
            Self::Staff => "staff_id",
            Self::Member => "member_id",
        }
    }
}

/// A refresh token as handed out (shown once).
pub struct Opened {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub family: Uuid,
}

/// Opens a session in a new family (a sign-in).
pub async fn open(conn: &mut PgConnection, store: Store, principal: i64) -> Result<Opened> {
    add(conn, store, principal, Uuid::new_v4()).await
}

async fn add(conn: &mut PgConnection, store: Store, principal: i64, family: Uuid) -> Result<Opened> {
    let token = secrets::random_token(32);
    let expires_at = Utc::now() + Duration::seconds(limits::REFRESH_TOKEN_TTL_SECS);
    let sql = format!(
        "INSERT INTO {} (token_hash, {}, expires_at, family) VALUES ($1, $2, $3, $4)",
        store.table(),
        store.principal()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(secrets::digest(&token))
        .bind(principal)
        .bind(expires_at)
        .bind(family)
        .execute(conn)
        .await?;
    Ok(Opened { token, expires_at, family })
}

/// Families checked live, with who they were checked for; entries also lapse after
/// `limits::SESSION_CACHE_TTL_SECS` (a backstop: revocations evict at once).
fn live() -> &'static moka::sync::Cache<Uuid, String> {
    static LIVE: OnceLock<moka::sync::Cache<Uuid, String>> = OnceLock::new();
    LIVE.get_or_init(|| {
        moka::sync::Cache::builder()
            .max_capacity(limits::SESSION_CACHE_ENTRIES)
            .time_to_live(std::time::Duration::from_secs(limits::SESSION_CACHE_TTL_SECS))
            .build()
    })
}

/// Bumped by every eviction: a check that read the database before an eviction does not
/// put its (possibly stale) answer in the cache after it.
static EVICTIONS: AtomicU64 = AtomicU64::new(0);

/// Forgets families ended elsewhere (after the revoking transaction committed).
pub fn forget(families: &[Uuid]) {
    EVICTIONS.fetch_add(1, Ordering::SeqCst);
    for f in families {
        live().invalidate(f);
    }
}

/// Forgets every family (the change listener reconnected).
pub fn forget_all() {
    EVICTIONS.fetch_add(1, Ordering::SeqCst);
    live().invalidate_all();
}

/// Tells the other instances, at commit, that `families` ended.
async fn announce(conn: &mut PgConnection, families: &[Uuid]) -> Result<()> {
    if families.is_empty() {
        return Ok(());
    }
    // A notification carries at most 8000 bytes: past that, everyone forgets everything.
    let change = if families.len() <= 150 {
        Change::Sessions { families: families.to_vec() }
    } else {
        Change::Sessions { families: vec![] }
    };
    notify::publish(conn, &change).await
}

/// What presenting a refresh token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// A live token: now used up; continue its family with `rotate`.
    Live { principal: i64, family: Uuid },
    /// A token that was already used: its whole family is now revoked. Commit, `forget`
    /// the family, then refuse (see `reused_error`).
    Reused { principal: i64, family: Uuid },
}

fn invalid() -> Error {
    Error::unauthenticated("refresh_token_invalid", "the refresh token is unknown, used, revoked or expired")
}

/// The answer to a reused refresh token.
pub fn reused_error() -> Error {
    Error::unauthenticated(
        "refresh_token_reused",
        "this refresh token was already used; every session of this sign-in has been ended, sign in again",
    )
}

/// Uses up a refresh token. Unknown, revoked or expired tokens are refused alike; a
/// used token revokes its family (reported as `Presented::Reused`).
pub async fn present(conn: &mut PgConnection, store: Store, token: &str) -> Result<Presented> {
    let sql = format!(
        "SELECT {}, family, rotated_at IS NOT NULL, revoked_at IS NULL AND expires_at > now() FROM {} \
         WHERE token_hash = $1 FOR UPDATE",
        store.principal(),
        store.table()
    );
    let row: Option<(i64, Uuid, bool, bool)> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(secrets::digest(token)).fetch_optional(&mut *conn).await?;
    let (principal, family, used, live) = row.ok_or_else(invalid)?;
    if used {
        end_family(conn, store, family).await?;
        return Ok(Presented::Reused { principal, family });
    }
    if !live {
        return Err(invalid());
    }
    let sql = format!("UPDATE {} SET rotated_at = now() WHERE token_hash = $1", store.table());
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(secrets::digest(token)).execute(&mut *conn).await?;
    Ok(Presented::Live { principal, family })
}

/// The next refresh token of a family whose token was just presented.
pub async fn rotate(conn: &mut PgConnection, store: Store, principal: i64, family: Uuid) -> Result<Opened> {
    add(conn, store, principal, family).await
}

/// Ends the sign-in of a refresh token (logout); returns the family ended (none for an
/// unknown token): `forget` it after commit.
pub async fn logout(conn: &mut PgConnection, store: Store, token: &str) -> Result<Vec<Uuid>> {
    let sql = format!("SELECT family FROM {} WHERE token_hash = $1", store.table());
    let family: Option<Uuid> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(secrets::digest(token)).fetch_optional(&mut *conn).await?;
    match family {
        Some(family) => {
            end_family(conn, store, family).await?;
            Ok(vec![family])
        }
        None => Ok(vec![]),
    }
}

async fn end_family(conn: &mut PgConnection, store: Store, family: Uuid) -> Result<()> {
    let sql = format!("UPDATE {} SET revoked_at = now() WHERE family = $1 AND revoked_at IS NULL", store.table());
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(family).execute(&mut *conn).await?;
    announce(conn, &[family]).await
}

/// Ends every session of a principal (password reset, disabling, role change); returns
/// the families ended: `forget` them after commit.
pub async fn revoke_all(conn: &mut PgConnection, store: Store, principal: i64) -> Result<Vec<Uuid>> {
    let sql = format!(
        "UPDATE {} SET revoked_at = now() WHERE {} = $1 AND revoked_at IS NULL RETURNING family",
        store.table(),
        store.principal()
    );
    let mut families: Vec<Uuid> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(principal).fetch_all(&mut *conn).await?;
    families.sort();
    families.dedup();
    announce(conn, &families).await?;
    Ok(families)
}

fn revoked() -> Error {
    Error::unauthenticated(
        "session_revoked",
        "this sign-in has ended (logout, password change or account change); sign in again",
    )
}

/// Checks a member's access token against the database: its family is live and the
/// member active. `schema` is the tenant's (directory-made) schema name.
pub async fn check_member(pool: &sqlx::PgPool, schema: &str, member_id: i64, family: Uuid) -> Result<()> {
    let who = format!("m:{schema}:{member_id}");
    if live().get(&family).as_deref() == Some(who.as_str()) {
        return Ok(());
    }
    let seen = EVICTIONS.load(Ordering::SeqCst);
    let schema = crate::db::plain_schema(schema)?;
    // One statement, no transaction: this runs on every member request.
    let sql = format!(
        "SELECT m.status FROM \"{schema}\".member_sessions s JOIN \"{schema}\".members m ON m.id = s.member_id \
         WHERE s.family = $1 AND s.member_id = $2 AND s.revoked_at IS NULL AND s.rotated_at IS NULL \
           AND s.expires_at > now()"
    );
    let status: Option<String> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(family).bind(member_id).fetch_optional(pool).await?;
    match status.as_deref() {
        Some("active") => {
            remember(family, who, seen);
            Ok(())
        }
        Some(_) => Err(Error::forbidden("account_disabled", "this account is disabled")),
        None => Err(revoked()),
    }
}

/// Checks a staff access token against the database: its family is live, the account
/// enabled and its role still the token's role.
pub async fn check_staff(pool: &sqlx::PgPool, staff_id: crate::ids::StaffId, family: Uuid, role: &str) -> Result<()> {
    let who = format!("s:{staff_id}:{role}");
    if live().get(&family).as_deref() == Some(who.as_str()) {
        return Ok(());
    }
    let seen = EVICTIONS.load(Ordering::SeqCst);
    let ok: Option<bool> = sqlx::query_scalar(
        "SELECT NOT u.disabled AND u.role = $3 FROM control.staff_sessions s \
         JOIN control.staff_users u ON u.id = s.staff_id \
         WHERE s.family = $1 AND s.staff_id = $2 AND s.revoked_at IS NULL AND s.rotated_at IS NULL \
           AND s.expires_at > now()",
    )
    .bind(family)
    .bind(staff_id)
    .bind(role)
    .fetch_optional(pool)
    .await?;
    if ok != Some(true) {
        return Err(revoked());
    }
    remember(family, who, seen);
    Ok(())
}

/// Caches a live family unless something was evicted since the check began.
fn remember(family: Uuid, who: String, seen: u64) {
    if EVICTIONS.load(Ordering::SeqCst) == seen {
        live().insert(family, who);
    }
}
