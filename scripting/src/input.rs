//! What a script can read: `event`, `member` and `params`.

use rhai::{Dynamic, Map};
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
    /// RFC 3339, in the mall's time zone (e.g. "2026-11-30T23:59:00+08:00").
    #[serde(default)]
    pub occurred_at: String,
    /// The mall's local day the event counts on, "YYYY-MM-DD" (the day of `occurred_at`).
    #[serde(default)]
    pub day: String,
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
    /// What the member record says of the member.
    pub profile: ProfileInput,
    /// The member's lock grants still releasing, oldest first (at most 50).
    pub locks: Vec<LockInput>,
}

/// The member's profile; a field the member never gave is "".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileInput {
    pub nickname: String,
    /// "YYYY-MM-DD".
    pub birthday: String,
    /// "female", "male" or "other".
    pub gender: String,
    pub city: String,
    /// The mall's local day the member registered, "YYYY-MM-DD".
    pub registered_on: String,
}

/// One lock grant: `total` locked, released `per_day`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockInput {
    pub id: i64,
    pub currency: String,
    pub total: i64,
    pub released: i64,
    /// `total - released`.
    pub remaining: i64,
    pub per_day: i64,
    /// RFC 3339.
    pub next_release_at: String,
    pub memo: String,
    /// RFC 3339.
    pub created_at: String,
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

// What a script sees, built by hand: the same values `rhai::serde::to_dynamic` makes of
// these types (checked by the tests below), without going through serde. The structs'
// maps are built from arrays (sorted once, then built in bulk), cheaper than inserting
// their many keys one by one.

impl EventInput {
    pub(crate) fn to_dynamic(&self) -> Dynamic {
        Dynamic::from_map(Map::from([
            ("data".into(), json_to_dynamic(&self.data)),
            ("day".into(), self.day.as_str().into()),
            ("id".into(), self.id.as_str().into()),
            ("occurred_at".into(), self.occurred_at.as_str().into()),
            ("type".into(), self.kind.as_str().into()),
        ]))
    }
}

impl MemberInput {
    pub(crate) fn to_dynamic(&self) -> Dynamic {
        Dynamic::from_map(Map::from([
            ("balances".into(), int_map(&self.balances)),
            ("counters".into(), int_map(&self.counters)),
            ("id".into(), Dynamic::from_int(self.id)),
            ("joined_at".into(), self.joined_at.as_str().into()),
            ("level".into(), self.level.to_dynamic()),
            ("lifetime".into(), Dynamic::from_int(self.lifetime)),
            ("locks".into(), Dynamic::from_array(self.locks.iter().map(LockInput::to_dynamic).collect())),
            ("profile".into(), self.profile.to_dynamic()),
            ("referrers".into(), Dynamic::from_array(self.referrers.iter().map(|&r| Dynamic::from_int(r)).collect())),
            ("streak".into(), Dynamic::from_int(self.streak)),
            ("tags".into(), Dynamic::from_array(self.tags.iter().map(|t| t.as_str().into()).collect())),
            ("today".into(), Dynamic::from_int(self.today)),
            ("week".into(), Dynamic::from_int(self.week)),
        ]))
    }
}

impl ProfileInput {
    fn to_dynamic(&self) -> Dynamic {
        Dynamic::from_map(Map::from([
            ("birthday".into(), self.birthday.as_str().into()),
            ("city".into(), self.city.as_str().into()),
            ("gender".into(), self.gender.as_str().into()),
            ("nickname".into(), self.nickname.as_str().into()),
            ("registered_on".into(), self.registered_on.as_str().into()),
        ]))
    }
}

impl LockInput {
    fn to_dynamic(&self) -> Dynamic {
        Dynamic::from_map(Map::from([
            ("created_at".into(), self.created_at.as_str().into()),
            ("currency".into(), self.currency.as_str().into()),
            ("id".into(), Dynamic::from_int(self.id)),
            ("memo".into(), self.memo.as_str().into()),
            ("next_release_at".into(), self.next_release_at.as_str().into()),
            ("per_day".into(), Dynamic::from_int(self.per_day)),
            ("released".into(), Dynamic::from_int(self.released)),
            ("remaining".into(), Dynamic::from_int(self.remaining)),
            ("total".into(), Dynamic::from_int(self.total)),
        ]))
    }
}

impl LevelInput {
    fn to_dynamic(&self) -> Dynamic {
        Dynamic::from_map(Map::from([
            ("benefits".into(), json_to_dynamic(&self.benefits)),
            ("name".into(), self.name.as_str().into()),
            ("threshold".into(), Dynamic::from_int(self.threshold)),
        ]))
    }
}

