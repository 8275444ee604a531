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
        IpAddr::V6(v6) => match v6.to_ipv4_mapped().or_else(|| embedded_v4(v6)) {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 one carries to reach it: NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`), or the old
/// IPv4-compatible form (`::a.b.c.d`). Judged as that IPv4 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |high: u16, low: u16| Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8);
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => Some(v4(high, low)),
        [0x2002, high, low, ..] => Some(v4(high, low)),
        [0, 0, 0, 0, 0, 0, high, low] if high != 0 => Some(v4(high, low)),
        _ => None,
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
    } else if (a == 198 && (18..20).contains(&b)) || a >= 240 {
        Some("a reserved address")
    } else if ip.octets() == [168, 63, 129, 16] {
        Some("the Azure platform's own address")
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
    } else if first & 0xffc0 == 0xfec0 {
        Some("a site-local address")
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
            // IPv4 inside IPv6: NAT64, 6to4, IPv4-compatible; then the rest of the reserved space.
            ("64:ff9b::a9fe:a9fe", "a link-local address"),
            ("2002:7f00:1::1", "a loopback address"),
            ("::127.0.0.1", "a loopback address"),
            ("fec0::1", "a site-local address"),
            ("198.18.0.1", "a reserved address"),
            ("240.0.0.1", "a reserved address"),
            ("168.63.129.16", "the Azure platform's own address"),
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
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2001:db8::1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(forbidden(ip.parse().unwrap()), None, "{ip}");
        }
    }
}
