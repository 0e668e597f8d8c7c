//! Members of one merchant's mall (SPEC M1, M2): registration by phone or e-mail with a
//! password or a one-time code, login, password reset. Rows live in the tenant schema.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::codes::{self, Purpose};
use crate::auth::{passwords, secrets};
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::sender::Sender;
use crate::staff::normalize_email;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Member {
    pub id: i64,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub nickname: String,
    pub external_id: Option<String>,
    /// This member's own invitation code.
    pub invite_code: String,
    pub invited_by: Option<i64>,
    pub status: String,
    pub avatar_url: Option<String>,
    /// {"order_updates": bool, "expiry_reminders": bool, "marketing": bool}
    pub notifications: serde_json::Value,
    pub last_active_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, phone, email, nickname, external_id, invite_code, invited_by, status, avatar_url, notifications, \
     last_active_at, created_at";

/// A phone number or an e-mail address, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    Phone(String),
    Email(String),
}

impl Identifier {
    /// Reads "13800138000", "+86 138-0013-8000" or "a@b.cn".
    pub fn parse(raw: &str) -> Result<Self> {
        let raw = raw.trim();
        if raw.contains('@') {
            return normalize_email(raw)
                .map(Self::Email)
                .ok_or_else(|| Error::invalid_field("identifier", "not a valid e-mail address"));
        }
        let phone: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
        let digits = phone.strip_prefix('+').unwrap_or(&phone);
        if (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self::Phone(phone))
        } else {
            Err(Error::invalid_field("identifier", "not a valid phone number or e-mail address"))
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Phone(p) | Self::Email(p) => p,
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Phone number or e-mail address; it is the account.
    pub identifier: String,
    /// A password (8-128 characters) …
    #[serde(default)]
    pub password: Option<String>,
    /// … or a code sent with purpose `register`. At least one of the two.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub nickname: Option<String>,
    /// Invitation code of the member who invited this one.
    #[serde(default)]
    pub invite_code: Option<String>,
}

async fn fetch_by_identifier(db: &Db, tenant: &Tenant, id: &Identifier) -> Result<Option<(Member, Option<String>)>> {
    let sql = match id {
        Identifier::Phone(_) => "phone = $1",
        Identifier::Email(_) => "email = $1",
    };
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let row: Option<(i64, Option<String>)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT id, password_hash FROM members WHERE {sql}")))
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let Some((member_id, hash)) = row else {
        return Ok(None);
    };
    let m = get_in(&mut tx, member_id).await?;
    tx.commit().await?;
    Ok(Some((m, hash)))
}

async fn get_in(conn: &mut sqlx::PgConnection, id: i64) -> Result<Member> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM members WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::not_found("member_not_found", "no such member"))
}

/// One member of the tenant.
pub async fn get(db: &Db, tenant: &Tenant, id: i64) -> Result<Member> {
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let m = get_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(m)
}

/// Registers a member (one phone or e-mail, one account).
pub async fn register(db: &Db, tenant: &Tenant, reg: &Registration) -> Result<Member> {
    let ident = Identifier::parse(&reg.identifier)?;
    if let Some(n) = &reg.nickname
        && n.chars().count() > 64
    {
        return Err(Error::invalid_field("nickname", "at most 64 characters"));
    }
    let hash = match (&reg.password, &reg.code) {
        (None, None) => {
            return Err(Error::invalid_field("password", "give a password or a verification code"));
        }
        (Some(p), _) => {
            passwords::check_policy(p)?;
            Some(p)
        }
        (None, Some(_)) => None,
    };
    if let Some(code) = &reg.code {
        codes::verify(db, tenant, ident.as_str(), Purpose::Register, code).await?;
    }
    let hash = match hash {
        Some(p) => Some(passwords::hash(p).await?),
        None => None,
    };
    let (phone, email) = match &ident {
        Identifier::Phone(p) => (Some(p.as_str()), None),
        Identifier::Email(e) => (None, Some(e.as_str())),
    };
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let invited_by: Option<i64> = match &reg.invite_code {
        None => None,
        Some(code) => Some(
            sqlx::query_scalar("SELECT id FROM members WHERE invite_code = $1")
                .bind(code.trim().to_uppercase())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::invalid_field("invite_code", "no member has this invitation code"))?,
        ),
    };
    let member: Member = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO members (phone, email, password_hash, nickname, invite_code, invited_by, level_id) \
         VALUES ($1, $2, $3, $4, $5, $6, (SELECT id FROM levels WHERE NOT retired AND threshold = 0)) RETURNING {COLUMNS}"
    )))
    .bind(phone)
    .bind(email)
    .bind(hash)
    .bind(reg.nickname.as_deref().unwrap_or("").trim())
    .bind(secrets::random_hex(5).to_uppercase())
    .bind(invited_by)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        on_phone_or_email_taken(
            e,
            Error::conflict("account_exists", "an account with this phone number or e-mail already exists; log in instead"),
        )
    })?;
    tx.commit().await?;
    Ok(member)
}

