//! A batch of events on its way through the pipeline: the events as received
//! (`IncomingEvent`), what becomes of each before any rule runs (`Plan`) and what the
//! caller is told (`Outcome`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use scripting::EventInput;
use serde::{Deserialize, Serialize};

use super::bounds;
use super::context::Contexts;
use super::evaluate::{Job, RuleRun, Verdict};
use crate::error::Result;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncomingEvent {
    /// The sender's unique id of this event; sending it again returns the first result.
    #[schema(min_length = 1, max_length = 150)]
    pub id: String,
    /// Built-in (registered, checked_in, order_completed, …) or custom type.
    #[serde(rename = "type")]
    #[schema(value_type = super::EventType)]
    pub kind: String,
    pub member_id: i64,
    /// When it happened (default: now); not in the future (5 minutes of clock skew allowed).
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
    /// Free JSON object read by rules as `event.data`, e.g. {"amount_fen": 12800}; at
    /// most 8 KiB.
    #[serde(default)]
    #[schema(value_type = Option<crate::doc::JsonObject>)]
    pub data: serde_json::Value,
}

/// What became of an event: its rules applied, denied or failed it (recorded, under the
/// CHECK of tenant migration 0003), or it was rejected before any rule ran (not
/// recorded: e.g. no such member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum EventStatus {
    Applied,
    Denied,
    Failed,
    Rejected,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Denied => "denied",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
        }
    }
}

/// What became of one event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    pub id: String,
    pub status: EventStatus,
    /// Per rule: {"rule_id", "name", "version", "params_version", "effects"}, and
    /// `"alliance": true` for an alliance-wide rule (its id is the alliance's), and
    /// `"skipped": [{"effect", "code", "message"}]` for effects left out when the event
    /// was written (an issue of shared points to a member with nothing proven, or an
    /// alliance rule's award the budget does not cover).
    pub effects: serde_json::Value,
    pub error: Option<String>,
    /// True when this event id had been processed before and this is its first result.
    pub replayed: bool,
}

impl IncomingEvent {
    /// `data` as scripts and the event log see it: an object (`{}` when absent).
    pub(super) fn data_object(&self) -> serde_json::Value {
        if self.data.is_null() { serde_json::json!({}) } else { self.data.clone() }
    }

    pub(super) fn check(&self, now: DateTime<Utc>) -> Result<()> {
        let mut v = crate::error::Validator::new();
        v.check(!self.id.is_empty() && self.id.chars().count() <= 150, "id", "1 to 150 characters");
        v.check(super::event_type_is_valid(&self.kind), "type", "a-z, 0-9 and _, starting with a letter, at most 64");
        v.check(self.data.is_object() || self.data.is_null(), "data", "a JSON object");
        v.check(self.data.to_string().len() <= bounds::EVENT_DATA_BYTES_MAX, "data", "at most 8 KiB");
        v.check(
            self.occurred_at.is_none_or(|t| t <= now + chrono::Duration::minutes(5)),
            "occurred_at",
            "not in the future",
        );
        v.finish()
    }
}

/// A batch on its way through the pipeline.
pub(super) struct Batch<'a> {
    /// "partner", "member:<id>" or "system".
    pub source: &'a str,
    pub events: &'a [IncomingEvent],
    /// Cascade depth (0 for events from outside).
    pub depth: i32,
    pub now: DateTime<Utc>,
    /// Outbox rows these events come from, marked processed with them.
    pub outbox: &'a [i64],
    /// Each event's idempotency key: `source:id`.
    pub keys: Vec<String>,
    /// The mall's time zone: each event counts on its local day.
    pub tz: chrono_tz::Tz,
}

impl<'a> Batch<'a> {
    pub(super) fn new(
        source: &'a str,
        events: &'a [IncomingEvent],
        depth: i32,
        now: DateTime<Utc>,
        outbox: &'a [i64],
        tz: chrono_tz::Tz,
    ) -> Self {
        let keys = events.iter().map(|e| format!("{source}:{}", e.id)).collect();
        Self { source, events, depth, now, outbox, keys, tz }
    }

