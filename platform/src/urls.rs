//! Image and logo URLs (issue 10, point 9): an absolute https URL with a plain host, or
//! an absolute path on this server. Refused: other schemes (`javascript:`, `data:`,
//! `http:`), protocol-relative `//host` and `/\host` (browsers read both as another
//! host), credentials in the authority (`https://good@evil`), whitespace, control
//! characters and backslashes anywhere.

/// Longest URL accepted.
pub const URL_MAX_BYTES: usize = 2048;

/// A host name label: letters, digits and dashes, no dash at either end.
macro_rules! label {
    () => {
        "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    };
}
/// What may follow the authority, or the slash of a local path: visible ASCII but `\`.
macro_rules! visible {
    () => {
        "[!-\\[\\]-~]"
    };
}
/// `https://`, a host of at most three labels, a port.
macro_rules! https_prefix {
    () => {
        concat!("[Hh][Tt][Tt][Pp][Ss]://", label!(), "(?:\\.", label!(), "){0,2}(?::[0-9]{1,5})?")
    };
}

/// The https URLs the OpenAPI document shows (`pattern`, with `maxLength`
/// `URL_MAX_BYTES`): `https_url_ok` accepts each of them. It accepts a little more (a
/// host of more labels, non-ASCII after the host), which the document leaves out: ASCII
/// keeps characters and bytes the same count.
pub const HTTPS_URL_PATTERN: &str = concat!("^", https_prefix!(), "(?:[/?#]", visible!(), "*)?$");

/// `HTTPS_URL_PATTERN`, or a path of this server (`/…`, not `//`).
pub const IMAGE_URL_PATTERN: &str =
    concat!("^(?:", https_prefix!(), "(?:[/?#]", visible!(), "*)?|/(?:[!-.0-\\[\\]-~]", visible!(), "*)?)$");

fn url_schema(
    pattern: &'static str,
    description: &'static str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .max_length(Some(URL_MAX_BYTES))
        .description(Some(description))
        .into()
}

/// An https URL in the OpenAPI document (`HTTPS_URL_PATTERN`).
pub struct HttpsUrl;

impl utoipa::PartialSchema for HttpsUrl {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        url_schema(HTTPS_URL_PATTERN, "An https URL with a plain host (no credentials), percent-encoded ASCII.")
    }
}
impl utoipa::ToSchema for HttpsUrl {}

/// An image URL in the OpenAPI document (`IMAGE_URL_PATTERN`).
pub struct ImageUrl;

impl utoipa::PartialSchema for ImageUrl {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        url_schema(
            IMAGE_URL_PATTERN,
            "An https URL with a plain host (no credentials), or a path of this server (`/v1/tenants/…/files/…`); \
             percent-encoded ASCII.",
        )
    }
}
impl utoipa::ToSchema for ImageUrl {}

/// An https URL or a path of this server.
pub fn image_url_ok(s: &str) -> bool {
    https_url_ok(s) || local_path_ok(s)
}

/// `https://host[:port][/…]` with a host of letters, digits, dots and dashes.
pub fn https_url_ok(s: &str) -> bool {
    if !text_ok(s) {
        return false;
    }
    let Some(rest) = s.get(..8).filter(|p| p.eq_ignore_ascii_case("https://")).map(|_| &s[8..]) else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with(['.', '-'])
        && !host.ends_with('-')
        && !host.contains("..")
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// `/segment…`: an absolute path, not `//` nor `/\`.
pub fn local_path_ok(s: &str) -> bool {
    text_ok(s) && s.starts_with('/') && !s.starts_with("//")
}

fn text_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= URL_MAX_BYTES && !s.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_or_own_paths_only() {
        for ok in [
            "https://cdn.example.com/a.png",
            "https://cdn.example.com:8443/a/b.png?x=1#y",
            "HTTPS://example.com",
            "/v1/tenants/m/files/products/1/a.png",
        ] {
            assert!(image_url_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "//evil.example/a.png",
            "/\\evil.example/a.png",
            "http://example.com/a.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "https://good.example@evil.example/a.png",
            "https:///path",
            "https://exa mple.com/",
            "https://example.com/a\nb",
            "https://example.com:/",
            "https://example.com:99999x/",
            "https://-x.example/",
            "a.png",
            "https://example.com\\@evil/",
        ] {
            assert!(!image_url_ok(bad), "{bad:?}");
        }
        assert!(!https_url_ok("/v1/x"));
    }

    /// What the document's URL patterns match, the checks accept.
    #[test]
    fn the_url_patterns_are_within_the_checks() {
        use rand::Rng;
        let https = regex::Regex::new(HTTPS_URL_PATTERN).unwrap();
        let image = regex::Regex::new(IMAGE_URL_PATTERN).unwrap();
        for ok in ["https://cdn.example.com/a.png", "HTTPS://example.com", "https://a-b.c:8443/x?y#z"] {
            assert!(https.is_match(ok) && image.is_match(ok), "{ok}");
        }
        assert!(image.is_match("/v1/tenants/m/files/products/1/a.png") && !https.is_match("/v1/x"));
        let parts =
            ["https://", "HTTPS://", "/", "//", "a", "-", ".", "..", ":", ":443", "@", "\\", " ", "é", "?", "#", "x9"];
        let mut rng = rand::rng();
        let mut matched = 0;
        for _ in 0..200_000 {
            let n = rng.random_range(1..8);
            let s: String = (0..n).map(|_| parts[rng.random_range(0..parts.len())]).collect();
            if https.is_match(&s) {
                matched += 1;
                assert!(https_url_ok(&s), "{s:?}");
            }
            if image.is_match(&s) {
                assert!(image_url_ok(&s), "{s:?}");
            }
        }
        assert!(matched > 100, "{matched}");
    }
}
