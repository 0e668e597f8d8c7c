//! One-time codes for login, registration, password reset and proving one's own phone
//! or e-mail (SPEC M1, M2). Six digits, five minutes, five wrong guesses, one send a
//! minute per destination and purpose (counted atomically in the database, so it holds
//! under concurrency and across instances); only a hash is stored. Codes go out
//! through a `Sender`.

use chrono::{Duration, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::limits;
use crate::sender::{Message, Sender};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Login,
    Register,
    ResetPassword,
    /// A signed-in member proves their own phone or e-mail.
    Verify,
    /// A member signed in at one mall of an alliance proves their account at another
    /// (`alliance::link`).
    Link,
}

/// What `/auth/codes` sends a code for, in the OpenAPI document: a `Purpose` but
/// `verify` and `link` (those codes are sent for a signed-in member, from
/// `/me/verification-codes` and `/me/alliance-links/codes`).
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum CodePurpose {
    Login,
    Register,
    ResetPassword,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Register => "register",
            Self::ResetPassword => "reset_password",
            Self::Verify => "verify",
            Self::Link => "link",
        }
    }
}

fn code_hash(tenant_id: TenantId, destination: &str, purpose: Purpose, code: &str) -> Vec<u8> {
    crate::auth::secrets::digest(&format!("{tenant_id}\n{destination}\n{}\n{code}", purpose.as_str()))
}

/// Counts a send to (destination, purpose); refuses with 429 when one was counted less
/// than a minute ago. Called before anything is looked up, so the answer is the same for
/// every destination.
pub async fn throttle(db: &Db, tenant: &Tenant, destination: &str, purpose: Purpose) -> Result<()> {
    let key = format!("code:{}:{}:{destination}", tenant.id, purpose.as_str());
    crate::auth::throttle::hit(db.control(), &key, 1, limits::OTP_RESEND_GAP_SECS).await
}

/// Creates a code and sends it (after `throttle`).
pub async fn issue(db: &Db, sender: &dyn Sender, tenant: &Tenant, destination: &str, purpose: Purpose) -> Result<()> {
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let code = format!(
        "{:0width$}",
        rand::rng().random_range(0..10u32.pow(limits::OTP_DIGITS)),
        width = limits::OTP_DIGITS as usize
    );
    sqlx::query("INSERT INTO verification_codes (destination, purpose, code_hash, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(destination)
        .bind(purpose.as_str())
        .bind(code_hash(tenant.id, destination, purpose, &code))
        .bind(Utc::now() + Duration::seconds(limits::OTP_TTL_SECS))
        .execute(&mut *tx)
        .await?;
    let minutes = limits::OTP_TTL_SECS / 60;
    let voice = crate::i18n::Voice::of(tenant);
    use crate::i18n::Arg;
    let body = voice.text(
        "code-text",
        &[("mall", Arg::Str(&tenant.name)), ("code", Arg::Str(&code)), ("minutes", Arg::Int(minutes))],
    );
    sender
        .send(&Message {
            tenant_id: Some(tenant.id),
            channel: if destination.contains('@') { "email" } else { "sms" },
            destination: destination.to_string(),
            body,
        })
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Checks and uses up the newest live code for (destination, purpose). A wrong guess
/// is counted (committed even though the request fails).
pub async fn verify(db: &Db, tenant: &Tenant, destination: &str, purpose: Purpose, code: &str) -> Result<()> {
    let invalid =
        || Error::unauthenticated("code_invalid", "the verification code is wrong, used or expired; request a new one");
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let row: Option<(i64, Vec<u8>, i32)> = sqlx::query_as(
        "SELECT id, code_hash, attempts FROM verification_codes \
         WHERE destination = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at > now() \
         ORDER BY id DESC LIMIT 1 FOR UPDATE",
    )
    .bind(destination)
    .bind(purpose.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let (id, hash, attempts) = row.ok_or_else(invalid)?;
    if attempts >= limits::OTP_MAX_ATTEMPTS {
        return Err(invalid());
    }
    let ok = code.len() == limits::OTP_DIGITS as usize
        && crate::auth::secrets::digests_equal(&hash, &code_hash(tenant.id, destination, purpose, code));
    if ok {
        sqlx::query("UPDATE verification_codes SET consumed_at = now() WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    } else {
        sqlx::query("UPDATE verification_codes SET attempts = attempts + 1 WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    if ok { Ok(()) } else { Err(invalid()) }
}
