//! The shared secrets of provider integrations (the payment callback's and the webview
//! hand-off's HMAC keys), one per name in each tenant schema, stored sealed (`vault`).

use sqlx::PgConnection;

use crate::error::Result;
use crate::ids::TenantId;
use crate::vault::Vault;

/// The payment callback's HMAC key.
pub const PAYMENT_CALLBACK: &str = "payment_callback";
/// The webview hand-off's HS256 key.
pub const WEBVIEW: &str = "webview";

fn context(tenant_id: TenantId, name: &str) -> String {
    format!("{tenant_id}:{name}")
}

/// Stores (or replaces) a secret of the tenant whose schema is selected on `conn`.
pub async fn store(
    conn: &mut PgConnection,
    vault: &Vault,
    tenant_id: TenantId,
    name: &str,
    secret: &str,
) -> Result<()> {
    let sealed = vault.seal(secret, &context(tenant_id, name))?;
    sqlx::query(
        "INSERT INTO provider_secrets (name, secret) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET secret = EXCLUDED.secret, created_at = now()",
    )
    .bind(name)
    .bind(sealed)
    .execute(conn)
    .await?;
    Ok(())
}

/// A secret of the tenant whose schema is selected on `conn`, opened.
pub async fn load(conn: &mut PgConnection, vault: &Vault, tenant_id: TenantId, name: &str) -> Result<Option<String>> {
    let stored: Option<String> = sqlx::query_scalar("SELECT secret FROM provider_secrets WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?;
    stored.map(|s| vault.open(&s, &context(tenant_id, name))).transpose()
}

/// Seals again, under the vault's current key, every secret of the tenant whose schema
/// is selected on `conn` that is not sealed under it (older keys, or stored before
/// sealing existed). Returns how many were sealed again.
pub async fn reseal(conn: &mut PgConnection, vault: &Vault, tenant_id: TenantId) -> Result<u64> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, secret FROM provider_secrets ORDER BY name FOR UPDATE")
            .fetch_all(&mut *conn)
            .await?;
    let mut done = 0;
    for (name, stored) in rows {
        if vault.is_current(&stored) {
            continue;
        }
        let plain = vault.open(&stored, &context(tenant_id, &name))?;
        let sealed = vault.seal(&plain, &context(tenant_id, &name))?;
        sqlx::query("UPDATE provider_secrets SET secret = $2 WHERE name = $1")
            .bind(&name)
            .bind(sealed)
            .execute(&mut *conn)
            .await?;
        done += 1;
    }
    Ok(done)
}
