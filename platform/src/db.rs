//! Connection pools per PostgreSQL cluster and the per-transaction tenant selection.
//!
//! The control schema lives on the cluster named `main`. Every tenant row in the
//! directory names the cluster that holds its schema (SPEC T5), so tenants can be spread
//! over several clusters later without touching the API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use crate::error::{Error, Result};

pub const MAIN_CLUSTER: &str = "main";

#[derive(Clone)]
pub struct Db {
    clusters: Arc<HashMap<String, PgPool>>,
    /// Each cluster's side pool (`limits::SIDE_POOL_MAX_CONNS`), opened on first use.
    side: Arc<HashMap<String, PgPool>>,
}

impl Db {
    /// Connects to the main cluster (and any others given as `name=url`).
    pub async fn connect(main_url: &str, extra: &[(String, String)], max_conns: u32) -> anyhow::Result<Self> {
        let (mut clusters, mut side) = (HashMap::new(), HashMap::new());
        let named =
            std::iter::once((MAIN_CLUSTER, main_url)).chain(extra.iter().map(|(n, u)| (n.as_str(), u.as_str())));
        for (name, url) in named {
            clusters.insert(name.to_string(), pool(url, max_conns).await?);
            side.insert(name.to_string(), side_pool(url)?);
        }
        Ok(Self { clusters: Arc::new(clusters), side: Arc::new(side) })
    }

    /// The side pool of a named cluster: for a short statement run while holding a
    /// connection of `cluster(name)`.
    pub fn side(&self, name: &str) -> Result<&PgPool> {
        self.side.get(name).ok_or_else(|| Error::Internal(anyhow::anyhow!("cluster {name:?} is not configured")))
    }

    /// The pool of the cluster that holds the control schema.
    pub fn control(&self) -> &PgPool {
        &self.clusters[MAIN_CLUSTER]
    }

    /// The pool of a named cluster.
    pub fn cluster(&self, name: &str) -> Result<&PgPool> {
        self.clusters.get(name).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("cluster {name:?} is in the directory but not configured on this server"))
        })
    }

    pub fn cluster_names(&self) -> Vec<String> {
        self.clusters.keys().cloned().collect()
    }

    /// Begins a transaction on the tenant's cluster with `search_path` set to its schema
    /// for this transaction only (reset at commit, safe with pooled connections).
    ///
    /// One round trip: `BEGIN` and `SET LOCAL` go together as one simple query. The name
    /// is formatted into that statement, so only directory-made names (`[a-z][a-z0-9_]*`,
    /// at most 63 bytes) are accepted; anything else is refused before reaching SQL.
    pub async fn tenant_tx(&self, cluster: &str, schema: &str) -> Result<Transaction<'static, Postgres>> {
        self.begin_in(cluster, schema, false).await
    }

    /// `tenant_tx`, optionally read-only (`Db::read`).
    pub(crate) async fn begin_in(
        &self,
        cluster: &str,
        schema: &str,
        read_only: bool,
    ) -> Result<Transaction<'static, Postgres>> {
        let begin = begin_sql(schema, if read_only { " READ ONLY" } else { "" })?;
        Ok(self.cluster(cluster)?.begin_with(sqlx::AssertSqlSafe(begin)).await?)
    }

    /// True when every configured cluster answers a query.
    pub async fn reachable(&self) -> bool {
        for pool in self.clusters.values() {
            if sqlx::query("SELECT 1").execute(pool).await.is_err() {
                return false;
            }
        }
        true
    }
}

/// Selects `schema` for the rest of the current transaction. The name is passed as a
/// bind parameter and quoted by PostgreSQL, never formatted into SQL.
pub async fn select_schema(conn: &mut sqlx::PgConnection, schema: &str) -> Result<()> {
    sqlx::query("SELECT set_config('search_path', quote_ident($1), true)").bind(schema).execute(conn).await?;
    Ok(())
}

/// Selects `schema` and checks that the transaction now runs in it (a write that goes to
/// another schema's ledger asserts where it is before it writes).
pub async fn enter_schema(conn: &mut sqlx::PgConnection, schema: &str) -> Result<()> {
    select_schema(conn, schema).await?;
    let now_in: Option<String> = sqlx::query_scalar("SELECT current_schema()").fetch_one(&mut *conn).await?;
    if now_in.as_deref() != Some(schema) {
        return Err(Error::Internal(anyhow::anyhow!("expected to run in schema {schema:?}, found {now_in:?}")));
    }
    Ok(())
}

/// Selects `schema` again after work done in another schema and hands back that work's
/// result: called on every way out, the error path included, so a caller that carries
/// on after an error (a savepoint, a batch that records failures) is back in its own
/// schema. The work's error wins over a failure to switch back (an aborted transaction
/// refuses both).
pub async fn switch_back<T>(conn: &mut sqlx::PgConnection, schema: &str, work: Result<T>) -> Result<T> {
    let back = select_schema(conn, schema).await;
    let value = work?;
    back?;
    Ok(value)
}

/// `BEGIN{mode}; SET LOCAL search_path TO "{schema}"`: the start of a tenant transaction
/// as one simple query. The name is formatted into it, so only directory-made names
/// (`[a-z][a-z0-9_]*`, at most 63 bytes) are accepted; anything else is refused before
/// reaching SQL. Only the tenant's schema is on the path: `public` (writable by default)
/// is not, so nothing there can shadow a tenant table or function.
pub(crate) fn begin_sql(schema: &str, mode: &str) -> Result<String> {
    Ok(format!("BEGIN{mode}; SET LOCAL search_path TO \"{}\"", plain_schema(schema)?))
}

/// `schema` when it is a directory-made name (`[a-z][a-z0-9_]*`, at most 63 bytes), safe
/// to format into SQL between double quotes; anything else is refused before reaching SQL.
pub(crate) fn plain_schema(schema: &str) -> Result<&str> {
    if !crate::ident::is_lowercase_ident(schema, 1..=63, b'_') {
        return Err(Error::Internal(anyhow::anyhow!("schema name {schema:?} is not a plain identifier")));
    }
    Ok(schema)
}

fn side_pool(url: &str) -> anyhow::Result<PgPool> {
    let opts: PgConnectOptions = url.parse()?;
    Ok(PgPoolOptions::new()
        .max_connections(crate::limits::SIDE_POOL_MAX_CONNS)
        .min_connections(0)
        .acquire_timeout(Duration::from_millis(crate::limits::DB_ACQUIRE_TIMEOUT_MS))
        // Only stock reservations run here: each is made durable by the flush of its
        // order's commit, which comes after it in the WAL (see `mall::stock`).
        .connect_lazy_with(opts.application_name("pointsmall-side").options([("synchronous_commit", "off")])))
}

async fn pool(url: &str, max_conns: u32) -> anyhow::Result<PgPool> {
    let opts: PgConnectOptions = url.parse()?;
    let opts = opts.application_name("pointsmall");
    Ok(PgPoolOptions::new()
        .max_connections(max_conns)
        .min_connections(0)
        // While PostgreSQL is down a request waits this long for a connection, then is
        // answered 503 with Retry-After; the pool reconnects by itself once it is back.
        .acquire_timeout(Duration::from_millis(crate::limits::DB_ACQUIRE_TIMEOUT_MS))
        .connect_with(opts)
        .await?)
}
