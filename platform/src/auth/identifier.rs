//! Phone numbers and e-mail addresses, normalized once, before every lookup and every
//! limit: `138-0000-0001`, `138 0000 0001`, `+86 13800000001` and `0086 13800000001`
//! are one account, one throttle counter and one code destination.
//!
//! Phones are stored in E.164 (`+8613800000001`); a number without a country code is
//! read in the default region, mainland China (+86).

use crate::error::{Error, Result};

/// A phone number or an e-mail address, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identifier {
    Phone(String),
    Email(String),
}

/// The default region's country calling code (mainland China).
const DEFAULT_COUNTRY_CODE: &str = "86";

/// Separators a phone number may be written with anywhere (`normalize_phone` drops them).
macro_rules! sep {
    () => {
        "[-. ()\\u3000]*"
    };
}
/// One digit, then separators.
macro_rules! digit {
    () => {
        concat!("[0-9]", sep!())
    };
}

/// Every phone number `normalize_phone` accepts, written without surrounding whitespace,
/// as an ECMA-262 / Python / Rust regex (the OpenAPI document's `pattern`): `+` or `00`
/// and an E.164 number (8 to 15 digits; after +86 a mainland number), an 11-digit
/// mainland mobile (1, then 3-9), or 0 and a mainland number with its area code.
pub const PHONE_PATTERN: &str = concat!(
    "^",
    sep!(),
    "(?:(?:\\+",
    sep!(),
    "|0",
    sep!(),
    "0",
    sep!(),
    ")(?:8",
    sep!(),
    "6",
    sep!(),
    "(?:1",
    sep!(),
    "[3-9]",
    sep!(),
    "(?:",
    digit!(),
    "){9}|1",
    sep!(),
    "0",
    sep!(),
    "(?:",
    digit!(),
    "){8}|[02-9]",
    sep!(),
    "(?:",
    digit!(),
    "){5,12})|(?:[1-79]",
    sep!(),
    "[0-9]|8",
    sep!(),
    "[0-57-9])",
    sep!(),
    "(?:",
    digit!(),
    "){6,13})|1",
    sep!(),
    "[3-9]",
    sep!(),
    "(?:",
    digit!(),
    "){9}|0",
    sep!(),
    "(?:1",
    sep!(),
    "[3-9]",
    sep!(),
    "(?:",
    digit!(),
    "){9}|1",
    sep!(),
    "0",
    sep!(),
    "(?:",
    digit!(),
    "){8}|[2-9]",
    sep!(),
    "(?:",
    digit!(),
    "){8,10}))$"
);

/// Longest e-mail address (`normalize_email`, and the `members.email` CHECK).
pub const EMAIL_MAX_CHARS: usize = 254;

/// A phone number in the OpenAPI document (`PHONE_PATTERN`).
pub struct PhoneNumber;

impl utoipa::PartialSchema for PhoneNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(PHONE_PATTERN))
            .description(Some(
                "A phone number: 11-digit mainland mobile (13800138000), + or 00 and the country code \
                 (+86 138 0013 8000, +1 415 555 0100), or a mainland number with its area code (010 1234 5678). \
                 Spaces, dashes, dots and parentheses are ignored; stored in E.164.",
            ))
            .examples(["13800138000"])
            .into()
    }
}
impl utoipa::ToSchema for PhoneNumber {}

/// An e-mail address in the OpenAPI document (what `normalize_email` accepts of it).
pub struct EmailAddress;

impl utoipa::PartialSchema for EmailAddress {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .max_length(Some(EMAIL_MAX_CHARS))
            .description(Some("An e-mail address (compared in lower case)."))
            .examples(["li@example.cn"])
            .into()
    }
}
impl utoipa::ToSchema for EmailAddress {}

/// A member's account in the OpenAPI document: a phone number or an e-mail address.
pub struct PhoneOrEmail;

impl utoipa::PartialSchema for PhoneOrEmail {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::ToSchema;
        use utoipa::openapi::Ref;
        use utoipa::openapi::schema::AnyOfBuilder;
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(PhoneNumber::name()))
            .item(Ref::from_schema_name(EmailAddress::name()))
            .description(Some("A phone number or an e-mail address."))
            .into()
    }
}
impl utoipa::ToSchema for PhoneOrEmail {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push((PhoneNumber::name().into(), PhoneNumber::schema()));
        schemas.push((EmailAddress::name().into(), EmailAddress::schema()));
    }
}

impl Identifier {
    /// Reads "13800138000", "+86 138-0013-8000", "0086 13800138000" or "a@b.cn".
    pub fn parse(raw: &str) -> Result<Self> {
        let raw = raw.trim();
        if raw.contains('@') {
            return normalize_email(raw)
                .map(Self::Email)
                .ok_or_else(|| Error::invalid_field("identifier", "not a valid e-mail address"));
        }
        normalize_phone(raw)
            .map(Self::Phone)
            .ok_or_else(|| Error::invalid_field("identifier", "not a valid phone number or e-mail address"))
    }

