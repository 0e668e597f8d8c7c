//! Which ledger keeps a (member, currency): the mall's own schema, or — for the
//! alliance's shared currency — the alliance schema, under the member's alliance
//! identity. The one place a posting is routed by currency: holds, transfers and lock
//! grants run their ledger work through `Keeper::within`, which selects the right schema
//! (and selects the mall's again on every way out), names the member as that ledger
//! knows it (`member`) and marks shared entries with the mall that wrote them (`source`).
//!
//! `Keeper::existing` only reads: it finds the identity a member already has. Making an
//! identity on first need (a credit to a member who never held shared points) is the
//! alliance's business (`alliance::book::keeper`), which hands back a `Keeper` too.

use sqlx::PgConnection;

use super::{Entry, Source};
use crate::db::{enter_schema, switch_back};
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ids::{AllianceId, TenantId};

/// Where a (member, currency) is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keeper {
    /// The mall's own ledger.
    Mall,
    /// The alliance's ledger (`schema`), where the member is `identity`.
    Alliance { schema: String, home: String, tenant_id: TenantId, identity: i64 },
}

/// Whether `currency` is the alliance's shared currency in the mall selected on `conn`.
pub async fn is_shared(conn: &mut PgConnection, tenant: &Tenant, currency: &str) -> Result<bool> {
    if tenant.alliance_id.is_none() {
        return Ok(false);
    }
    let shared: Option<bool> =
        sqlx::query_scalar("SELECT shared FROM currencies WHERE code = $1").bind(currency).fetch_optional(conn).await?;
    Ok(shared == Some(true))
}

/// The schema of alliance `id` (as the directory makes it).
pub fn alliance_schema(id: AllianceId) -> String {
    format!("a_{id}")
}

impl Keeper {
    /// The ledger of `member_id` in `currency`, with the identity the member already has.
    /// A member without one has never held shared points: 409 `insufficient_points`.
    pub async fn existing(conn: &mut PgConnection, tenant: &Tenant, member_id: i64, currency: &str) -> Result<Self> {
        if !is_shared(conn, tenant, currency).await? {
            return Ok(Self::Mall);
        }
        // KEY SHARE: as `alliance::identity::of_member`, a link in flight is waited for.
        let identity: Option<Option<i64>> =
            sqlx::query_scalar("SELECT alliance_member_id FROM members WHERE id = $1 FOR KEY SHARE")
                .bind(member_id)
                .fetch_optional(&mut *conn)
                .await?;
        match identity {
            None => Err(Error::not_found("member_not_found", "no such member")),
            Some(None) => Err(Error::conflict("insufficient_points", "the balance is 0")),
            Some(Some(identity)) => Ok(Self::in_alliance(tenant, identity)),
        }
    }

    /// The alliance ledger of `identity`, for a mall of the alliance.
    pub fn in_alliance(tenant: &Tenant, identity: i64) -> Self {
        Self::Alliance {
            schema: alliance_schema(tenant.alliance_id.unwrap_or(AllianceId::new(0))),
            home: tenant.schema_name.clone(),
            tenant_id: tenant.id,
            identity,
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Alliance { .. })
    }

    /// The member as the ledger that keeps it knows it.
    pub fn member(&self, local: i64) -> i64 {
        match self {
            Self::Mall => local,
            Self::Alliance { identity, .. } => *identity,
        }
    }

    /// `source` as written in this ledger: in the alliance's, its actor names the mall
    /// ("tenant:5/partner:3"), so settlement knows who issued or took each shared point.
    pub fn source(&self, source: &Source) -> Source {
        match self {
            Self::Mall => source.clone(),
            Self::Alliance { tenant_id, .. } => {
                let mut s = source.clone();
                s.actor = format!("tenant:{tenant_id}/{}", source.actor);
                s
            }
        }
    }

    /// Runs `work` with this ledger's schema selected, and the mall's again afterwards
    /// (on every way out, errors included).
    pub async fn within<T>(
        &self,
        conn: &mut PgConnection,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T>,
    ) -> Result<T> {
        match self {
            Self::Mall => work(conn).await,
            Self::Alliance { schema, home, .. } => {
                enter_schema(conn, schema).await?;
                let done = work(&mut *conn).await;
                switch_back(conn, home, done).await
            }
        }
    }

    /// Entries written in this ledger, named by the mall's member `local` and announced
    /// to the mall's webhooks (the alliance ledger's own announcements stay there).
    pub async fn show(&self, conn: &mut PgConnection, local: i64, mut entries: Vec<Entry>) -> Result<Vec<Entry>> {
        if self.is_shared() {
            for e in &mut entries {
                e.member_id = local;
            }
            super::announce(conn, &entries).await?;
        }
        Ok(entries)
    }

    /// One entry, like `show`.
    pub async fn show_one(&self, conn: &mut PgConnection, local: i64, entry: Entry) -> Result<Entry> {
        let mut v = self.show(conn, local, vec![entry]).await?;
        v.pop().ok_or_else(|| Error::Internal(anyhow::anyhow!("an entry went missing")))
    }
}
