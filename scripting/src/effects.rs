//! What a script returns: a list of effects, built with the helper functions below.
//! The host validates them and applies them in one transaction.

use rhai::{Dynamic, Engine, INT, ImmutableString, Map};
use serde::{Deserialize, Serialize};

use crate::error::RunError;
use crate::limits;

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

/// An effect map, `kind` first. Returned as a `Dynamic`: Rhai would rebuild a returned
/// `Map` entry by entry.
fn map<const N: usize>(fields: [(&str, Dynamic); N]) -> Dynamic {
    let mut m = Map::new();
    for (k, v) in fields {
        m.insert(k.into(), v);
    }
    Dynamic::from_map(m)
}

fn s(v: ImmutableString) -> Dynamic {
    v.into()
}

fn i(v: INT) -> Dynamic {
    Dynamic::from_int(v)
}

/// The strings every effect map repeats: the kinds, and the empty memo.
const SHARED: [&str; 9] = ["award", "deduct", "award_referrer", "lock", "accelerate", "set_counter", "tag", "deny", ""];
const AWARD: usize = 0;
const DEDUCT: usize = 1;
const AWARD_REFERRER: usize = 2;
const LOCK: usize = 3;
const ACCELERATE: usize = 4;
const SET_COUNTER: usize = 5;
const TAG: usize = 6;
const DENY: usize = 7;
const EMPTY: usize = 8;

thread_local! {
    /// Allocated once per thread, so that their reference counts are not shared between
    /// threads (effect maps never leave the thread that runs the script).
    static SHARED_STRINGS: [Dynamic; SHARED.len()] = SHARED.map(Dynamic::from);
}

fn shared(i: usize) -> Dynamic {
    SHARED_STRINGS.with(|strings| strings[i].clone())
}

/// Registers the effect helpers (pure functions returning maps). String arguments are
/// taken as `ImmutableString` (shared, not copied).
pub fn register(engine: &mut Engine) {
    let kind = |k: usize| ("kind", shared(k));
    engine.register_fn("award", move |c: ImmutableString, a: INT| {
        map([kind(AWARD), ("currency", s(c)), ("amount", i(a)), ("memo", shared(EMPTY))])
    });
    engine.register_fn("award", move |c: ImmutableString, a: INT, memo: ImmutableString| {
        map([kind(AWARD), ("currency", s(c)), ("amount", i(a)), ("memo", s(memo))])
    });
    engine.register_fn("award_expiring", move |c: ImmutableString, a: INT, days: INT, memo: ImmutableString| {
        map([kind(AWARD), ("currency", s(c)), ("amount", i(a)), ("memo", s(memo)), ("expires_in_days", i(days))])
    });
    engine.register_fn("deduct", move |c: ImmutableString, a: INT, memo: ImmutableString| {
        map([kind(DEDUCT), ("currency", s(c)), ("amount", i(a)), ("memo", s(memo))])
    });
    engine.register_fn("award_referrer", move |depth: INT, c: ImmutableString, a: INT, memo: ImmutableString| {
        map([kind(AWARD_REFERRER), ("depth", i(depth)), ("currency", s(c)), ("amount", i(a)), ("memo", s(memo))])
    });
    engine.register_fn("lock", move |c: ImmutableString, total: INT, per_day: INT, memo: ImmutableString| {
        map([kind(LOCK), ("currency", s(c)), ("total", i(total)), ("per_day", i(per_day)), ("memo", s(memo))])
    });
    engine.register_fn("accelerate", move |depth: INT, a: INT, memo: ImmutableString| {
        map([kind(ACCELERATE), ("depth", i(depth)), ("amount", i(a)), ("memo", s(memo))])
    });
    engine.register_fn("set_counter", move |name: ImmutableString, value: INT| {
        map([kind(SET_COUNTER), ("name", s(name)), ("value", i(value))])
    });
    engine.register_fn("tag", move |name: ImmutableString| map([kind(TAG), ("name", s(name))]));
    engine.register_fn("deny", move |reason: ImmutableString| map([kind(DENY), ("reason", s(reason))]));
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
        if let Some(effect) = read_effect(&item) {
            effect.validate().map_err(invalid)?;
            out.push(effect);
            continue;
        }
        // Anything else (a map built by hand with odd fields, a wrong type…) takes the
        // serde way, which says what is wrong.
        let json: serde_json::Value = rhai::serde::from_dynamic(&item).map_err(|e| invalid(e.to_string()))?;
        let effect: Effect =
            serde_json::from_value(json.clone()).map_err(|e| invalid(format!("not an effect: {json} ({e})")))?;
        effect.validate().map_err(invalid)?;
        out.push(effect);
    }
    Ok(out)
}

