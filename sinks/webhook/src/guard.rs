//! The SSRF guard: which addresses a webhook may reach, and a DNS resolver for the HTTP client
//! that returns only those, so the connection goes to exactly the addresses that were checked
//! (no window for DNS rebinding between the check and the connect).

use std::error::Error;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The address an IP literal in a URL names, if the host is one.
pub fn literal_ip(host: &url::Host<&str>) -> Option<IpAddr> {
    match host {
        url::Host::Ipv4(a) => Some(IpAddr::V4(*a)),
        url::Host::Ipv6(a) => Some(IpAddr::V6(*a)),
        url::Host::Domain(_) => None,
    }
}

/// An IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible address as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Why an address is refused without `allow_private` (a class name for messages), or `None`
/// when it is a public unicast address.
pub fn refused_class(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified (0.0.0.0/8)")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private (RFC 1918)")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (CGNAT 100.64.0.0/10)")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("multicast, broadcast or reserved")
    } else if (a, b) == (192, 0) && ip.octets()[2] == 0 {
        Some("IETF protocol assignment (192.0.0.0/24)")
    } else if (a, b) == (198, 18) || (a, b) == (198, 19) {
        Some("benchmarking (198.18.0.0/15)")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if first & 0xfe00 == 0xfc00 {
        Some("unique-local (fc00::/7)")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xffc0 == 0xfec0 {
        Some("site-local (deprecated)")
    } else if let Some(v4) = embedded_v4(ip) {
        // NAT64 (64:ff9b::/96) and IPv4-compatible (::a.b.c.d) forms reach an IPv4 address.
        refused_v4(v4)
    } else {
        None
    }
}

fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    let compatible = s[..6] == [0, 0, 0, 0, 0, 0];
    (nat64 || compatible).then_some(tail)
}

/// The resolver refused every address of a host: not worth retrying until the DNS or the
/// configuration changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Refused {}

/// Resolves `host` and keeps the addresses the guard permits; an error when none is left.
pub async fn resolve(
    host: &str,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Box<dyn Error + Send + Sync>> {
    let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| format!("resolving {host}: {e}"))?
        .collect();
    if allow_private {
        return Ok(all);
    }
    let mut refused = None;
    let kept: Vec<SocketAddr> = all
        .into_iter()
        .filter(|a| match refused_class(a.ip()) {
            Some(class) => {
                refused = Some(format!("{} is a {class} address", a.ip()));
                false
            }
            None => true,
        })
        .collect();
    match (kept.is_empty(), refused) {
        (true, Some(why)) => Err(Box::new(Refused(format!(
            "{host} resolves only to refused addresses ({why}); set allow_private = true to permit it"
        )))),
        (true, None) => Err(format!("{host} resolves to no address").into()),
        (false, _) => Ok(kept),
    }
}

/// The HTTP client's resolver: every connection goes through [`resolve`].
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Keep every address, private and loopback ones included (the sink's `allow_private`).
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = resolve(name.as_str(), allow_private).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Whether `error` (or one of its sources) is the guard's refusal.
pub fn refusal<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a Refused> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<Refused>() {
            return Some(r);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> Option<&'static str> {
        refused_class(text.parse().unwrap())
    }

    #[test]
    fn refuses_internal_addresses() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fc00::5",
            "fe80::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(class(ip).is_some(), "{ip} should be refused");
        }
        assert_eq!(class("::ffff:10.0.0.1"), Some("private (RFC 1918)"));
        assert_eq!(class("169.254.169.254"), Some("link-local"));
        assert_eq!(class("100.64.0.1"), Some("shared (CGNAT 100.64.0.0/10)"));
        assert_eq!(class("fd00::1"), Some("unique-local (fc00::/7)"));
        assert_eq!(class("::1"), Some("loopback"));
    }

    #[test]
    fn permits_public_addresses() {
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(class(ip), None, "{ip} should be permitted");
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_localhost_unless_allowed() {
        let err = resolve("localhost", false).await.unwrap_err();
        assert!(refusal(err.as_ref()).is_some(), "{err}");
        assert!(!resolve("localhost", true).await.unwrap().is_empty());
    }
}
