//! The one way a use case reaches a tenant's data (issue 11). `Db::write` and `Db::read`
//! open a transaction in the tenant's schema that carries the tenant and who is acting
//! (with the request id); the domain function does its work in it and records its own
//! audit entry there (`TenantTx::audit`), so a change and its audit entry commit
//! together or not at all. Handlers only decode, authorize, call one domain function and
//! encode its answer; route modules never see SQL (a test in `tenant-api` checks it).
//!
//! ```ignore
//! let rule = state.db.write(&auth.tenant, &auth.actor(), async |tx| store::create(tx, &sandbox, &body).await).await?;
//! ```

use std::ops::{Deref, DerefMut};

use sqlx::{PgConnection, Postgres, Transaction};

use crate::audit::{self, Actor};
use crate::db::Db;
use crate::directory::{Alliance, Tenant};
use crate::error::Result;

/// A transaction in one tenant's schema, with the tenant and the actor. Dereferences to
/// the connection, so domain functions taking `&mut PgConnection` accept it too.
pub struct TenantTx {
    conn: Transaction<'static, Postgres>,
    tenant: Tenant,
    actor: Actor,
}

impl TenantTx {
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub async fn commit(self) -> Result<()> {
        Ok(self.conn.commit().await?)
    }

    /// Commits when `out` is a success, else rolls back at once (a dropped transaction
    /// is rolled back only when its connection is next used, keeping its row locks
    /// until then), and passes `out` on.
    pub async fn finish<T>(self, out: Result<T>) -> Result<T> {
        match out {
            Ok(v) => self.commit().await.map(|()| v),
            Err(e) => {
                // The error that undid the work is the one to report; a failed rollback
                // only leaves the connection to be reset by the pool.
                let _ = self.conn.rollback().await;
                Err(e)
            }
        }
    }

    /// Records a staff action on this tenant in the audit log (SPEC B6), in this
    /// transaction.
    pub async fn audit(&mut self, action: &str, target: &str, details: serde_json::Value) -> Result<()> {
        audit::record(&mut self.conn, &self.actor, Some(self.tenant.id), action, target, details).await
    }
}

impl Deref for TenantTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl Db {
    /// Runs `work` in a transaction of `tenant` on behalf of `actor` and commits it; any
    /// error rolls everything back, its audit entry included.
    pub async fn write<T>(
        &self,
        tenant: &Tenant,
        actor: &Actor,
        work: impl AsyncFnOnce(&mut TenantTx) -> Result<T>,
    ) -> Result<T> {
        self.run(tenant, actor, false, work).await
    }

    /// Like `write`, in a read-only transaction: a use case that only reads cannot
    /// change anything by mistake.
    pub async fn read<T>(
        &self,
        tenant: &Tenant,
        actor: &Actor,
        work: impl AsyncFnOnce(&mut TenantTx) -> Result<T>,
    ) -> Result<T> {
        self.run(tenant, actor, true, work).await
    }

    /// Runs `work` in a transaction on the control schema (staff, keys, sessions of
    /// staff, the directory) and commits it; any error rolls it back.
    pub async fn control_write<T>(&self, work: impl AsyncFnOnce(&mut PgConnection) -> Result<T>) -> Result<T> {
        let mut tx = self.control().begin().await?;
        let out = work(&mut tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// A tenant transaction for a wrapper that adds its own steps around the use case
    /// (the idempotency record of the HTTP layer); it is rolled back unless committed.
    pub async fn begin(&self, tenant: &Tenant, actor: &Actor) -> Result<TenantTx> {
        let conn = self.begin_in(&tenant.cluster, &tenant.schema_name, false).await?;
        Ok(TenantTx { conn, tenant: tenant.clone(), actor: actor.clone() })
    }

    async fn run<T>(
        &self,
        tenant: &Tenant,
        actor: &Actor,
        read_only: bool,
        work: impl AsyncFnOnce(&mut TenantTx) -> Result<T>,
    ) -> Result<T> {
        let conn = self.begin_in(&tenant.cluster, &tenant.schema_name, read_only).await?;
        let mut tx = TenantTx { conn, tenant: tenant.clone(), actor: actor.clone() };
        let out = work(&mut tx).await;
        tx.finish(out).await
    }
}

/// A transaction in one alliance's schema, with the alliance and the acting alliance
/// admin: what `TenantTx` is to a mall, for the alliance's own data (its webhook
/// endpoints, its rules).
pub struct AllianceTx {
    conn: Transaction<'static, Postgres>,
    alliance: Alliance,
    actor: Actor,
}

impl AllianceTx {
    pub fn alliance(&self) -> &Alliance {
        &self.alliance
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Records an alliance admin's action in the audit log, in this transaction.
    pub async fn audit(&mut self, action: &str, target: &str, details: serde_json::Value) -> Result<()> {
        audit::record_alliance(&mut self.conn, &self.actor, self.alliance.id, action, target, details).await
    }
}

impl Deref for AllianceTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for AllianceTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl Db {
    /// Runs `work` in a transaction of alliance `a` on behalf of `actor` and commits it.
    pub async fn alliance_write<T>(
        &self,
        a: &Alliance,
        actor: &Actor,
        work: impl AsyncFnOnce(&mut AllianceTx) -> Result<T>,
    ) -> Result<T> {
        self.alliance_run(a, actor, false, work).await
    }

    /// Like `alliance_write`, read-only.
    pub async fn alliance_read<T>(
        &self,
        a: &Alliance,
        actor: &Actor,
        work: impl AsyncFnOnce(&mut AllianceTx) -> Result<T>,
    ) -> Result<T> {
        self.alliance_run(a, actor, true, work).await
    }

    async fn alliance_run<T>(
        &self,
        a: &Alliance,
        actor: &Actor,
        read_only: bool,
        work: impl AsyncFnOnce(&mut AllianceTx) -> Result<T>,
    ) -> Result<T> {
        let conn = self.begin_in(&a.cluster, &a.schema_name, read_only).await?;
        let mut tx = AllianceTx { conn, alliance: a.clone(), actor: actor.clone() };
        let out = work(&mut tx).await?;
        tx.conn.commit().await?;
        Ok(out)
    }
}
