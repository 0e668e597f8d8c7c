//! The points ledger (SPEC L1-L11): accounts per (member, currency), immutable entries,
//! lots with expiry, allocations of debits to lots, locked grants, holds, transfers.
//!
//! Every change goes through `post` (one change: `credit`, `debit`, `lock`, `release`,
//! `return_to_lots`, `expire_due_lots`) or `batch` (credits in bulk): the account row is
//! updated first (taking its lock and checking `balance >= 0` in the database), then one
//! hash-chained entry is written per change. Lots are only touched while the account row
//! is locked. Shared alliance points run the same code in the alliance schema
//! (`alliance::book`).

pub mod batch;
pub mod chain;
pub mod currencies;
pub mod expiry;
pub mod history;
pub mod holds;
pub mod keeper;
pub mod locks;
pub mod merged;
pub mod post;
pub mod transfers;
pub mod verify;

use crate::ids::EntryId;
use serde::{Deserialize, Serialize};

/// Why an entry was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Earn,
    Spend,
    Adjust,
    Expire,
    TransferIn,
    TransferOut,
    Hold,
    HoldReturn,
    Refund,
    Lock,
    Release,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Earn => "earn",
            Self::Spend => "spend",
            Self::Adjust => "adjust",
            Self::Expire => "expire",
            Self::TransferIn => "transfer_in",
            Self::TransferOut => "transfer_out",
            Self::Hold => "hold",
            Self::HoldReturn => "hold_return",
            Self::Refund => "refund",
            Self::Lock => "lock",
            Self::Release => "release",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        use Reason::*;
        [Earn, Spend, Adjust, Expire, TransferIn, TransferOut, Hold, HoldReturn, Refund, Lock, Release]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// Credits that count as earned (for lifetime totals).
    pub(crate) fn is_earning(self) -> bool {
        matches!(self, Self::Earn | Self::Adjust | Self::Release)
    }
}

/// What produced an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Rule,
    Order,
    Admin,
    Transfer,
    Partner,
    Hold,
    System,
    Member,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rule => "rule",
            Self::Order => "order",
            Self::Admin => "admin",
            Self::Transfer => "transfer",
            Self::Partner => "partner",
            Self::Hold => "hold",
            Self::System => "system",
            Self::Member => "member",
        }
    }
}

/// Who or what caused an entry, recorded on it.
#[derive(Debug, Clone)]
pub struct Source {
    pub kind: SourceKind,
    /// Order number, hold id, partner reference…
    pub reference: String,
    /// The rule, script version and parameter version, for entries produced by a rule.
    pub rule: Option<RuleRef>,
    pub memo: String,
    /// "staff:12", "partner:3", "member:9", "system:expiry"…
    pub actor: String,
}

/// Which rule wrote an entry: its id, the script version and the parameter version that
/// ran (R5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef {
    pub id: i64,
    pub version: i32,
    pub params_version: i32,
}

impl Source {
    pub fn new(kind: SourceKind, actor: impl Into<String>) -> Self {
        Self { kind, reference: String::new(), rule: None, memo: String::new(), actor: actor.into() }
    }
    pub fn reference(mut self, r: impl Into<String>) -> Self {
        self.reference = r.into();
        self
    }
    pub fn memo(mut self, m: impl Into<String>) -> Self {
        self.memo = m.into();
        self
    }
}

/// One ledger entry as shown to people.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Entry {
    pub id: EntryId,
    pub member_id: i64,
    pub currency: String,
    /// Position in the account's chain.
    pub seq: i64,
    /// Change of the spendable balance (negative for debits).
    pub amount: i64,
    /// Change of the locked balance.
    pub locked_delta: i64,
    pub balance_after: i64,
    pub reason: String,
    pub source_kind: String,
    pub source_ref: String,
    pub rule_id: Option<i64>,
    pub rule_version: Option<i32>,
    /// The rule's parameter version that ran (entries written before parameters were
    /// versioned have none).
    pub params_version: Option<i32>,
    pub memo: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Announces written entries to the mall's webhooks (`points.changed`), in the
/// transaction that wrote them.
pub(crate) async fn announce(conn: &mut sqlx::PgConnection, entries: &[Entry]) -> crate::error::Result<()> {
    let data: Vec<serde_json::Value> = entries.iter().map(|e| serde_json::to_value(e).unwrap_or_default()).collect();
    crate::webhooks::enqueue::events(conn, "points.changed", data).await
}

pub(crate) const ENTRY_COLUMNS: &str = "id, member_id, currency, seq, amount, locked_delta, balance_after, reason, \
     source_kind, source_ref, rule_id, rule_version, params_version, memo, created_at";

pub use crate::limits::ledger as bounds;
/// The currency a request means when it names none: the mall's points.
pub fn points_currency() -> String {
    "points".into()
}