    /// A phone number only (e.g. a shipping address's phone).
    pub fn parse_phone(raw: &str, field: &'static str) -> Result<String> {
        normalize_phone(raw.trim()).ok_or_else(|| {
            Error::invalid_field(field, "a phone number: 11-digit mainland mobile, or + and the country code")
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Phone(p) | Self::Email(p) => p,
        }
    }
}

/// Lowercases and checks an e-mail address.
pub fn normalize_email(raw: &str) -> Option<String> {
    let e = raw.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(e)
}

/// E.164 form of a phone number, or None when it is not one.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.' | '\u{3000}')).collect();
    let (international, digits) = match compact.strip_prefix('+') {
        Some(rest) => (true, rest.to_string()),
        None => match compact.strip_prefix("00") {
            Some(rest) => (true, rest.to_string()),
            None => (false, compact),
        },
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let full = if international {
        digits
    } else if is_cn_mobile(&digits) {
        format!("{DEFAULT_COUNTRY_CODE}{digits}")
    } else if let Some(national) = digits.strip_prefix('0') {
        // A mainland landline with its trunk prefix, e.g. 010 1234 5678.
        if !(9..=11).contains(&national.len()) || national.starts_with('0') {
            return None;
        }
        format!("{DEFAULT_COUNTRY_CODE}{national}")
    } else {
        return None;
    };
    if let Some(national) = full.strip_prefix(DEFAULT_COUNTRY_CODE)
        && national.starts_with('1')
        && !is_cn_mobile(national)
        // Beijing's area code is 10: 10 + an 8-digit subscriber number.
        && !(national.starts_with("10") && national.len() == 10)
    {
        return None;
    }
    // E.164: a country code that does not start with 0, at most 15 digits in all.
    ((8..=15).contains(&full.len()) && !full.starts_with('0')).then(|| format!("+{full}"))
}

fn is_cn_mobile(digits: &str) -> bool {
    digits.len() == 11
        && digits.starts_with('1')
        && digits.as_bytes()[1].is_ascii_digit()
        && digits.as_bytes()[1] >= b'3'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_one_phone_is_one_identifier() {
        let want = Identifier::Phone("+8613800000001".into());
        for spelling in [
            "13800000001",
            "138-0000-0001",
            " 138 0000 0001 ",
            "+86 13800000001",
            "+86-138-0000-0001",
            "008613800000001",
        ] {
            assert_eq!(Identifier::parse(spelling).unwrap(), want, "{spelling}");
        }
        assert_eq!(Identifier::parse("+1 (415) 555-0100").unwrap(), Identifier::Phone("+14155550100".into()));
        assert_eq!(Identifier::parse("010-1234-5678").unwrap(), Identifier::Phone("+861012345678".into()));
        assert_eq!(Identifier::parse("Li@Example.CN").unwrap(), Identifier::Email("li@example.cn".into()));
    }

    #[test]
    fn what_is_not_a_phone_or_e_mail_is_refused() {
        for bad in ["12ab", "a@b", "1380000000", "+86 1380000000", "+0123456789", "12345", "+", "", "1234567890123456"]
        {
            assert!(Identifier::parse(bad).is_err(), "{bad}");
        }
    }

    /// The document's phone pattern and `normalize_phone` agree on every string: written
    /// spellings, and many random ones built from prefixes, digits and separators.
    #[test]
    fn the_phone_pattern_is_what_normalize_phone_accepts() {
        use rand::Rng;
        let re = regex::Regex::new(PHONE_PATTERN).unwrap();
        let agree = |s: &str| assert_eq!(re.is_match(s), normalize_phone(s.trim()).is_some(), "{s:?}");
        for s in ["13800000001", "+86 (138) 0000-0001", "0086 13800000001", "010.1234.5678", "+1 415 555 0100"] {
            assert!(re.is_match(s), "{s}");
        }
        for s in ["", "+", "12345", "+0123456789", "1380000000", "+86 1380000000", "1234567890123456", "13800000001x"] {
            agree(s);
        }
        let prefixes =
            ["", "+", "00", "0", "+86", "0086", "86", "1", "13", "19", "10", "010", "01", "+861", "+8610", "+0"];
        let mut rng = rand::rng();
        for _ in 0..200_000 {
            let mut s = String::from(prefixes[rng.random_range(0..prefixes.len())]);
            for _ in 0..rng.random_range(0..17) {
                s.push(char::from(b'0' + rng.random_range(0..10u8)));
            }
            let mut spelled = String::new();
            for c in s.chars() {
                if rng.random_ratio(1, 8) {
                    spelled.push(['-', '.', ' ', '(', ')', '\u{3000}'][rng.random_range(0..6)]);
                }
                spelled.push(c);
            }
            agree(&spelled);
        }
    }
}
