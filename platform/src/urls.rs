//! Image and logo URLs (issue 10, point 9): an absolute https URL with a plain host, or
//! an absolute path on this server. Refused: other schemes (`javascript:`, `data:`,
//! `http:`), protocol-relative `//host` and `/\host` (browsers read both as another
//! host), credentials in the authority (`https://good@evil`), whitespace, control
//! characters and backslashes anywhere.

/// Longest URL accepted.
pub const URL_MAX_BYTES: usize = 2048;

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
}
