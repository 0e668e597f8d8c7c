//! What the edge accepts of a JSON body before any handler sees it (issue 10):
//!
//! - text PostgreSQL can store: no NUL character (U+0000) in any string or key;
//! - numbers that survive a round trip through PostgreSQL (`jsonb`, `bigint`): integers
//!   within i64, other numbers finite and within ±`JSON_NUMBER_ABS_MAX`;
//! - the JSON type the schema names: serde would read a struct from an array
//!   (`[null, null]`); here a struct needs an object;
//! - an integer written with a zero fraction (`2.0`) is the integer (JSON Schema counts it
//!   as one, and JSON itself does not tell `2.0` from `2`); `2.5` stays a float, refused
//!   where an integer is expected.
//!
//! Problems are 422s that name the field by its path (`items[0].memo`).

use platform::Error;
use platform::error::FieldError;
use platform::limits::{JSON_FIELD_ERRORS_MAX, JSON_NUMBER_ABS_MAX};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_json::{Map, Number, Value};

/// Parses, checks and deserializes a JSON body (400 when it is not JSON).
pub fn parse_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::bad_request("malformed_json", format!("the body is not valid JSON: {e}")))?;
    check(&value)?;
    from_value(value)
}

/// Deserializes a checked value strictly (a struct from an object only), naming the
/// field of a problem.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(Strict(value)).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let field = if path == "." { missing_field(&message).unwrap_or("body").to_string() } else { path };
        Error::Invalid {
            code: "validation_failed",
            message: format!("{field}: {message}"),
            fields: vec![FieldError { field, message }],
        }
    })
}

/// `missing field `x`` names the field itself.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// Every string, key and number of a JSON value can be stored and read back.
pub fn check(value: &Value) -> Result<(), Error> {
    let mut problems = Vec::new();
    walk(value, &mut String::new(), &mut problems);
    if problems.is_empty() {
        return Ok(());
    }
    let message = problems.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ");
    Err(Error::Invalid { code: "validation_failed", message, fields: problems })
}

/// Why a text cannot be stored, if it cannot.
pub fn text_problem(s: &str) -> Option<&'static str> {
    s.contains('\0').then_some("must not contain the NUL character (U+0000)")
}

fn number_problem(n: &Number) -> Option<String> {
    if n.is_i64() {
        return None;
    }
    if n.is_u64() {
        return Some(format!("an integer between {} and {}", i64::MIN, i64::MAX));
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f.abs() <= JSON_NUMBER_ABS_MAX => None,
        _ => Some(format!("a number between -{JSON_NUMBER_ABS_MAX:e} and {JSON_NUMBER_ABS_MAX:e}")),
    }
}

fn field_name(path: &str) -> String {
    if path.is_empty() { "body".into() } else { path.to_string() }
}