/// `then` when `e` is the unique phone or e-mail of `members` (of a mall or an alliance).
pub(crate) fn on_phone_or_email_taken(e: sqlx::Error, then: Error) -> Error {
    match &e {
        sqlx::Error::Database(d)
            if d.is_unique_violation() && matches!(d.constraint(), Some("members_phone_key" | "members_email_key")) =>
        {
            then
        }
        _ => Error::Database(e),
    }
}

/// Checks identifier and password.
pub async fn authenticate_password(db: &Db, tenant: &Tenant, identifier: &str, password: &str) -> Result<Member> {
    let bad = || Error::unauthenticated("invalid_credentials", "wrong account or password");
    let found = match Identifier::parse(identifier) {
        Ok(id) => fetch_by_identifier(db, tenant, &id).await?,
        Err(_) => None,
    };
    match found {
        Some((m, Some(hash))) if passwords::verify(password, &hash).await => {
            if m.status != "active" {
                return Err(Error::forbidden("account_disabled", "this account is disabled"));
            }
            Ok(m)
        }
        Some(_) => Err(bad()),
        None => {
            passwords::verify(password, passwords::dummy_hash()).await;
            Err(bad())
        }
    }
}

/// Sends a one-time code. For `login` and `reset_password` nothing is sent to unknown
/// accounts, but the answer is the same, so accounts cannot be discovered this way.
pub async fn send_code(
    db: &Db,
    sender: &dyn Sender,
    tenant: &Tenant,
    identifier: &str,
    purpose: Purpose,
) -> Result<()> {
    let ident = Identifier::parse(identifier)?;
    let exists = fetch_by_identifier(db, tenant, &ident).await?.is_some();
    let should_send = match purpose {
        Purpose::Register => !exists,
        Purpose::Login | Purpose::ResetPassword => exists,
    };
    if should_send {
        codes::issue(db, sender, tenant, ident.as_str(), purpose).await?;
    }
    Ok(())
}

/// Logs in with a one-time code.
pub async fn authenticate_code(db: &Db, tenant: &Tenant, identifier: &str, code: &str) -> Result<Member> {
    let ident = Identifier::parse(identifier)?;
    codes::verify(db, tenant, ident.as_str(), Purpose::Login, code).await?;
    let (m, _) = fetch_by_identifier(db, tenant, &ident)
        .await?
        .ok_or_else(|| Error::unauthenticated("code_invalid", "the verification code is wrong, used or expired"))?;
    if m.status != "active" {
        return Err(Error::forbidden("account_disabled", "this account is disabled"));
    }
    Ok(m)
}

