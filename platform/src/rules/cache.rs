//! Compiled rules per tenant, reloaded after any change (R6). Versions are immutable, so
//! compiled scripts are cached by (tenant, rule, version); the per-tenant set of
//! enabled rules is evicted by the `Rules` change notification on every instance. A
//! mall of an alliance runs the alliance's rules after its own: they are part of its set,
//! and a change of them (`AllianceRules`) evicts every set.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moka::future::Cache;
use scripting::{AST, Sandbox};
use sqlx::PgConnection;

use crate::db::{enter_schema, switch_back};
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ids::TenantId;

/// One enabled rule, ready to run.
#[derive(Clone)]
pub struct LoadedRule {
    pub id: i64,
    /// An alliance-wide rule (its id is in the alliance schema's `rules`), run after the
    /// mall's own rules; it may only award the alliance's shared currency.
    pub alliance: bool,
    pub name: String,
    pub event_type: String,
    pub version: i32,
    pub params: serde_json::Value,
    /// The parameter version `params` is.
    pub params_version: i32,
    pub ast: Arc<AST>,
}

/// A tenant's enabled rules in evaluation order.
pub struct RuleSet {
    pub rules: Vec<LoadedRule>,
}

impl RuleSet {
    pub fn for_event<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a LoadedRule> + 'a {
        self.rules.iter().filter(move |r| r.event_type == kind || r.event_type == "*")
    }
}

#[derive(Clone)]
pub struct RuleCache {
    sets: Cache<TenantId, Arc<RuleSet>>,
    asts: Cache<(i64, i64, i32), Arc<AST>>,
    /// Bumped by every eviction; a set loaded across an eviction is not kept.
    generation: Arc<AtomicU64>,
    pub sandbox: Arc<Sandbox>,
    /// Who may run rules now (per-tenant slots and the shared evaluation threads).
    pub admission: super::admission::Admission,
    /// One outbox drain per mall at a time.
    pub drains: super::admission::Drains,
}

impl RuleCache {
    pub fn new(sandbox: Arc<Sandbox>) -> Self {
        Self {
            sets: Cache::builder().max_capacity(20_000).build(),
            asts: Cache::builder().max_capacity(100_000).build(),
            generation: Arc::new(AtomicU64::new(0)),
            sandbox,
            admission: super::admission::Admission::default(),
            drains: super::admission::Drains::default(),
        }
    }

    /// The tenant's enabled rules (loading them with `conn`, the tenant's transaction),
    /// followed by its alliance's rules when it is in one.
    pub async fn get(&self, conn: &mut PgConnection, tenant: &Tenant) -> Result<Arc<RuleSet>> {
        let tenant_id = tenant.id;
        if let Some(set) = self.sets.get(&tenant_id).await {
            return Ok(set);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let mut rules = self.load(conn, tenant_id.get(), false).await?;
        // Without a rule of its own for check-ins, a mall gets the built-in one (K1), with
        // the mall's reward table.
        if !rules.iter().any(|r| r.event_type == "checked_in") {
            let params = crate::marketing::checkin::rewards(conn).await?.0.params();
            let key = (tenant_id.get(), 0, 1);
            let ast = match self.asts.get(&key).await {
                Some(a) => a,
                None => {
                    let ast = Arc::new(self.sandbox.compile(crate::marketing::checkin::DEFAULT_RULE).map_err(|e| {
                        Error::Internal(anyhow::anyhow!("the built-in check-in rule does not compile: {e}"))
                    })?);
                    self.asts.insert(key, ast.clone()).await;
                    ast
                }
            };
            rules.push(LoadedRule {
                id: 0,
                alliance: false,
                name: "built-in check-in".into(),
                event_type: "checked_in".into(),
                version: 1,
                params,
                params_version: 1,
                ast,
            });
        }
        if let Some(alliance_id) = tenant.alliance_id {
            enter_schema(conn, &crate::alliance::schema_name(alliance_id)).await?;
            let loaded = self.load(conn, -alliance_id.get(), true).await;
            rules.extend(switch_back(conn, &tenant.schema_name, loaded).await?);
        }
        let set = Arc::new(RuleSet { rules });
        if self.generation.load(Ordering::Acquire) == generation {
            self.sets.insert(tenant_id, set.clone()).await;
        }
        Ok(set)
    }

    /// The enabled rules of the schema selected on `conn`, compiled (cached under `owner`:
    /// a tenant's id, or an alliance's negated).
    async fn load(&self, conn: &mut PgConnection, owner: i64, alliance: bool) -> Result<Vec<LoadedRule>> {
        type Row = (i64, String, String, i32, serde_json::Value, i32, String);
        // Archived rules are never evaluated, enabled or not.
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT r.id, r.name, r.event_type, r.current_version, r.params, r.params_version, v.script FROM rules r \
             JOIN rule_versions v ON v.rule_id = r.id AND v.version = r.current_version \
             WHERE r.enabled AND r.archived_at IS NULL ORDER BY r.position, r.id",
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut rules = Vec::with_capacity(rows.len());
        for (id, name, event_type, version, params, params_version, script) in rows {
            let key = (owner, id, version);
            let ast = match self.asts.get(&key).await {
                Some(a) => a,
                None => {
                    let ast = self.sandbox.compile(&script).map_err(|e| {
                        Error::Internal(anyhow::anyhow!("stored rule {id} v{version} no longer compiles: {e}"))
                    })?;
                    let ast = Arc::new(ast);
                    self.asts.insert(key, ast.clone()).await;
                    ast
                }
            };
            rules.push(LoadedRule { id, alliance, name, event_type, version, params, params_version, ast });
        }
        Ok(rules)
    }

    pub async fn evict(&self, tenant_id: TenantId) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.sets.invalidate(&tenant_id).await;
    }

    pub fn evict_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.sets.invalidate_all();
    }
}