/// The effect an item is, read straight from its map when it is exactly what the serde
/// way accepts without conversions: a known `kind`, every field present with a string or
/// integer value as the variant wants (`expires_in_days` may be missing or `()`), and no
/// other field. `None` for anything else, for the serde way to accept or explain.
fn read_effect(item: &Dynamic) -> Option<Effect> {
    let m = item.as_map_ref().ok()?;
    let text = |k: &str| m.get(k).and_then(|v| v.as_immutable_string_ref().ok().map(|s| s.as_str().to_owned()));
    let int = |k: &str| m.get(k).and_then(|v| v.as_int().ok());
    let kind = m.get("kind")?.as_immutable_string_ref().ok()?;
    let (effect, fields) = match kind.as_str() {
        "award" => {
            let expires_in_days = match m.get("expires_in_days") {
                None => None,
                Some(v) if v.is_unit() => None,
                Some(v) => Some(v.as_int().ok()?),
            };
            let effect = Effect::Award {
                currency: text("currency")?,
                amount: int("amount")?,
                memo: text("memo")?,
                expires_in_days,
            };
            (effect, 4 + usize::from(m.contains_key("expires_in_days")))
        }
        "deduct" => (Effect::Deduct { currency: text("currency")?, amount: int("amount")?, memo: text("memo")? }, 4),
        "award_referrer" => {
            let effect = Effect::AwardReferrer {
                depth: int("depth")?,
                currency: text("currency")?,
                amount: int("amount")?,
                memo: text("memo")?,
            };
            (effect, 5)
        }
        "lock" => {
            let effect = Effect::Lock {
                currency: text("currency")?,
                total: int("total")?,
                per_day: int("per_day")?,
                memo: text("memo")?,
            };
            (effect, 5)
        }
        "accelerate" => (Effect::Accelerate { depth: int("depth")?, amount: int("amount")?, memo: text("memo")? }, 4),
        "set_counter" => (Effect::SetCounter { name: text("name")?, value: int("value")? }, 3),
        "tag" => (Effect::Tag { name: text("name")? }, 2),
        "deny" => (Effect::Deny { reason: text("reason")? }, 2),
        _ => return None,
    };
    (m.len() == fields).then_some(effect)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Sandbox;

    /// What the serde way alone makes of an item.
    fn by_serde(item: &Dynamic) -> Result<Effect, RunError> {
        let json: serde_json::Value = rhai::serde::from_dynamic(item).map_err(|e| invalid(e.to_string()))?;
        let effect: Effect =
            serde_json::from_value(json.clone()).map_err(|e| invalid(format!("not an effect: {json} ({e})")))?;
        effect.validate().map_err(invalid)?;
        Ok(effect)
    }

    #[test]
    fn reading_a_map_directly_agrees_with_serde() {
        let sb = Sandbox::new();
        let items = [
            r#"award("points", 5)"#,
            r#"award("points", 5, "memo")"#,
            r#"award_expiring("points", 5, 30, "memo")"#,
            r#"deduct("points", 5, "memo")"#,
            r#"award_referrer(2, "points", 5, "memo")"#,
            r#"lock("points", 100, 10, "memo")"#,
            r#"accelerate(0, 5, "memo")"#,
            r#"set_counter("n", -3)"#,
            r#"tag("vip")"#,
            r#"deny("no")"#,
            r#"#{kind: "award", currency: "points", amount: 5, memo: "", expires_in_days: ()}"#,
            r#"#{kind: "award", currency: "points", amount: 5, memo: ""}"#,
            r#"#{kind: "award", currency: "points", amount: 5}"#,
            r#"#{kind: "award", currency: "points", amount: 5.0, memo: ""}"#,
            r#"#{kind: "award", currency: 'p', amount: 5, memo: ""}"#,
            r#"#{kind: "award", currency: "points", amount: 5, memo: "", extra: 1}"#,
            r#"#{kind: "award", currency: "points", amount: 5, memo: "", expires_in_days: "x"}"#,
            r#"#{kind: "tag", name: "t", value: 1}"#,
            r#"#{kind: "nope", name: "t"}"#,
            r#"#{kind: 1, name: "t"}"#,
            r#"#{name: "t"}"#,
            r#"#{kind: "tag", name: ()}"#,
            r#"#{kind: "set_counter", name: "n", value: true}"#,
        ];
        for script in items {
            let ast = sb.compile(script).unwrap();
            let item: Dynamic = sb.engine().eval_ast(&ast).unwrap();
            let serde = by_serde(&item);
            // Read directly, or left to the serde way (always right).
            match read_effect(&item) {
                Some(effect) => {
                    assert_eq!(effect.validate().map(|()| effect.clone()).map_err(invalid), serde, "{script}")
                }
                None => assert!(!script.starts_with(|c: char| c.is_ascii_lowercase()), "{script} not read directly"),
            }
        }
    }
}
