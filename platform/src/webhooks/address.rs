//! Which hosts an endpoint may name. http and https only, no credentials in the URL.
//! Private, loopback, link-local and other non-public addresses are refused unless the
//! operator allows them (`POINTSMALL_WEBHOOKS_ALLOW_PRIVATE=1`): a literal address when
//! the endpoint is saved, and every address a host name resolves to when a delivery is
//! sent (the resolver below drops them, so a name that resolves only to private
//! addresses fails its attempt; DNS rebinding after the check cannot reach them either,
//! because the connection goes to the addresses checked).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::Url;

use super::bounds;
use crate::error::{Error, Result};

/// Whether non-public addresses may be called.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddressPolicy {
    pub allow_private: bool,
}

/// The URL of an endpoint, checked: http(s), a host, no credentials, at most
/// `URL_MAX_BYTES`, no whitespace or control characters, and no literal non-public
/// address unless allowed. 422 naming `url` otherwise. Returns the parsed URL, which is
/// what gets stored and called.
pub fn check_url(s: &str, policy: AddressPolicy) -> Result<Url> {
    let bad = |why: &str| Error::invalid_field("url", why);
    if s.is_empty() || s.len() > bounds::URL_MAX_BYTES {
        return Err(bad("1 to 2048 bytes"));
    }
    if s.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return Err(bad("no spaces, control characters or backslashes"));
    }
    let url = Url::parse(s).map_err(|_| bad("an http or https URL with a valid host"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("no credentials in the URL"));
    }
    let private = match url.host() {
        None => return Err(bad("an http or https URL with a valid host")),
        Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => is_local_name(d),
    };
    if private && !policy.allow_private {
        return Err(bad("a public address (private, loopback and link-local addresses are refused)"));
    }
    // What is stored and called is the parsed form (`https:///x` is `https://x/`).
    if url.as_str().len() > bounds::URL_MAX_BYTES {
        return Err(bad("1 to 2048 bytes"));
    }
    Ok(url)
}

fn is_local_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost") || h.ends_with(".local") || h.ends_with(".internal")
}

/// Whether `ip` is a globally reachable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        // shared address space (carrier-grade NAT) 100.64.0.0/10
        || (a == 100 && (64..128).contains(&b))
        // benchmarking 198.18.0.0/15
        || (a == 198 && (18..20).contains(&b)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // unique local fc00::/7, link-local fe80::/10, documentation 2001:db8::/32
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // IPv4-compatible and NAT64 forms of private addresses are not worth the risk
        || ip.to_ipv4().is_some_and(|v4| !is_public_v4(v4)))
}

/// The resolver of the delivery client: the system's, keeping public addresses only
/// (all of them when private ones are allowed).
#[derive(Debug, Clone, Copy)]
pub struct CheckedResolver {
    pub policy: AddressPolicy,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.policy.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found.into_iter().filter(|a| allow_private || is_public(a.ip())).collect();
            if kept.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves to no public address").into();
                return Err(e);
            }
            let addrs: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: AddressPolicy = AddressPolicy { allow_private: false };
    const OPEN: AddressPolicy = AddressPolicy { allow_private: true };

    #[test]
    fn public_http_and_https_urls_pass() {
        assert_eq!(check_url("HTTPS:///Example.COM", STRICT).unwrap().as_str(), "https://example.com/");
        for ok in ["https://hooks.example.com/in", "http://example.com:8080/x?y=1", "https://93.184.216.34/"] {
            assert!(check_url(ok, STRICT).is_ok(), "{ok}");
        }
    }

    #[test]
    fn other_schemes_credentials_and_junk_are_refused() {
        for bad in [
            "",
            "ftp://example.com/",
            "javascript:alert(1)",
            "https://user:pw@example.com/",
            "https://exa mple.com/",
            "example.com/in",
            "http://999.1/",
        ] {
            assert!(check_url(bad, OPEN).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn private_addresses_are_refused_unless_allowed() {
        for private in [
            "http://127.0.0.1:9000/",
            "http://127.1/",
            "http://0x7f.1/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8080/",
            "http://api.localhost/",
        ] {
            assert!(check_url(private, STRICT).is_err(), "{private}");
            assert!(check_url(private, OPEN).is_ok(), "{private}");
        }
    }
}
