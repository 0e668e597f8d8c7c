//! Lowercase identifiers: tenant slugs, schema names, event types, currency codes.

/// `len` bytes in `lengths`, a lowercase ASCII letter first, then lowercase letters,
/// digits and `separator` (`_` or `-`).
pub fn is_lowercase_ident(s: &str, lengths: std::ops::RangeInclusive<usize>, separator: u8) -> bool {
    let b = s.as_bytes();
    lengths.contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_lowercase)
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == separator)
}

/// `is_lowercase_ident` as a regex (the OpenAPI document's `pattern`).
pub fn pattern(lengths: std::ops::RangeInclusive<usize>, separator: u8) -> String {
    let sep = match separator {
        b'-' => "\\-".to_string(),
        other => char::from(other).to_string(),
    };
    format!("^[a-z][a-z0-9{sep}]{{{},{}}}$", lengths.start().saturating_sub(1), lengths.end() - 1)
}

/// A lowercase identifier in the OpenAPI document.
pub fn schema(
    lengths: std::ops::RangeInclusive<usize>,
    separator: u8,
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern(lengths, separator)))
        .description(Some(description))
        .into()
}

#[cfg(test)]
mod tests {
    use super::{is_lowercase_ident, pattern};

    #[test]
    fn the_pattern_is_the_check() {
        for (lengths, sep) in [(2..=32, b'_'), (1..=64, b'_'), (2..=40, b'-')] {
            let re = regex::Regex::new(&pattern(lengths.clone(), sep)).unwrap();
            let long = ["a".repeat(32), "a".repeat(33), "a".repeat(40), "a".repeat(41), "a".repeat(64), "a".repeat(65)];
            let short = ["", "a", "ab", "a_", "a-", "1a", "Ab", "a b", "a9", "té", "a\n", "a\u{0}b"];
            for s in short.iter().copied().chain(long.iter().map(String::as_str)) {
                assert_eq!(re.is_match(s), is_lowercase_ident(s, lengths.clone(), sep), "{s:?} {lengths:?}");
            }
        }
    }

    #[test]
    fn letters_first_then_letters_digits_and_the_separator() {
        assert!(is_lowercase_ident("t_42", 1..=63, b'_'));
        assert!(is_lowercase_ident("demo-coffee", 2..=40, b'-'));
        for bad in ["", "T_1", "1t", "t-1", "t\"; DROP SCHEMA x; --", "t 1", "té"] {
            assert!(!is_lowercase_ident(bad, 1..=63, b'_'), "{bad:?}");
        }
        assert!(!is_lowercase_ident("a", 2..=40, b'-'));
        assert!(!is_lowercase_ident(&"t".repeat(64), 1..=63, b'_'));
    }
}
