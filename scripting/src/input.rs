//! What a script can read: `event`, `member` and `params`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The event being processed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    /// Event type, e.g. "checked_in", "order_completed".
    #[serde(rename = "type")]
    pub kind: String,
    /// The sender's id of the event (idempotency).
    #[serde(default)]
    pub id: String,
    /// RFC 3339.
    #[serde(default)]
    pub occurred_at: String,
    /// Free data sent with the event, e.g. {"amount_fen": 12800}.
    #[serde(default)]
    pub data: serde_json::Value,
}

/// The member the event is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemberInput {
    pub id: i64,
    pub level: LevelInput,
    pub tags: Vec<String>,
    /// Spendable balance per currency, e.g. {"points": 120, "exp": 900}.
    pub balances: BTreeMap<String, i64>,
    /// Counters set by rules with set_counter.
    pub counters: BTreeMap<String, i64>,
    /// Events of this type today (UTC), this week (from Monday) and ever, this one included.
    pub today: i64,
    pub week: i64,
    pub lifetime: i64,
    /// Consecutive days, ending today, with an event of this type (this one included).
    pub streak: i64,
    /// Who invited this member, then who invited them… (ids, at most 3).
    pub referrers: Vec<i64>,
    /// RFC 3339.
    pub joined_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LevelInput {
    pub name: String,
    pub threshold: i64,
    /// E.g. {"earn_multiplier": 1.5}.
    pub benefits: serde_json::Value,
}

/// Everything one evaluation sees.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub event: EventInput,
    #[serde(default)]
    pub member: MemberInput,
    /// The rule's parameters, edited separately from its code.
    #[serde(default)]
    pub params: serde_json::Value,
}
