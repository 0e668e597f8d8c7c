//! The cash part of points + cash orders (SPEC O4) goes through a payment provider
//! interface. Its first implementation is a signed callback from the merchant's own
//! checkout: the body is signed with HMAC-SHA256 over "{timestamp}.{body}" with a secret
//! the merchant's owner creates. (No real payment gateway is reachable from here.)

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use sqlx::PgConnection;

use super::order_state::Action;
use super::orders::{self, Details, Order};
use crate::error::{Error, Result};
use crate::ids::TenantId;
pub use crate::limits::mall::CALLBACK_SKEW_SECS;
use crate::provider_secrets::{self, PAYMENT_CALLBACK};
use crate::vault::Vault;

/// Creates (or replaces) the callback secret of the tenant whose schema is selected on
/// `conn` (stored sealed); returns it once.
pub async fn rotate_secret(tx: &mut crate::tx::TenantTx, vault: &Vault) -> Result<String> {
    let secret = crate::auth::secrets::random_hex(32);
    let tenant_id = tx.tenant().id;
    provider_secrets::store(tx, vault, tenant_id, PAYMENT_CALLBACK, &secret).await?;
    tx.audit("payment_secret.rotate", "", serde_json::json!({})).await?;
    Ok(secret)
}

/// The signature a callback must carry: hex HMAC-SHA256 of "{timestamp}.{body}".
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The tenant's callback key and the time a callback is checked against.
pub struct Verifier<'a> {
    pub vault: &'a Vault,
    pub tenant_id: TenantId,
    pub now: DateTime<Utc>,
}

/// Checks a callback's timestamp and signature.
pub async fn verify(
    conn: &mut PgConnection,
    with: &Verifier<'_>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<()> {
    let now = with.now;
    let bad = |m: &str| Error::unauthenticated("bad_signature", m.to_string());
    let ts: i64 = timestamp.and_then(|t| t.parse().ok()).ok_or_else(|| bad("send X-Timestamp (Unix seconds)"))?;
    if (now.timestamp() - ts).abs() > CALLBACK_SKEW_SECS {
        return Err(bad("the timestamp is too far from now"));
    }
    let sig = signature.and_then(|s| s.strip_prefix("sha256=")).ok_or_else(|| bad("send X-Signature: sha256=<hex>"))?;
    let secret = provider_secrets::load(conn, with.vault, with.tenant_id, PAYMENT_CALLBACK).await?;
    let secret = secret.ok_or_else(|| bad("no payment callback secret is set up for this mall"))?;
    let want = sign(&secret, ts, body);
    if !crate::auth::secrets::digests_equal(want.as_bytes(), sig.as_bytes()) {
        return Err(bad("the signature does not match"));
    }
    Ok(())
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentNotice {
    pub order_no: String,
    /// What was paid, in fen; must equal the order's cash part.
    pub amount_fen: i64,
    /// The checkout's payment reference.
    #[schema(min_length = 1, max_length = 100)]
    pub payment_ref: String,
}

/// Applies a verified payment notice; a repeat of an applied one is answered the same.
pub async fn apply(tx: &mut crate::tx::TenantTx, n: &PaymentNotice, now: DateTime<Utc>) -> Result<Order> {
    if n.payment_ref.is_empty() || n.payment_ref.chars().count() > 100 {
        return Err(Error::invalid_field("payment_ref", "1 to 100 characters"));
    }
    let o = orders::by_no(tx, &n.order_no).await?;
    if o.payment_ref.as_deref() == Some(n.payment_ref.as_str()) {
        return Ok(o);
    }
    if n.amount_fen != o.cash_fen {
        return Err(Error::invalid_field("amount_fen", format!("the order's cash part is {} fen", o.cash_fen)));
    }
    let details = Details { payment_ref: Some(n.payment_ref.clone()), note: "paid".into(), ..Details::default() };
    orders::transition(tx, o.id, Action::Pay, "provider:payment", &details, now).await
}
