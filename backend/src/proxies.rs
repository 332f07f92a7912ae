//! Who a request came from when Porta sits behind a load balancer (`PORTA_TRUSTED_PROXIES`).
//!
//! Behind Caddy or nginx every connection comes from the proxy, so sign-in limits would count
//! everyone as one client and the audit log would name the proxy. A peer in the trusted list
//! may say who its client was in `X-Forwarded-For`; the client is the rightmost address there
//! that is not itself a trusted proxy (addresses further left were written by the client,
//! who can write anything). A peer not in the list is the client, whatever it sends.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses and networks: `10.0.0.0/8`, `192.168.1.7`, `::1`, `fd00::/8`.
    pub fn parse(items: &[String]) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => IpNet::from(
                    item.parse::<IpAddr>()
                        .map_err(|_| format!("{item:?} is neither an address (10.0.0.7) nor a network (10.0.0.0/8)"))?,
                ),
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: `peer`'s own, or, when `peer` is a trusted proxy, the rightmost
    /// address of `forwarded_for` (the `X-Forwarded-For` values, in order) that is not.
    pub fn client(&self, peer: SocketAddr, forwarded_for: &[&str]) -> SocketAddr {
        if !self.trusts(peer.ip()) {
            return peer;
        }
        // From the right: each entry was written by the hop before it. A value that does not
        // parse stops the walk, since nothing left of it can be believed.
        let mut client = peer;
        for hop in forwarded_for.iter().rev().flat_map(|v| v.rsplit(',')).map(str::trim) {
            let Some(ip) = parse_hop(hop) else { break };
            client = SocketAddr::new(ip, 0);
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: `203.0.113.7`, `2001:db8::1`, or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(items: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).expect("valid")
    }

    fn at(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("ip"), 4000)
    }

    #[test]
    fn only_a_trusted_peer_may_name_the_client() {
        let p = proxies(&["172.16.0.0/12", "10.0.0.9"]);
        // Through the proxy: the client it names.
        assert_eq!(p.client(at("172.18.0.5"), &["203.0.113.7"]).ip(), at("203.0.113.7").ip());
        // Straight from the internet: the header is the client's own word, not believed.
        assert_eq!(p.client(at("198.51.100.1"), &["203.0.113.7"]), at("198.51.100.1"));
        // Nothing forwarded: the proxy itself.
        assert_eq!(p.client(at("10.0.0.9"), &[]), at("10.0.0.9"));
        // Nobody trusted (the default): always the peer.
        assert_eq!(TrustedProxies::default().client(at("172.18.0.5"), &["203.0.113.7"]), at("172.18.0.5"));
    }

    #[test]
    fn a_client_cannot_hide_behind_an_address_it_writes_itself() {
        let p = proxies(&["172.16.0.0/12"]);
        // The client wrote "1.2.3.4" itself; the proxy appended the address it saw.
        assert_eq!(p.client(at("172.18.0.5"), &["1.2.3.4, 203.0.113.7"]).ip(), at("203.0.113.7").ip());
        // Two proxies in a row (both trusted): the first untrusted from the right.
        assert_eq!(p.client(at("172.18.0.5"), &["1.2.3.4", "203.0.113.7, 172.20.0.2"]).ip(), at("203.0.113.7").ip());
        // Garbage on the right stops the walk there: the peer.
        assert_eq!(p.client(at("172.18.0.5"), &["203.0.113.7, nonsense"]), at("172.18.0.5"));
        // Ports and IPv6 in brackets are read; IPv4-mapped peers match IPv4 networks.
        assert_eq!(p.client(at("::ffff:172.18.0.5"), &["[2001:db8::1]:443"]).ip(), at("2001:db8::1").ip());
    }

    #[test]
    fn bad_entries_are_refused_with_an_example() {
        let e = TrustedProxies::parse(&["10.0.0.0/33".into()]).expect_err("refused");
        assert!(e.contains("10.0.0.0/8"), "{e}");
        assert!(TrustedProxies::parse(&["caddy".into()]).is_err());
        assert!(TrustedProxies::parse(&[" ".into()]).expect("blank is nothing").0.is_empty());
    }
}
