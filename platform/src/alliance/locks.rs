//! Lock grants of the alliance's shared currency (issue 12, point 4): the points are
//! locked in the alliance's ledger under the member's identity (made on first need) and
//! released there by the granting mall's jobs, `per_day` at each of its local midnights
//! (`ledger::locks`). Issuing one draws the mall's issuing budget for the whole grant in
//! the same transaction (SPEC A3: an exhausted budget refuses with 409
//! `budget_exhausted` and nothing is written). Settlement counts each release as issued
//! by the granting mall, on the day it is released (the locked points cannot be spent).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{budget, identity};
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ids::MemberId;
use crate::ledger::Source;
use crate::ledger::keeper::Keeper;
use crate::ledger::locks::{self, LockGrant, NewLockGrant};

/// Locks `g.total` for the member in the ledger its currency is kept in: the mall's own,
/// or the alliance's for the shared currency, charged to the mall's issuing budget.
pub async fn grant(
    conn: &mut PgConnection,
    tenant: &Tenant,
    g: &NewLockGrant,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<LockGrant> {
    if !super::book::is_shared(conn, &g.currency).await? {
        return locks::grant(conn, tenant, g, source, now).await;
    }
    if tenant.alliance_id.is_none() {
        return Err(Error::conflict(
            "alliance_left",
            format!("this mall left its alliance: {} can no longer be issued here", g.currency),
        ));
    }
    let identity = identity::of_member(conn, tenant, MemberId::new(g.member_id)).await?;
    let k = Keeper::in_alliance(tenant, identity.get());
    let (grant, entry) = locks::grant_kept(conn, tenant, &k, g, source, now).await?;
    let actor = k.source(source).actor;
    k.within(conn, async |c| budget::charge(c, tenant.id, &[(g.total, entry.id)], &actor).await).await?;
    Ok(grant)
}