    /// The mall's local day of the `i`th event (when it occurred; now by default).
    pub(super) fn day_of(&self, i: usize) -> NaiveDate {
        crate::localtime::day(self.tz, self.events[i].occurred_at.unwrap_or(self.now))
    }

    /// The mall's local day now.
    pub(super) fn today(&self) -> NaiveDate {
        crate::localtime::day(self.tz, self.now)
    }

    pub(super) fn pairs(&self) -> Vec<(i64, &str)> {
        self.events.iter().map(|e| (e.member_id, e.kind.as_str())).collect()
    }

    pub(super) fn members(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.events.iter().map(|e| e.member_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// What becomes of each event before any rule runs.
pub(super) struct Plan {
    /// Outcomes decided already (unknown members); the rest come from the write.
    pub decided: Vec<Option<Outcome>>,
    /// (repeat, first occurrence) of ids repeated within the batch.
    pub repeat_of: Vec<(usize, usize)>,
    /// Events to evaluate and record, in order.
    pub fresh: Vec<usize>,
    /// Events recorded before.
    pub replays: Vec<usize>,
}

impl Plan {
    pub(super) fn new(batch: &Batch<'_>, ctx: &Contexts, seen: &HashSet<String>) -> Self {
        let events = batch.events;
        let mut plan = Plan { decided: vec![None; events.len()], repeat_of: vec![], fresh: vec![], replays: vec![] };
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, ev) in events.iter().enumerate() {
            let key = batch.keys[i].as_str();
            if let Some(&j) = first.get(key) {
                plan.repeat_of.push((i, j));
                continue;
            }
            first.insert(key, i);
            if !ctx.knows(ev.member_id) {
                plan.decided[i] = Some(Outcome::rejected(ev, "no such member"));
            } else if seen.contains(key) {
                plan.replays.push(i);
            } else {
                plan.fresh.push(i);
            }
        }
        plan
    }

    pub(super) fn jobs(&self, batch: &Batch<'_>) -> Vec<Job> {
        self.fresh
            .iter()
            .map(|&i| {
                let ev = &batch.events[i];
                let data = ev.data_object();
                let day = batch.day_of(i);
                let event = EventInput {
                    kind: ev.kind.clone(),
                    id: ev.id.clone(),
                    occurred_at: crate::localtime::rfc3339(batch.tz, ev.occurred_at.unwrap_or(batch.now)),
                    day: day.to_string(),
                    data,
                };
                Job { member_id: ev.member_id, event, day }
            })
            .collect()
    }
}

impl Outcome {
    pub(super) fn rejected(ev: &IncomingEvent, message: &str) -> Self {
        Self {
            id: ev.id.clone(),
            status: EventStatus::Rejected,
            effects: serde_json::json!([]),
            error: Some(message.to_string()),
            replayed: false,
        }
    }

    pub(super) fn of(ev: &IncomingEvent, verdict: &Verdict) -> Self {
        let summary = |runs: &[RuleRun]| {
            serde_json::Value::Array(
                runs.iter()
                    .map(|r| {
                        let mut run = serde_json::json!({"rule_id": r.rule_id, "name": r.name, "version": r.version,
                            "params_version": r.params_version, "effects": r.effects});
                        if r.alliance {
                            run["alliance"] = serde_json::Value::Bool(true);
                        }
                        if !r.skipped.is_empty() {
                            run["skipped"] = serde_json::json!(r.skipped);
                        }
                        run
                    })
                    .collect(),
            )
        };
        let (status, effects, error) = match verdict {
            Verdict::Apply(runs) => (EventStatus::Applied, summary(runs), None),
            Verdict::Deny(reason, runs) => (EventStatus::Denied, summary(runs), Some(reason.clone())),
            Verdict::Fail(message) => (EventStatus::Failed, serde_json::json!([]), Some(message.clone())),
        };
        Self { id: ev.id.clone(), status, effects, error, replayed: false }
    }
}
