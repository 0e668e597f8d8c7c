//! What every handler can reach.

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use platform::auth::rate_limit::LoginLimiter;
use platform::auth::tokens::TokenKeys;
use platform::db::Db;
use platform::directory::Directory;
use platform::mall::browse::CatalogCache;
use platform::rules::cache::RuleCache;
use platform::sender::Sender;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub db: Db,
    pub directory: Directory,
    pub tokens: TokenKeys,
    pub sender: Arc<dyn Sender>,
    pub limiter: LoginLimiter,
    /// Compiled rules per tenant, with the shared sandbox.
    pub rules: RuleCache,
    /// Cached catalog answers for members.
    pub catalog: CatalogCache,
    /// Cached content answers for members (banners, announcements, zones, rule pages).
    pub content: platform::content::published::ContentCache,
    /// Files (product images): S3-compatible or a local directory.
    pub storage: platform::storage::Storage,
    pub metrics: Option<PrometheusHandle>,
    /// Seals provider secrets at rest.
    pub vault: platform::vault::Vault,
    /// Which addresses webhook endpoints may name.
    pub webhook_addresses: platform::webhooks::address::AddressPolicy,
    /// Product views and searches counted for the dashboard, written every second.
    pub visits: platform::reports::visits::Visits,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// Runs the mall's pending outbox events (its own events: logged_in, favorited,
    /// review_posted, order_completed, first_redemption, profile_completed,
    /// task_completed) through its rules, in the
    /// background right after the request that emitted them; the jobs catch any left.
    pub fn drain_soon(&self, tenant: &Arc<platform::directory::Tenant>) {
        let (state, tenant) = (self.clone(), tenant.clone());
        tokio::spawn(async move {
            if let Err(e) = platform::rules::pipeline::drain_outbox_soon(&state.db, &state.rules, &tenant).await {
                tracing::warn!(error = %e, tenant = %tenant.slug, "the mall's events wait for the jobs");
            }
        });
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
