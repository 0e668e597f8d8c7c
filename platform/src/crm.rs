//! CRM sync (SPEC P4): a partner's systems keep the mall's members in step with theirs by
//! their own member ids. A bulk upsert with partial updates (a field not sent is left
//! alone; each member in its own transaction, so one refusal does not stop the others)
//! and a bulk read of balances and levels, both for up to `BULK_MAX` ids per call.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::db::{Db, enter_schema, switch_back};
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ids::AllianceId;
use crate::members::{self, Member};

/// Members per bulk call.
pub const BULK_MAX: usize = 1_000;

/// One member as the partner's systems send it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    /// The partner's member id (1 to 128 characters).
    #[schema(min_length = 1, max_length = 128)]
    pub external_id: String,
    /// Vouched for by the merchant's systems (counts as proven). Left alone when absent.
    #[serde(default)]
    #[schema(value_type = Option<crate::auth::identifier::PhoneNumber>)]
    pub phone: Option<String>,
    /// Left alone when absent.
    #[serde(default)]
    #[schema(max_length = 64)]
    pub nickname: Option<String>,
    /// Birthday, gender, city: each sent is set, each left out is kept.
    #[serde(default)]
    pub profile: members::ProfileFields,
}

/// Upserts each member in order; one answer per member. A request whose members are not
/// all well-formed is refused whole (422 naming `members[i].field`); what the mall holds
/// (a phone another member has) fails that member only.
pub async fn upsert_many(db: &Db, tenant: &Tenant, patches: &[MemberPatch]) -> Result<Vec<Result<(Member, bool)>>> {
    bounded("members", patches.len())?;
    for (i, p) in patches.iter().enumerate() {
        well_formed(p).map_err(|(field, message)| Error::invalid_field(&format!("members[{i}].{field}"), message))?;
    }
    let mut out = Vec::with_capacity(patches.len());
    for p in patches {
        out.push(
            members::upsert_external_created(
                db,
                tenant,
                &p.external_id,
                p.phone.as_deref(),
                p.nickname.as_deref(),
                &p.profile,
            )
            .await,
        );
    }
    Ok(out)
}

fn well_formed(p: &MemberPatch) -> std::result::Result<(), (&'static str, &'static str)> {
    if p.external_id.is_empty() || p.external_id.chars().count() > 128 {
        return Err(("external_id", "1 to 128 characters"));
    }
    if p.nickname.as_ref().is_some_and(|n| n.chars().count() > 64) {
        return Err(("nickname", "at most 64 characters"));
    }
    if p.profile.city.as_ref().is_some_and(|c| c.trim().is_empty() || c.trim().chars().count() > 64) {
        return Err(("profile.city", "1 to 64 characters"));
    }
    match p.phone.as_deref().map(members::Identifier::parse) {
        None | Some(Ok(members::Identifier::Phone(_))) => Ok(()),
        Some(_) => Err(("phone", "a phone number")),
    }
}

fn bounded(field: &str, n: usize) -> Result<()> {
    if (1..=BULK_MAX).contains(&n) {
        Ok(())
    } else {
        Err(Error::invalid_field(field, format!("1 to {BULK_MAX} items")))
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LevelRef {
    pub id: i64,
    pub name: String,
}

/// A balance as the member sees it (lapsed lots excluded at once).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BalanceRef {
    pub currency: String,
    pub balance: i64,
    pub locked: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberBalances {
    pub external_id: String,
    pub member_id: i64,
    pub level: Option<LevelRef>,
    /// Every currency of the mall, the alliance's shared one included.
    pub balances: Vec<BalanceRef>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BulkBalances {
    /// In the order the ids were sent (each once).
    pub members: Vec<MemberBalances>,
    /// Ids no member of the mall has.
    pub missing: Vec<String>,
}

type OwnRow = (String, i64, Option<i64>, Option<String>, Option<i64>, String, i64, i64);

/// Balances and levels of the members with these external ids.
pub async fn balances(db: &Db, tenant: &Tenant, external_ids: &[String]) -> Result<BulkBalances> {
    bounded("external_ids", external_ids.len())?;
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let rows: Vec<OwnRow> = sqlx::query_as(
        "SELECT m.external_id, m.id, l.id, l.name, m.alliance_member_id, c.code, \
                CASE WHEN c.shared THEN 0 ELSE coalesce(a.balance, 0) - coalesce((SELECT sum(x.remaining) FROM lots x \
                    WHERE x.member_id = m.id AND x.currency = c.code AND x.remaining > 0 AND x.expires_at <= now()), 0) \
                END::bigint, \
                CASE WHEN c.shared THEN 0 ELSE coalesce(a.locked, 0) END::bigint \
         FROM members m LEFT JOIN levels l ON l.id = m.level_id CROSS JOIN currencies c \
         LEFT JOIN accounts a ON a.member_id = m.id AND a.currency = c.code \
         WHERE m.external_id = ANY($1) ORDER BY m.id, c.code",
    )
    .bind(external_ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut found: Vec<(MemberBalances, Option<i64>)> = Vec::new();
    for (ext, id, level_id, level_name, identity, currency, balance, locked) in rows {
        if found.last().is_none_or(|(m, _)| m.member_id != id) {
            let level = level_id.zip(level_name).map(|(id, name)| LevelRef { id, name });
            found.push((MemberBalances { external_id: ext, member_id: id, level, balances: vec![] }, identity));
        }
        if let Some((m, _)) = found.last_mut() {
            m.balances.push(BalanceRef { currency, balance, locked });
        }
    }
    if let Some(alliance_id) = tenant.alliance_id {
        shared_into(&mut tx, tenant, alliance_id, &mut found).await?;
    }
    tx.commit().await?;
    let mut members = Vec::with_capacity(found.len());
    let mut missing = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for ext in external_ids {
        if !seen.insert(ext) {
            continue;
        }
        match found.iter().position(|(m, _)| &m.external_id == ext) {
            Some(i) => members.push(found[i].0.clone()),
            None => missing.push(ext.clone()),
        }
    }
    Ok(BulkBalances { members, missing })
}

/// Fills in the shared currency's balances from the alliance's ledger.
async fn shared_into(
    conn: &mut PgConnection,
    tenant: &Tenant,
    alliance_id: AllianceId,
    found: &mut [(MemberBalances, Option<i64>)],
) -> Result<()> {
    let identities: Vec<i64> = found.iter().filter_map(|(_, i)| *i).collect();
    if identities.is_empty() {
        return Ok(());
    }
    enter_schema(conn, &crate::alliance::schema_name(alliance_id)).await?;
    let read: Result<Vec<(i64, String, i64, i64)>> = sqlx::query_as(
        "SELECT a.member_id, a.currency, a.balance - coalesce((SELECT sum(l.remaining) FROM lots l \
                WHERE l.member_id = a.member_id AND l.currency = a.currency AND l.remaining > 0 \
                AND l.expires_at <= now()), 0)::bigint, a.locked \
         FROM accounts a WHERE a.member_id = ANY($1)",
    )
    .bind(&identities)
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::from);
    let shared = switch_back(conn, &tenant.schema_name, read).await?;
    for (identity, currency, balance, locked) in shared {
        for (m, i) in found.iter_mut() {
            if *i == Some(identity)
                && let Some(b) = m.balances.iter_mut().find(|b| b.currency == currency)
            {
                (b.balance, b.locked) = (balance, locked);
            }
        }
    }
    Ok(())
}
