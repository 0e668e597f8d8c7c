//! What a script returns: a list of effects, built with the helper functions below.
//! The host validates them and applies them in one transaction.

use rhai::{Dynamic, Engine, INT, Map};
use serde::{Deserialize, Serialize};

use crate::limits;
use crate::sandbox::RunError;

/// One effect of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Effect {
    /// Credit the member; `expires_in_days` overrides the mall's expiry policy.
    Award { currency: String, amount: i64, memo: String, expires_in_days: Option<i64> },
    /// Debit the member.
    Deduct { currency: String, amount: i64, memo: String },
    /// Credit the referrer `depth` levels up (1 = who invited this member).
    AwardReferrer { depth: i64, currency: String, amount: i64, memo: String },
    /// Lock `total` for release `per_day`.
    Lock { currency: String, total: i64, per_day: i64, memo: String },
    /// Release `amount` of the member's (depth 0) or a referrer's oldest lock grant now.
    Accelerate { depth: i64, amount: i64, memo: String },
    /// Set one of the member's counters.
    SetCounter { name: String, value: i64 },
    /// Tag the member.
    Tag { name: String },
    /// Refuse the event: nothing of any rule is applied.
    Deny { reason: String },
}

fn map(kind: &str, fields: &[(&str, Dynamic)]) -> Map {
    let mut m = Map::new();
    m.insert("kind".into(), Dynamic::from(kind.to_string()));
    for (k, v) in fields {
        m.insert((*k).into(), v.clone());
    }
    m
}

fn s(v: &str) -> Dynamic {
    Dynamic::from(v.to_string())
}

fn i(v: INT) -> Dynamic {
    Dynamic::from(v)
}

/// Registers the effect helpers (pure functions returning maps).
pub fn register(engine: &mut Engine) {
    engine
        .register_fn("award", |c: &str, a: INT| map("award", &[("currency", s(c)), ("amount", i(a)), ("memo", s(""))]));
    engine.register_fn("award", |c: &str, a: INT, memo: &str| {
        map("award", &[("currency", s(c)), ("amount", i(a)), ("memo", s(memo))])
    });
    engine.register_fn("award_expiring", |c: &str, a: INT, days: INT, memo: &str| {
        map("award", &[("currency", s(c)), ("amount", i(a)), ("memo", s(memo)), ("expires_in_days", i(days))])
    });
    engine.register_fn("deduct", |c: &str, a: INT, memo: &str| {
        map("deduct", &[("currency", s(c)), ("amount", i(a)), ("memo", s(memo))])
    });
    engine.register_fn("award_referrer", |depth: INT, c: &str, a: INT, memo: &str| {
        map("award_referrer", &[("depth", i(depth)), ("currency", s(c)), ("amount", i(a)), ("memo", s(memo))])
    });
    engine.register_fn("lock", |c: &str, total: INT, per_day: INT, memo: &str| {
        map("lock", &[("currency", s(c)), ("total", i(total)), ("per_day", i(per_day)), ("memo", s(memo))])
    });
    engine.register_fn("accelerate", |depth: INT, a: INT, memo: &str| {
        map("accelerate", &[("depth", i(depth)), ("amount", i(a)), ("memo", s(memo))])
    });
    engine.register_fn("set_counter", |name: &str, value: INT| {
        map("set_counter", &[("name", s(name)), ("value", i(value))])
    });
    engine.register_fn("tag", |name: &str| map("tag", &[("name", s(name))]));
    engine.register_fn("deny", |reason: &str| map("deny", &[("reason", s(reason))]));
}

fn invalid(m: impl Into<String>) -> RunError {
    RunError { kind: "bad_effects", message: m.into() }
}

/// Reads a script's result: `()` (no effects), one effect map, or an array of them.
pub fn from_result(value: Dynamic) -> Result<Vec<Effect>, RunError> {
    let items: Vec<Dynamic> = if value.is_unit() {
        vec![]
    } else if value.is_map() {
        vec![value]
    } else if value.is_array() {
        value.into_array().map_err(|t| invalid(format!("expected an array, got {t}")))?
    } else {
        return Err(invalid(format!(
            "a rule must return an effect or an array of effects (award(…), tag(…)…), not a {}",
            value.type_name()
        )));
    };
    if items.len() > limits::MAX_EFFECTS {
        return Err(invalid(format!("{} effects; at most {}", items.len(), limits::MAX_EFFECTS)));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if item.is_unit() {
            continue;
        }
        let json: serde_json::Value = rhai::serde::from_dynamic(&item).map_err(|e| invalid(e.to_string()))?;
        let effect: Effect =
            serde_json::from_value(json.clone()).map_err(|e| invalid(format!("not an effect: {json} ({e})")))?;
        effect.validate().map_err(invalid)?;
        out.push(effect);
    }
    Ok(out)
}

impl Effect {
    fn validate(&self) -> Result<(), String> {
        let amount = |a: i64| {
            if (1..=limits::MAX_AMOUNT).contains(&a) {
                Ok(())
            } else {
                Err(format!("amount {a} is not between 1 and {}", limits::MAX_AMOUNT))
            }
        };
        let name = |n: &str| {
            if !n.is_empty() && n.chars().count() <= limits::MAX_NAME_CHARS {
                Ok(())
            } else {
                Err(format!("name {n:?} must be 1 to {} characters", limits::MAX_NAME_CHARS))
            }
        };
        let memo = |m: &str| {
            if m.chars().count() <= limits::MAX_MEMO_CHARS {
                Ok(())
            } else {
                Err(format!("memo longer than {}", limits::MAX_MEMO_CHARS))
            }
        };
        let depth = |d: i64, min: i64| {
            if (min..=limits::MAX_REFERRAL_DEPTH).contains(&d) {
                Ok(())
            } else {
                Err(format!("depth {d} is not between {min} and {}", limits::MAX_REFERRAL_DEPTH))
            }
        };
        match self {
            Self::Award { currency, amount: a, memo: m, expires_in_days } => {
                name(currency)?;
                amount(*a)?;
                memo(m)?;
                if let Some(d) = expires_in_days
                    && !(1..=3650).contains(d)
                {
                    return Err(format!("expires_in_days {d} is not between 1 and 3650"));
                }
                Ok(())
            }
            Self::Deduct { currency, amount: a, memo: m } => name(currency).and(amount(*a)).and(memo(m)),
            Self::AwardReferrer { depth: d, currency, amount: a, memo: m } => {
                depth(*d, 1).and(name(currency)).and(amount(*a)).and(memo(m))
            }
            Self::Lock { currency, total, per_day, memo: m } => {
                name(currency).and(amount(*total)).and(amount(*per_day)).and(memo(m))
            }
            Self::Accelerate { depth: d, amount: a, memo: m } => depth(*d, 0).and(amount(*a)).and(memo(m)),
            Self::SetCounter { name: n, .. } | Self::Tag { name: n } => name(n),
            Self::Deny { reason } => memo(reason),
        }
    }
}
