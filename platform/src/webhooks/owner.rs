//! Whose webhook endpoints: a mall's (in its schema, managed by its staff) or an
//! alliance's (in the alliance schema, managed by its admins). Both keep the same tables,
//! so the endpoint, delivery and worker code is one; the owner decides the schema, the
//! context the secrets are sealed under and where the audit entries go.

use std::ops::DerefMut;

use sqlx::PgConnection;

use crate::audit::{self, Actor};
use crate::directory::{Alliance, Tenant};
use crate::error::Result;
use crate::tx::{AllianceTx, TenantTx};

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // a few per worker pass or request
pub enum Owner {
    Mall(Tenant),
    Alliance(Alliance),
}

impl Owner {
    pub fn slug(&self) -> &str {
        match self {
            Self::Mall(t) => &t.slug,
            Self::Alliance(a) => &a.slug,
        }
    }

    pub fn cluster(&self) -> &str {
        match self {
            Self::Mall(t) => &t.cluster,
            Self::Alliance(a) => &a.cluster,
        }
    }

    pub fn schema(&self) -> &str {
        match self {
            Self::Mall(t) => &t.schema_name,
            Self::Alliance(a) => &a.schema_name,
        }
    }

    /// The event types its endpoints may subscribe to.
    pub fn event_types(&self) -> &'static [&'static str] {
        match self {
            Self::Mall(_) => super::EVENT_TYPES,
            Self::Alliance(_) => super::ALLIANCE_EVENT_TYPES,
        }
    }

    /// The vault context of endpoint `id`'s secret (a mall's stays as it always was).
    pub fn context(&self, endpoint_id: i64) -> String {
        match self {
            Self::Mall(t) => format!("{}:webhook:{endpoint_id}", t.id),
            Self::Alliance(a) => format!("alliance:{}:webhook:{endpoint_id}", a.id),
        }
    }

    /// Records `action` in the owner's audit log.
    pub async fn audit(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) -> Result<()> {
        match self {
            Self::Mall(t) => audit::record(conn, actor, Some(t.id), action, target, details).await,
            Self::Alliance(a) => audit::record_alliance(conn, actor, a.id, action, target, details).await,
        }
    }
}

/// A transaction in the owner's schema with who is acting.
pub trait OwnerTx: DerefMut<Target = PgConnection> + Send {
    fn owner(&self) -> Owner;
    fn acting(&self) -> Actor;
}

impl OwnerTx for TenantTx {
    fn owner(&self) -> Owner {
        Owner::Mall(self.tenant().clone())
    }
    fn acting(&self) -> Actor {
        self.actor().clone()
    }
}

impl OwnerTx for AllianceTx {
    fn owner(&self) -> Owner {
        Owner::Alliance(self.alliance().clone())
    }
    fn acting(&self) -> Actor {
        self.actor().clone()
    }
}

/// Records `action` by the acting user in the owner's audit log, in `tx`.
pub(crate) async fn audit(tx: &mut impl OwnerTx, action: &str, target: &str, details: serde_json::Value) -> Result<()> {
    let (owner, actor) = (tx.owner(), tx.acting());
    owner.audit(tx, &actor, action, target, details).await
}