fn walk(v: &Value, path: &mut String, out: &mut Vec<FieldError>) {
    if out.len() >= JSON_FIELD_ERRORS_MAX {
        return;
    }
    match v {
        Value::String(s) => {
            if let Some(m) = text_problem(s) {
                out.push(FieldError { field: field_name(path), message: m.into() });
            }
        }
        Value::Number(n) => {
            if let Some(m) = number_problem(n) {
                out.push(FieldError { field: field_name(path), message: m });
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, out);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k.replace('\0', "\\u0000"));
                if let Some(m) = text_problem(k) {
                    out.push(FieldError { field: path.clone(), message: format!("the key {m}") });
                } else {
                    walk(item, path, out);
                }
                path.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// A `serde_json::Value` deserializer that gives structs, maps and sequences only the
/// JSON type they are written as, at every depth.
struct Strict(Value);

fn unexpected(v: &Value) -> Unexpected<'_> {
    match v {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(_) => Unexpected::Other("number"),
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

fn visit_array<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, serde_json::Error> {
    let len = items.len();
    let mut seq = Seq(items.into_iter());
    let out = visitor.visit_seq(&mut seq)?;
    if seq.0.len() == 0 { Ok(out) } else { Err(de::Error::invalid_length(len, &"fewer elements in the array")) }
}

fn visit_object<'de, V: Visitor<'de>>(map: Map<String, Value>, visitor: V) -> Result<V::Value, serde_json::Error> {
    visitor.visit_map(Object { iter: map.into_iter(), value: None })
}

/// The integer a float with a zero fraction writes (`check` has already bounded every
/// float to ±`JSON_NUMBER_ABS_MAX`, well inside the integers an f64 holds exactly).
fn whole(v: Value) -> Value {
    match v.as_f64() {
        Some(f) if v.is_f64() && f.fract() == 0.0 && f.abs() <= JSON_NUMBER_ABS_MAX => Value::from(f as i64),
        _ => v,
    }
}

/// Integer targets read a whole float as its integer; everything else as before.
macro_rules! whole_floats_as_integers {
    ($de:lifetime; $($method:ident)*) => {$(
        fn $method<V: Visitor<$de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            Strict(whole(self.0)).deserialize_any(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Strict {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visit_array(items, visitor),
            Value::Object(map) => visit_object(map, visitor),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Strict(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visit_object(map, visitor),
            other => Err(de::Error::invalid_type(unexpected(&other), &"a JSON object")),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visit_array(items, visitor),
            other => Err(de::Error::invalid_type(unexpected(&other), &"a JSON array")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    whole_floats_as_integers! { 'de;
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    serde::forward_to_deserialize_any! {
        bool f32 f64 char str string bytes byte_buf unit unit_struct identifier
    }
}

struct Seq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Seq {
    type Error = serde_json::Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Self::Error> {
        self.0.next().map(|v| seed.deserialize(Strict(v))).transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Object {
    iter: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for Object {
    type Error = serde_json::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(Value::String(k)).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        let v = self.value.take().ok_or_else(|| <serde_json::Error as de::Error>::custom("value without a key"))?;
        seed.deserialize(Strict(v))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Patch {
        enabled: Option<bool>,
        position: Option<i32>,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        a: Option<i64>,
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::Invalid { fields, .. } => fields[0].field.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn structs_need_objects_at_every_depth() {
        assert!(from_value::<Patch>(json!({"enabled": true})).is_ok());
        assert_eq!(field_of(from_value::<Patch>(json!([null, null])).unwrap_err()), "body");
        assert_eq!(field_of(from_value::<Patch>(json!({"inner": [1]})).unwrap_err()), "inner");
        assert_eq!(field_of(from_value::<Vec<Inner>>(json!([{"a": 1}, {"a": "x"}])).unwrap_err()), "[1].a");
        assert_eq!(field_of(from_value::<Inner>(json!({"a": 9.5})).unwrap_err()), "a");
    }

    #[test]
    fn integers_may_be_written_as_whole_floats() {
        let p: Patch = from_value(json!({"position": 2147483647.0, "inner": {"a": -3.0}})).unwrap();
        assert_eq!((p.position, p.inner.and_then(|i| i.a)), (Some(i32::MAX), Some(-3)));
        assert_eq!(field_of(from_value::<Patch>(json!({"position": 2.5})).unwrap_err()), "position");
        assert_eq!(field_of(from_value::<Patch>(json!({"position": 2147483648.0})).unwrap_err()), "position");
        // Free JSON keeps what was written.
        assert_eq!(from_value::<Value>(json!({"x": 2.0})).unwrap(), json!({"x": 2.0}));
    }

    #[test]
    fn nul_and_unstorable_numbers_are_named() {
        assert!(check(&json!({"a": "ok", "b": [1, -2, 0.5, 1e15]})).is_ok());
        assert_eq!(field_of(check(&json!({"items": [{"memo": "a\u{0}b"}]})).unwrap_err()), "items[0].memo");
        assert_eq!(field_of(check(&json!({"k\u{0}": 1})).unwrap_err()), "k\\u0000");
        assert_eq!(field_of(check(&json!({"params": {"x": 1.7976931348623157e308}})).unwrap_err()), "params.x");
        assert_eq!(field_of(check(&json!({"n": u64::MAX})).unwrap_err()), "n");
        assert_eq!(field_of(check(&json!("\u{0}")).unwrap_err()), "body");
    }
}
