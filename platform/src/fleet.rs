//! Fleet-wide operations over every tenant (and alliance): verify every ledger, seal
//! provider secrets again. Migrations over the fleet are in `migrate`, the jobs loop in
//! `jobs`. The command line calls these; they report per ledger or tenant and go on
//! past one that fails.

use crate::db::Db;
use crate::directory;
use crate::error::Result;
use crate::ledger::verify::{self, Report};
use crate::tenancy;
use crate::vault::Vault;

/// One ledger to verify: a merchant's or an alliance's shared one.
pub struct Ledger {
    pub label: String,
    pub cluster: String,
    pub schema: String,
    pub alliance: bool,
}

/// The ledgers of one tenant (by slug) and its alliance, or of every tenant and every
/// alliance; empty when no tenant has that slug.
pub async fn ledgers(db: &Db, tenant: Option<&str>) -> Result<Vec<Ledger>> {
    let tenants: Vec<_> =
        directory::list(db.control()).await?.into_iter().filter(|t| tenant.is_none_or(|s| s == t.slug)).collect();
    if tenants.is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<Ledger> = tenants
        .iter()
        .map(|t| Ledger {
            label: t.slug.clone(),
            cluster: t.cluster.clone(),
            schema: t.schema_name.clone(),
            alliance: false,
        })
        .collect();
    for a in tenancy::list_alliances(db.control()).await? {
        if tenant.is_none() || tenants.iter().any(|t| t.alliance_id == Some(a.id)) {
            out.push(Ledger {
                label: format!("alliance {}", a.slug),
                cluster: a.cluster,
                schema: a.schema_name,
                alliance: true,
            });
        }
    }
    Ok(out)
}

/// Verifies one ledger in a consistent snapshot.
pub async fn verify(db: &Db, ledger: &Ledger) -> Result<Report> {
    verify::verify_schema(db, &ledger.cluster, &ledger.schema).await
}

/// Seals every provider secret of one tenant (by slug) or of all again under the
/// vault's first key, one transaction per tenant: a tenant whose secrets do not open (a
/// key missing from the list) is reported and left as it was. Returns the secrets
/// sealed and the tenants that failed, with why.
pub async fn reseal(db: &Db, vault: &Vault, tenant: Option<&str>) -> Result<(u64, Vec<(String, String)>)> {
    let (mut total, mut failed) = (0, Vec::new());
    for t in directory::list(db.control()).await? {
        if tenant.is_some_and(|s| s != t.slug) {
            continue;
        }
        let mut tx = db.tenant_tx(&t.cluster, &t.schema_name).await?;
        let sealed = match crate::provider_secrets::reseal(&mut tx, vault, t.id).await {
            Ok(n) => {
                let owner = crate::webhooks::owner::Owner::Mall(t.clone());
                crate::webhooks::endpoints::reseal(&mut tx, vault, &owner).await.map(|m| n + m)
            }
            Err(e) => Err(e),
        };
        match sealed {
            Ok(n) => {
                tx.commit().await?;
                total += n;
            }
            Err(e) => failed.push((t.slug.clone(), e.to_string())),
        }
    }
    // The alliances' webhook endpoints (an alliance is named by its slug too).
    for a in directory::list_alliances(db.control()).await? {
        if tenant.is_some_and(|s| s != a.slug) {
            continue;
        }
        let mut tx = db.tenant_tx(&a.cluster, &a.schema_name).await?;
        let owner = crate::webhooks::owner::Owner::Alliance(a.clone());
        match crate::webhooks::endpoints::reseal(&mut tx, vault, &owner).await {
            Ok(n) => {
                tx.commit().await?;
                total += n;
            }
            Err(e) => failed.push((a.slug.clone(), e.to_string())),
        }
    }
    Ok((total, failed))
}
