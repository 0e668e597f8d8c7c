//! Lowercase identifiers: tenant slugs, schema names, event types, currency codes.

/// `len` bytes in `lengths`, a lowercase ASCII letter first, then lowercase letters,
/// digits and `separator` (`_` or `-`).
pub fn is_lowercase_ident(s: &str, lengths: std::ops::RangeInclusive<usize>, separator: u8) -> bool {
    let b = s.as_bytes();
    lengths.contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_lowercase)
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == separator)
}

#[cfg(test)]
mod tests {
    use super::is_lowercase_ident;

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
