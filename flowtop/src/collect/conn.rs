//! A connection's identity as shown (`--by conn`): protocol, family, the two
//! endpoints as text, IPv4-mapped IPv6 addresses shown as the IPv4 they are.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use flowtop_common::{
    net::{AF_INET, AF_INET6, IPPROTO_MPTCP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE},
    FlowKey,
};

/// A connection's identity as shown (`--by conn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    pub family: u16,
    pub protocol: u16,
    pub laddr: IpAddr,
    pub lport: u16,
    /// None: not connected (unconnected UDP): the hooks do not see each datagram's peer.
    pub remote: Option<(IpAddr, u16)>,
}

impl Conn {
    pub fn from_key(k: &FlowKey) -> Self {
        let addr = |b: &[u8; 16]| -> IpAddr {
            if k.family == AF_INET {
                IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            } else {
                unmap(IpAddr::V6(Ipv6Addr::from(*b)))
            }
        };
        let raddr = addr(&k.raddr);
        Self {
            family: k.family,
            protocol: k.protocol,
            laddr: addr(&k.laddr),
            lport: k.lport,
            remote: (!raddr.is_unspecified() || k.rport != 0).then_some((raddr, k.rport)),
        }
    }

    /// `tcp`, `udp`, `mptcp`, `udplite`.
    pub fn proto(&self) -> String {
        match self.protocol {
            IPPROTO_TCP => "tcp".into(),
            IPPROTO_UDP => "udp".into(),
            IPPROTO_MPTCP => "mptcp".into(),
            IPPROTO_UDPLITE => "udplite".into(),
            p => format!("proto{p}"),
        }
    }

    /// `ipv4` or `ipv6`, after IPv4-mapped addresses were shown as IPv4.
    pub fn family_name(&self) -> &'static str {
        match (self.family, self.laddr) {
            (AF_INET6, IpAddr::V6(_)) => "ipv6",
            _ => "ipv4",
        }
    }

    pub fn local(&self) -> String {
        endpoint(self.laddr, self.lport)
    }

    /// `*` when the remote is not known.
    pub fn remote(&self) -> String {
        self.remote
            .map_or_else(|| "*".to_string(), |(a, p)| endpoint(a, p))
    }
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as the IPv4 address it is.
fn unmap(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

/// `1.2.3.4:80`, `[::1]:8080`.
pub fn endpoint(addr: IpAddr, port: u16) -> String {
    match unmap(addr) {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(family: u16, laddr: [u8; 16], lport: u16, raddr: [u8; 16], rport: u16) -> FlowKey {
        FlowKey {
            tgid: 1,
            family,
            protocol: IPPROTO_TCP,
            lport,
            rport,
            laddr,
            raddr,
            ..Default::default()
        }
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut b = [0; 16];
        b[..4].copy_from_slice(&a);
        b
    }

    #[test]
    fn formats_v4_v6_mapped_and_unknown_remotes() {
        let c = Conn::from_key(&key(
            AF_INET,
            v4([127, 0, 0, 1]),
            8080,
            v4([10, 1, 2, 3]),
            443,
        ));
        assert_eq!(
            (c.local(), c.remote()),
            ("127.0.0.1:8080".into(), "10.1.2.3:443".into())
        );
        assert_eq!((c.proto(), c.family_name()), ("tcp".into(), "ipv4"));
        let lo6 = Ipv6Addr::LOCALHOST.octets();
        let c = Conn::from_key(&key(AF_INET6, lo6, 8080, lo6, 51000));
        assert_eq!(
            (c.local(), c.remote()),
            ("[::1]:8080".into(), "[::1]:51000".into())
        );
        assert_eq!(c.family_name(), "ipv6");
        let doc = "2001:db8::a:0:0:1".parse::<Ipv6Addr>().unwrap().octets();
        let c = Conn::from_key(&key(AF_INET6, doc, 1, [0; 16], 0));
        assert_eq!(
            (c.local(), c.remote()),
            ("[2001:db8::a:0:0:1]:1".into(), "*".into())
        );
        let mapped = Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped().octets();
        let c = Conn::from_key(&key(AF_INET6, mapped, 53, mapped, 5353));
        assert_eq!(
            (c.local(), c.remote()),
            ("192.0.2.7:53".into(), "192.0.2.7:5353".into())
        );
        assert_eq!(c.family_name(), "ipv4");
        let c = Conn::from_key(&key(AF_INET, [0; 16], 5353, [0; 16], 0));
        assert_eq!((c.local(), c.remote()), ("0.0.0.0:5353".into(), "*".into()));
    }
}
