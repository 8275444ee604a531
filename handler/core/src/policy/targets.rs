//! Which targets a delivery may reach: an absolute http(s) URL with a host (checked at registration and again
//! when sending), and, when private targets are not allowed, no address of the SSRF guard's list. The sender
//! applies the guard to the addresses a host name resolves to, at connect time, so DNS rebinding cannot get
//! around it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a text is not a URL a webhook can be sent to.
#[derive(Debug)]
pub enum UrlProblem {
    Invalid(url::ParseError),
    /// Its scheme, which is not http or https.
    NotHttp(String),
    NoHost,
}

impl std::fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlProblem::Invalid(e) => write!(f, "{e}"),
            UrlProblem::NotHttp(scheme) => write!(f, "the scheme {scheme:?} is not http or https"),
            UrlProblem::NoHost => write!(f, "it has no host"),
        }
    }
}

/// `text` as an absolute http(s) URL with a host: the rule for a webhook's URLs, at registration and when sending.
pub fn http_url(text: &str) -> Result<url::Url, UrlProblem> {
    let url = url::Url::parse(text).map_err(UrlProblem::Invalid)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlProblem::NotHttp(url.scheme().to_owned()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlProblem::NoHost);
    }
    Ok(url)
}

/// The address of a URL whose host is a literal IP that the guard forbids, with why. (Host names are checked
/// once resolved, by the sender.)
pub fn forbidden_host(url: &url::Url) -> Option<(IpAddr, &'static str)> {
    let ip = match url.host()? {
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
        url::Host::Domain(_) => return None,
    };
    forbidden(ip).map(|why| (ip, why))
}

/// Why `ip` is off limits, or `None` when it is a public address.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some("a multicast or broadcast address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a unique-local address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast or broadcast address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused_and_public_ones_are_not() {
        let refused = [
            ("127.0.0.1", "a loopback address"),
            ("127.8.9.10", "a loopback address"),
            ("::1", "a loopback address"),
            ("::ffff:127.0.0.1", "a loopback address"),
            ("10.1.2.3", "a private address"),
            ("172.16.0.1", "a private address"),
            ("172.31.255.255", "a private address"),
            ("192.168.1.1", "a private address"),
            ("100.64.0.1", "a private address"),
            ("169.254.169.254", "a link-local address"),
            ("fe80::1", "a link-local address"),
            ("fc00::1", "a unique-local address"),
            ("fd12:3456::1", "a unique-local address"),
            ("224.0.0.1", "a multicast or broadcast address"),
            ("255.255.255.255", "a multicast or broadcast address"),
            ("ff02::1", "a multicast or broadcast address"),
            ("0.0.0.0", "an unspecified address"),
            ("::", "an unspecified address"),
        ];
        for (ip, why) in refused {
            assert_eq!(forbidden(ip.parse().unwrap()), Some(why), "{ip}");
        }
        let url = |text: &str| http_url(text).unwrap();
        assert_eq!(
            forbidden_host(&url("http://10.0.0.1/hook")),
            Some(("10.0.0.1".parse().unwrap(), "a private address"))
        );
        assert_eq!(forbidden_host(&url("http://[::1]:8080/")), Some(("::1".parse().unwrap(), "a loopback address")));
        assert_eq!(forbidden_host(&url("https://localhost/")), None, "names are checked once resolved");
        for ip in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:db8::1", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert_eq!(forbidden(ip.parse().unwrap()), None, "{ip}");
        }
    }
}
