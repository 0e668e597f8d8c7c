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
}
