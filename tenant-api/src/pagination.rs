//! Cursor paging: `limit` (bounded) and an opaque `cursor`; responses carry `next_cursor`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::Error;
use platform::limits::{PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX};
use serde::{Deserialize, Serialize};

/// A page of a list ordered by id (newest first).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// Items per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<Cursor>, inline)]
    pub cursor: Option<String>,
}

/// A page of a list ordered otherwise (the catalog): the cursor carries an offset.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct OffsetPageQuery {
    /// Items per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<OffsetCursor>, inline)]
    pub cursor: Option<String>,
}

/// Largest offset an offset cursor carries.
const OFFSET_MAX: i64 = 100_000;

// The cursors are URL-safe base64 without padding of `before:<id>` and `offset:<n>`. After
// the six letters of the word (two groups of three bytes: `YmVmb3Jl`, `b2Zmc2V0`) each
// group of three bytes encodes to four characters, and each character depends on at most
// two neighbouring bytes: a digit (0x30-0x39) is 0011xxxx, so the characters a digit can
// give are few. `:` and the first two digits give `Oj`, a character of
// `CURSOR_HIGH_DIGIT` and one of `CURSOR_LOW_DIGIT`; then three digits at a time give
// `CURSOR_TRIPLE`; a last one or two digits give `CURSOR_ONE` or `CURSOR_TWO` (the
// unused bits zero, as the decoder requires). One digit alone after `:` gives `Oj` and a
// `CURSOR_HIGH_DIGIT` character.
macro_rules! high_digit {
    () => {
        "[AEIMQUYcgk]"
    };
}
macro_rules! low_digit {
    () => {
        "[w-z0-5]"
    };
}
macro_rules! first_of_two {
    () => {
        "(?:[MN][DTjz]|O[DT])"
    };
}
macro_rules! triple {
    () => {
        concat!(first_of_two!(), high_digit!(), low_digit!())
    };
}
macro_rules! one {
    () => {
        "(?:[MN][AQgw]|O[AQ])"
    };
}
macro_rules! two {
    () => {
        concat!(first_of_two!(), high_digit!())
    };
}

/// The cursors of `before:<id>` with an id of 1 to 16 digits (the server reads any id).
pub const CURSOR_PATTERN: &str = concat!(
    "^YmVmb3JlOj(?:",
    high_digit!(),
    "|",
    high_digit!(),
    low_digit!(),
    "(?:",
    triple!(),
    "){0,4}(?:",
    one!(),
    "|",
    two!(),
    ")?)$"
);

/// The cursors of `offset:<n>` with n of 1 to 5 digits (the server reads up to
/// `OFFSET_MAX`).
pub const OFFSET_CURSOR_PATTERN: &str = concat!(
    "^b2Zmc2V0Oj(?:",
    high_digit!(),
    "|",
    high_digit!(),
    low_digit!(),
    "(?:",
    one!(),
    "|",
    two!(),
    "|",
    triple!(),
    ")?)$"
);

fn cursor_schema(pattern: &'static str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some("`next_cursor` of the previous page (opaque)"))
        .into()
}

/// A cursor of an id-ordered list in the OpenAPI document (`CURSOR_PATTERN`).
pub struct Cursor;

impl utoipa::PartialSchema for Cursor {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        cursor_schema(CURSOR_PATTERN)
    }
}
impl utoipa::ToSchema for Cursor {}

/// A cursor of an offset-paged list in the OpenAPI document (`OFFSET_CURSOR_PATTERN`).
pub struct OffsetCursor;

impl utoipa::PartialSchema for OffsetCursor {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        cursor_schema(OFFSET_CURSOR_PATTERN)
    }
}
impl utoipa::ToSchema for OffsetCursor {}

fn page_limit(limit: Option<i64>) -> Result<i64, Error> {
    let limit = limit.unwrap_or(PAGE_LIMIT_DEFAULT);
    if !(1..=PAGE_LIMIT_MAX).contains(&limit) {
        return Err(Error::invalid_field("limit", format!("between 1 and {PAGE_LIMIT_MAX}")));
    }
    Ok(limit)
}

impl PageQuery {
    /// (exclusive upper id bound, limit).
    pub fn bounds(&self) -> Result<(Option<i64>, i64), Error> {
        let limit = page_limit(self.limit)?;
        let before = match &self.cursor {
            None => None,
            Some(c) => Some(decode(c).ok_or_else(|| Error::invalid_field("cursor", "not a cursor from this API"))?),
        };
        Ok((before, limit))
    }
}

impl OffsetPageQuery {
    /// (offset, limit) for lists not ordered by id (the cursor carries an offset).
    pub fn bounds(&self) -> Result<(i64, i64), Error> {
        let limit = page_limit(self.limit)?;
        let offset = match &self.cursor {
            None => 0,
            Some(c) => URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse::<i64>().ok()))
                .filter(|n| (0..=OFFSET_MAX).contains(n))
                .ok_or_else(|| Error::invalid_field("cursor", "not a cursor from this API"))?,
        };
        Ok((offset, limit))
    }
}

impl<T> Page<T> {
    /// A page of an offset-ordered list.
    pub fn at_offset(items: Vec<T>, offset: i64, limit: i64) -> Self {
        let next_cursor =
            (items.len() as i64 == limit).then(|| URL_SAFE_NO_PAD.encode(format!("offset:{}", offset + limit)));
        Self { items, next_cursor }
    }
}

fn decode(cursor: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&bytes).ok()?.strip_prefix("before:")?.parse().ok()
}

fn encode(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("before:{id}"))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of items sorted by descending id; `id` reads an item's id.
    pub fn new(items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Self {
        let next_cursor = if items.len() as i64 == limit { items.last().map(|last| encode(id(last))) } else { None };
        Self { items, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let q = PageQuery { limit: Some(10), cursor: Some(encode(42)) };
        assert_eq!(q.bounds().unwrap(), (Some(42), 10));
        let bad = PageQuery { limit: None, cursor: Some("zzz".into()) };
        assert_eq!(bad.bounds().unwrap_err().code(), "validation_failed");
        let big = PageQuery { limit: Some(10_000), cursor: None };
        assert!(big.bounds().is_err());
    }

    /// The document's cursor patterns match every cursor the server makes (ids of up to
    /// 16 digits, offsets up to 99,999), and what they match the server reads.
    #[test]
    fn the_cursor_patterns_are_the_cursors() {
        use rand::Rng;
        let before = regex::Regex::new(CURSOR_PATTERN).unwrap();
        let offset = regex::Regex::new(OFFSET_CURSOR_PATTERN).unwrap();
        let mut rng = rand::rng();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for digits in 1..=16u32 {
            for _ in 0..2_000 {
                let id = rng.random_range(10i64.pow(digits - 1) - i64::from(digits == 1)..10i64.pow(digits));
                let c = encode(id);
                assert!(before.is_match(&c), "{id} {c}");
                let mut bytes = c.into_bytes();
                let at = rng.random_range(0..bytes.len());
                bytes[at] = alphabet[rng.random_range(0..alphabet.len())];
                let mutated = String::from_utf8(bytes).unwrap();
                if before.is_match(&mutated) {
                    assert!(decode(&mutated).is_some(), "{mutated}");
                }
            }
        }
        for n in (0..100_000).step_by(7).chain([1, 99_999]) {
            let c = Page::<()>::at_offset(vec![(); 1], n - 1, 1).next_cursor.unwrap();
            assert!(offset.is_match(&c), "{n} {c}");
            let q = OffsetPageQuery { limit: None, cursor: Some(c) };
            assert_eq!(q.bounds().unwrap().0, n);
        }
    }
}
