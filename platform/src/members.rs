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
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, phone, email, nickname, external_id, invite_code, invited_by, status, created_at";

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
    .map_err(|e| match &e {
        sqlx::Error::Database(d)
            if d.is_unique_violation() && matches!(d.constraint(), Some("members_phone_key" | "members_email_key")) =>
        {
            Error::conflict(
                "account_exists",
                "an account with this phone number or e-mail already exists; log in instead",
            )
        }
        _ => Error::Database(e),
    })?;
    tx.commit().await?;
    Ok(member)
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

/// Changes the nickname.
pub async fn update_profile(db: &Db, tenant: &Tenant, id: i64, nickname: &str) -> Result<Member> {
    if nickname.chars().count() > 64 {
        return Err(Error::invalid_field("nickname", "at most 64 characters"));
    }
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    sqlx::query("UPDATE members SET nickname = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(nickname.trim())
        .execute(&mut *tx)
        .await?;
    let m = get_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(m)
}

/// A page of members, newest first, before `before_id`.
pub async fn list(db: &Db, tenant: &Tenant, before_id: Option<i64>, limit: i64) -> Result<Vec<Member>> {
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM members WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"
    )))
    .bind(before_id)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
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
