//! The domain core of the points mall: tenancy and the tenant directory, migrations,
//! authentication and sessions, roles, audit, members, alliances and their shared
//! ledger, the points ledger, earn rules (pipeline and admission; the sandbox lives in
//! `scripting`), the mall (catalog, redemption, orders, payments), marketing (check-in,
//! lottery), provider secrets and background jobs. HTTP lives in `tenant-api`.

pub mod alliance;
pub mod analytics;
pub mod audit;
pub mod auth;
pub mod broadcasts;
pub mod content;
pub mod crm;
pub mod db;
pub mod directory;
pub mod doc;
pub mod error;
pub mod fleet;
pub mod found;
pub mod health;
pub mod i18n;
pub mod idempotency;
pub mod ident;
pub mod ids;
pub mod images;
pub mod jobs;
pub mod ledger;
pub mod levels;
pub mod limits;
pub mod localtime;
pub mod mall;
pub mod marketing;
pub mod member_csv;
pub mod members;
pub mod messages;
pub mod migrate;
pub mod notify;
pub mod outbox;
pub mod points;
pub mod provider_secrets;
pub mod rbac;
pub mod reports;
pub mod rules;
pub mod schema;
pub mod segments;
pub mod sender;
pub mod settings;
pub mod sheet;
pub mod staff;
pub mod storage;
pub mod tasks;
pub mod tenancy;
pub mod tenant_archive;
pub mod tx;
pub mod urls;
pub mod vault;
pub mod webhooks;

pub use error::{Error, Result};
