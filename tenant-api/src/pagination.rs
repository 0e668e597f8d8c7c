//! Cursor paging: `limit` (bounded) and an opaque `cursor`; responses carry `next_cursor`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::Error;
use platform::limits::{PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// Items per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// (exclusive upper id bound, limit).
    pub fn bounds(&self) -> Result<(Option<i64>, i64), Error> {
        let limit = self.limit.unwrap_or(PAGE_LIMIT_DEFAULT);
        if !(1..=PAGE_LIMIT_MAX).contains(&limit) {
            return Err(Error::invalid_field("limit", format!("between 1 and {PAGE_LIMIT_MAX}")));
        }
        let before = match &self.cursor {
            None => None,
            Some(c) => Some(decode(c).ok_or_else(|| Error::invalid_field("cursor", "not a cursor from this API"))?),
        };
        Ok((before, limit))
    }
}

impl PageQuery {
    /// (offset, limit) for lists not ordered by id (the cursor carries an offset).
    pub fn offset_bounds(&self) -> Result<(i64, i64), Error> {
        let limit = self.limit.unwrap_or(PAGE_LIMIT_DEFAULT);
        if !(1..=PAGE_LIMIT_MAX).contains(&limit) {
            return Err(Error::invalid_field("limit", format!("between 1 and {PAGE_LIMIT_MAX}")));
        }
        let offset = match &self.cursor {
            None => 0,
            Some(c) => URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse::<i64>().ok()))
                .filter(|n| (0..=100_000).contains(n))
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
}