/// Maps given in key order (`BTreeMap`s, JSON objects) are built by inserting: cheaper
/// than collecting for the few keys they usually have.
fn int_map(m: &BTreeMap<String, i64>) -> Dynamic {
    let mut out = Map::new();
    for (k, &v) in m {
        out.insert(k.as_str().into(), Dynamic::from_int(v));
    }
    Dynamic::from_map(out)
}

/// JSON as Rhai values: null is `()`, integers that fit an `i64` are integers, other
/// numbers floats, arrays arrays and objects maps.
pub(crate) fn json_to_dynamic(v: &serde_json::Value) -> Dynamic {
    use serde_json::Value as J;
    match v {
        J::Null => Dynamic::UNIT,
        J::Bool(b) => Dynamic::from_bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => s.as_str().into(),
        J::Array(a) => Dynamic::from_array(a.iter().map(json_to_dynamic).collect()),
        J::Object(o) => {
            let mut m = Map::new();
            for (k, v) in o {
                m.insert(k.as_str().into(), json_to_dynamic(v));
            }
            Dynamic::from_map(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Same type and value, recursively.
    fn same(a: &Dynamic, b: &Dynamic) -> bool {
        if a.type_name() != b.type_name() || a.is_read_only() != b.is_read_only() {
            return false;
        }
        if let (Ok(x), Ok(y)) = (a.as_map_ref(), b.as_map_ref()) {
            return x.len() == y.len() && x.iter().zip(y.iter()).all(|((k1, v1), (k2, v2))| k1 == k2 && same(v1, v2));
        }
        if let (Ok(x), Ok(y)) = (a.as_array_ref(), b.as_array_ref()) {
            return x.len() == y.len() && x.iter().zip(y.iter()).all(|(v1, v2)| same(v1, v2));
        }
        if let (Ok(x), Ok(y)) = (a.as_float(), b.as_float()) {
            return x.to_bits() == y.to_bits();
        }
        format!("{a:?}") == format!("{b:?}")
    }

    fn serde<T: Serialize>(v: &T) -> Dynamic {
        rhai::serde::to_dynamic(v).unwrap()
    }

    fn check(input: &Input) {
        assert!(same(&input.event.to_dynamic(), &serde(&input.event)), "event {:?}", input.event);
        assert!(same(&input.member.to_dynamic(), &serde(&input.member)), "member {:?}", input.member);
        assert!(same(&json_to_dynamic(&input.params), &serde(&input.params)), "params {:?}", input.params);
    }

    #[test]
    fn hand_built_values_are_what_serde_builds() {
        check(&Input::default());
        let odd = json!({
            "null": null, "t": true, "f": false, "zero": 0, "neg": -12, "big": u64::MAX, "max": i64::MAX,
            "min": i64::MIN, "float": 1.5, "whole_float": 2.0, "tiny": 1e-300, "s": "普通 ×", "empty": "",
            "arr": [1, [2, [3.5, null]], {"a": {"b": []}}], "obj": {}, "": "empty key"
        });
        let mut input = Input {
            event: EventInput {
                kind: "order_completed".into(),
                id: "e-1".into(),
                occurred_at: "2024-05-01T10:00:00Z".into(),
                day: "2024-05-01".into(),
                data: odd.clone(),
            },
            member: MemberInput {
                id: 42,
                level: LevelInput { name: "金卡".into(), threshold: 5000, benefits: json!({"earn_multiplier": 1.5}) },
                tags: vec!["vip".into(), "".into(), "a".repeat(40)],
                balances: [("points".to_string(), 120), ("exp".to_string(), -3)].into(),
                counters: [("n".to_string(), i64::MAX)].into(),
                today: 1,
                week: 2,
                lifetime: 3,
                streak: 4,
                referrers: vec![7, 8, 9],
                joined_at: "2023-01-01T00:00:00Z".into(),
                profile: ProfileInput {
                    nickname: "小李".into(),
                    birthday: "1990-05-01".into(),
                    gender: "female".into(),
                    city: "上海".into(),
                    registered_on: "2023-01-01".into(),
                },
                locks: vec![
                    LockInput {
                        id: 3,
                        currency: "points".into(),
                        total: 1000,
                        released: 12,
                        remaining: 988,
                        per_day: 12,
                        next_release_at: "2024-05-02T00:00:00+08:00".into(),
                        memo: "gift".into(),
                        created_at: "2024-04-30T10:00:00+08:00".into(),
                    },
                    LockInput::default(),
                ],
            },
            params: odd,
        };
        check(&input);
        for v in [json!(null), json!(1), json!(-1.25), json!("x"), json!([]), json!([[1, 2], [3]])] {
            input.params = v.clone();
            input.event.data = v.clone();
            input.member.level.benefits = v;
            check(&input);
        }
    }
}