/// Sets a new password after checking a `reset_password` code; ends every session.
pub async fn reset_password(db: &Db, tenant: &Tenant, identifier: &str, code: &str, new_password: &str) -> Result<()> {
    let ident = Identifier::parse(identifier)?;
    passwords::check_policy(new_password)?;
    codes::verify(db, tenant, ident.as_str(), Purpose::ResetPassword, code).await?;
    let (m, _) = fetch_by_identifier(db, tenant, &ident)
        .await?
        .ok_or_else(|| Error::unauthenticated("code_invalid", "the verification code is wrong, used or expired"))?;
    let hash = passwords::hash(new_password).await?;
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    sqlx::query("UPDATE members SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(m.id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    crate::auth::sessions::revoke_all(&mut tx, crate::auth::sessions::Store::Member, m.id).await?;
    tx.commit().await?;
    Ok(())
}

/// What a member may change of their profile (M3).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub nickname: Option<String>,
    /// https URL of the avatar image.
    pub avatar_url: Option<String>,
    /// Any of order_updates, expiry_reminders, marketing (true/false).
    pub notifications: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Changes the member's profile.
pub async fn update_profile(db: &Db, tenant: &Tenant, id: i64, p: &ProfileUpdate) -> Result<Member> {
    let mut v = crate::error::Validator::new();
    v.check(p.nickname.as_ref().is_none_or(|n| n.chars().count() <= 64), "nickname", "at most 64 characters");
    v.check(
        p.avatar_url.as_ref().is_none_or(|u| crate::urls::https_url_ok(u)),
        "avatar_url",
        "an https URL of at most 2048 characters",
    );
    v.check(
        p.notifications.as_ref().is_none_or(|n| {
            n.iter().all(|(k, v)| {
                ["order_updates", "expiry_reminders", "marketing"].contains(&k.as_str()) && v.is_boolean()
            })
        }),
        "notifications",
        "order_updates, expiry_reminders, marketing: true or false",
    );
    v.finish()?;
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    sqlx::query(
        "UPDATE members SET nickname = coalesce($2, nickname), avatar_url = coalesce($3, avatar_url), \
             notifications = notifications || coalesce($4, '{}'::jsonb), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(p.nickname.as_deref().map(str::trim))
    .bind(&p.avatar_url)
    .bind(p.notifications.clone().map(serde_json::Value::Object))
    .execute(&mut *tx)
    .await?;
    let m = get_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(m)
}

/// Records that the member was active now (segments such as "inactive 30 days").
pub async fn touch(db: &Db, tenant: &Tenant, id: i64) -> Result<()> {
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    sqlx::query("UPDATE members SET last_active_at = now() WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Filters of the staff member list (M5 segments).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct MemberFilter {
    /// Members with this tag.
    pub tag: Option<String>,
    /// Members not active for at least this many days.
    pub inactive_days: Option<i32>,
    /// Phone, e-mail or nickname containing this.
    pub q: Option<String>,
}

/// A page of members, newest first, before `before_id`.
pub async fn list(
    db: &Db,
    tenant: &Tenant,
    f: &MemberFilter,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Member>> {
    if f.inactive_days.is_some_and(|d| !(1..=3650).contains(&d)) {
        return Err(Error::invalid_field("inactive_days", "1 to 3650"));
    }
    let pattern =
        f.q.as_ref().map(|s| format!("%{}%", s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM members m WHERE ($1::bigint IS NULL OR id < $1) \
           AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.id AND t.tag = $3)) \
           AND ($4::int IS NULL OR coalesce(last_active_at, created_at) < now() - make_interval(days => $4)) \
           AND ($5::text IS NULL OR phone LIKE $5 OR email LIKE $5 OR nickname LIKE $5) \
         ORDER BY id DESC LIMIT $2"
    )))
    .bind(before_id)
    .bind(limit)
    .bind(&f.tag)
    .bind(f.inactive_days)
    .bind(pattern)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// Tags or untags a member by hand (M5).
pub async fn set_tag(db: &Db, tenant: &Tenant, id: i64, tag: &str, on: bool) -> Result<()> {
    if tag.trim().is_empty() || tag.chars().count() > 64 {
        return Err(Error::invalid_field("tag", "1 to 64 characters"));
    }
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    get_in(&mut tx, id).await?;
    let sql = if on {
        "INSERT INTO member_tags (member_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM member_tags WHERE member_id = $1 AND tag = $2"
    };
    sqlx::query(sql).bind(id).bind(tag.trim()).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Creates or updates a member by the partner's external id (P4).
pub async fn upsert_external(
    db: &Db,
    tenant: &Tenant,
    external_id: &str,
    phone: Option<&str>,
    nickname: Option<&str>,
) -> Result<Member> {
    if external_id.is_empty() || external_id.len() > 128 {
        return Err(Error::invalid_field("external_id", "1 to 128 characters"));
    }
    let phone = match phone {
        Some(p) => match Identifier::parse(p)? {
            Identifier::Phone(p) => Some(p),
            Identifier::Email(_) => return Err(Error::invalid_field("phone", "a phone number")),
        },
        None => None,
    };
    if nickname.is_some_and(|n| n.chars().count() > 64) {
        return Err(Error::invalid_field("nickname", "at most 64 characters"));
    }
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO members (external_id, phone, nickname, invite_code, level_id) \
         VALUES ($1, $2, coalesce($3, ''), $4, (SELECT id FROM levels WHERE NOT retired AND threshold = 0)) \
         ON CONFLICT (external_id) DO UPDATE SET phone = coalesce(EXCLUDED.phone, members.phone), \
             nickname = CASE WHEN $3 IS NULL THEN members.nickname ELSE EXCLUDED.nickname END, updated_at = now() \
         RETURNING id",
    )
    .bind(external_id)
    .bind(&phone)
    .bind(nickname)
    .bind(secrets::random_hex(5).to_uppercase())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::conflict("account_exists", "another member has this phone number")
        }
        sqlx::Error::Database(d) if d.is_check_violation() => {
            Error::invalid_field("phone", "a member needs a phone or e-mail")
        }
        _ => Error::Database(e),
    })?;
    let m = get_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(m)
}

/// The member with this external id.
pub async fn by_external_id(db: &Db, tenant: &Tenant, external_id: &str) -> Result<Option<i64>> {
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let id = sqlx::query_scalar("SELECT id FROM members WHERE external_id = $1")
        .bind(external_id)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// The id of the member with this phone or e-mail, if any.
pub async fn find_id(db: &Db, tenant: &Tenant, id: &Identifier) -> Result<Option<i64>> {
    Ok(fetch_by_identifier(db, tenant, id).await?.map(|(m, _)| m.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_normalize() {
        assert_eq!(Identifier::parse(" 138-0013-8000 ").unwrap(), Identifier::Phone("13800138000".into()));
        assert_eq!(Identifier::parse("+86 13800138000").unwrap(), Identifier::Phone("+8613800138000".into()));
        assert_eq!(Identifier::parse("Li@Example.CN").unwrap(), Identifier::Email("li@example.cn".into()));
        assert!(Identifier::parse("12ab").is_err());
        assert!(Identifier::parse("a@b").is_err());
    }
}
