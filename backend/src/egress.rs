//! The egress policy: every request the backend makes to an address someone typed (model
//! providers, webhooks, Slack/Discord/Telegram, mail servers) goes through here.
//!
//! An address is refused when it is loopback, private, link-local (the cloud metadata
//! service at 169.254.169.254 among them), shared (CGNAT), unspecified, multicast,
//! documentation or otherwise reserved, unless the operator allowed it
//! (`PORTA_OUTBOUND_ALLOW`: addresses, networks in CIDR form, or host names). The check runs
//! on the addresses a name resolves to, at the moment of connecting (so a name that turns
//! private between a check and the request is still refused), on IP literals in URLs, and —
//! since HTTP clients here follow no redirects — on nothing a remote server chooses.
//!
//! What comes back from a refused or failed request is a short reason, never the remote
//! body: an error page of an internal service must not be read through Porta.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

/// Why an outbound request was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error(
        "{host} is {why} ({ip}); Porta does not connect to such addresses unless the operator allows them \
         (PORTA_OUTBOUND_ALLOW)"
    )]
    Refused { host: String, ip: IpAddr, why: &'static str },
    #[error("{0} cannot be resolved")]
    Unresolved(String),
    #[error("{0}")]
    BadUrl(String),
}

/// One entry of the operator's allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Net(IpNet),
    Host(String),
}

/// The policy: what is refused, and what the operator allowed regardless.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    allow: Vec<Allowed>,
}

impl Egress {
    /// A policy with these allow-list entries: `10.0.0.5`, `10.1.0.0/16`, `::1`,
    /// `ollama.internal`. An entry that is none of those is an error naming it.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut allow = Vec::new();
        for raw in entries {
            let e = raw.as_ref().trim();
            if e.is_empty() {
                continue;
            }
            let entry = if let Ok(net) = e.parse::<IpNet>() {
                Allowed::Net(net)
            } else if let Ok(ip) = e.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
                Allowed::Net(IpNet::from(ip))
            } else if valid_host_name(e) {
                Allowed::Host(e.to_ascii_lowercase())
            } else {
                return Err(format!(
                    "{e:?} is not an address, a network (10.0.0.0/8) or a host name; PORTA_OUTBOUND_ALLOW takes \
                     those, comma-separated"
                ));
            };
            allow.push(entry);
        }
        Ok(Self { allow })
    }

    /// Adds the host of `url` to the allow-list: the operator named it in their own settings
    /// (the instance's default model provider), so it is theirs.
    pub fn allow_url_host(&mut self, url: &str) {
        let Ok(u) = reqwest::Url::parse(url) else { return };
        match u.host() {
            Some(url::Host::Ipv4(ip)) => self.allow.push(Allowed::Net(IpNet::from(IpAddr::V4(ip)))),
            Some(url::Host::Ipv6(ip)) => self.allow.push(Allowed::Net(IpNet::from(IpAddr::V6(ip)))),
            Some(url::Host::Domain(d)) => self.allow.push(Allowed::Host(d.to_ascii_lowercase())),
            None => {}
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.allow.iter().any(|a| matches!(a, Allowed::Host(h) if h.eq_ignore_ascii_case(host)))
    }

    fn ip_allowed(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allow.iter().any(|a| matches!(a, Allowed::Net(n) if n.contains(&ip)))
    }

    /// Whether a connection to `ip` (reached as `host`) may be made.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), EgressError> {
        if self.host_allowed(host) || self.ip_allowed(ip) {
            return Ok(());
        }
        match refused_kind(ip) {
            Some(why) => Err(EgressError::Refused { host: host.to_owned(), ip, why }),
            None => Ok(()),
        }
    }

    /// Resolves `host` and checks every address it has: one refused address refuses the
    /// name (a name with a public and a private address is a rebinding trick).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check_ip(host, ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|_| EgressError::Unresolved(host.to_owned()))?
            .collect();
        if addrs.is_empty() {
            return Err(EgressError::Unresolved(host.to_owned()));
        }
        for a in &addrs {
            self.check_ip(host, a.ip())?;
        }
        Ok(addrs)
    }

    /// Checks a URL before a request: http or https, and an IP literal host (which no
    /// resolver sees) checked here.
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, EgressError> {
        let u = reqwest::Url::parse(url).map_err(|e| EgressError::BadUrl(format!("not a URL: {e}")))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(EgressError::BadUrl(format!("{}: only http and https are fetched", u.scheme())));
        }
        match u.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(&ip.to_string(), IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_ip(&ip.to_string(), IpAddr::V6(ip))?,
            Some(url::Host::Domain(_)) => {}
            None => return Err(EgressError::BadUrl("the URL names no host".into())),
        }
        Ok(u)
    }

    /// An HTTP client under this policy: every name it connects to is resolved and checked
    /// here, it follows no redirects, and it gives up on a connection after `connect`.
    pub fn http_client(self: &Arc<Self>, connect: Duration) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(Resolver(self.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect)
            .user_agent(concat!("porta/", env!("CARGO_PKG_VERSION")))
            .build()
    }
}

/// Resolves names for reqwest, refusing what the policy refuses.
struct Resolver(Arc<Egress>);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let addrs = policy.resolve(name.as_str(), 0).await.map_err(|e| Box::new(e) as Box<_>)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// What a failed request says, without its URL (which may carry a secret) or anything the
/// remote sent: this policy's refusal when it was one, else the innermost cause.
pub fn reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "it did not answer in time".into();
    }
    let mut text = String::from("the request failed");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = s.to_string();
        if let Some(r) = s.downcast_ref::<EgressError>() {
            return r.to_string();
        }
        source = s.source();
    }
    text
}

/// Whether `e` (from reqwest) was a refusal of this policy.
pub fn refused(e: &reqwest::Error) -> bool {
    reason(e).contains("PORTA_OUTBOUND_ALLOW")
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match () {
        () if ip.is_unspecified() || a == 0 => "an unspecified address",
        () if ip.is_loopback() => "a loopback address",
        () if ip.is_link_local() => "a link-local address (cloud metadata lives there)",
        () if ip.is_private() => "a private address",
        () if a == 100 && (64..128).contains(&b) => "a shared (carrier-grade NAT) address",
        () if ip.is_multicast() || ip.is_broadcast() || a >= 240 => "a multicast, broadcast or reserved address",
        () if ip.is_documentation() => "a documentation address",
        () if a == 192 && b == 0 && c == 0 => "an IETF protocol address",
        () if a == 198 && (b == 18 || b == 19) => "a benchmarking address",
        () => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    Some(match () {
        () if ip.is_unspecified() => "an unspecified address",
        () if ip.is_loopback() => "a loopback address",
        () if seg[0] & 0xffc0 == 0xfe80 => "a link-local address",
        () if seg[0] & 0xfe00 == 0xfc00 => "a private (unique local) address",
        () if seg[0] & 0xffc0 == 0xfec0 => "a site-local address",
        () if ip.is_multicast() => "a multicast address",
        () if seg[0] == 0x2001 && seg[1] == 0x0db8 => "a documentation address",
        // 64:ff9b::/96 (NAT64) and 2002::/16 (6to4) embed an IPv4 address: judge that one.
        () if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0; 4] => {
            let v4 = Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8);
            return refused_v4(v4);
        }
        () if seg[0] == 0x2002 => {
            let v4 = Ipv4Addr::new((seg[1] >> 8) as u8, seg[1] as u8, (seg[2] >> 8) as u8, seg[2] as u8);
            return refused_v4(v4);
        }
        () if ip.to_ipv4().is_some() && seg[..6] == [0; 6] => "an IPv4-compatible address",
        () => return None,
    })
}

fn valid_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn internal_addresses_are_refused_and_public_ones_pass() {
        let refused = [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "ff02::1",
        ];
        for a in refused {
            assert!(refused_kind(ip(a)).is_some(), "{a} must be refused");
        }
        for a in ["1.1.1.1", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert_eq!(refused_kind(ip(a)), None, "{a} is public");
        }
        assert_eq!(refused_kind(ip("169.254.169.254")), Some("a link-local address (cloud metadata lives there)"));
    }

    #[test]
    fn the_operator_allow_list_lets_named_addresses_through() {
        let e = Egress::new(&["10.1.0.0/16", "127.0.0.1", "ollama.internal", " "]).expect("policy");
        assert!(e.check_ip("x", ip("10.1.200.3")).is_ok());
        assert!(e.check_ip("x", ip("10.2.0.1")).is_err());
        assert!(e.check_ip("x", ip("127.0.0.1")).is_ok());
        assert!(e.check_ip("x", ip("::ffff:127.0.0.1")).is_ok(), "mapped addresses are the same address");
        assert!(e.check_ip("x", ip("127.0.0.2")).is_err());
        assert!(e.check_ip("OLLAMA.internal", ip("192.168.5.5")).is_ok(), "an allowed name may be private");
        let err = Egress::default().check_ip("metadata", ip("169.254.169.254")).expect_err("refused");
        assert!(err.to_string().contains("PORTA_OUTBOUND_ALLOW"), "{err}");
        for bad in ["10.0.0.0/33", "http://x", "a b", "-x.example"] {
            assert!(Egress::new(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_with_internal_literals_are_refused_before_any_request() {
        let e = Egress::default();
        for bad in [
            "http://127.0.0.1:11434/v1",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://017700000001/",
            "http://[::ffff:7f00:1]/",
        ] {
            assert!(matches!(e.check_url(bad), Err(EgressError::Refused { .. })), "{bad}");
        }
        assert!(matches!(e.check_url("ftp://example.com/"), Err(EgressError::BadUrl(_))));
        assert!(e.check_url("https://api.openai.com/v1").is_ok());
        let mut local = Egress::default();
        local.allow_url_host("http://127.0.0.1:11434/v1");
        assert!(local.check_url("http://127.0.0.1:11434/v1/models").is_ok());
    }

    #[tokio::test]
    async fn names_are_checked_after_they_are_resolved() {
        let e = Egress::default();
        let err = e.resolve("localhost", 80).await.expect_err("localhost is loopback");
        assert!(matches!(err, EgressError::Refused { .. }), "{err}");
        let allowed = Egress::new(&["localhost"]).expect("policy");
        assert!(allowed.resolve("localhost", 80).await.is_ok());
    }

    #[tokio::test]
    async fn an_http_client_under_the_policy_cannot_reach_loopback_by_name() {
        // A listener that would answer, so a refusal is the policy's and not a closed port.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let client = Arc::new(Egress::default()).http_client(Duration::from_secs(5)).expect("client");
        let err = client.get(format!("http://localhost:{port}/")).send().await.expect_err("refused");
        assert!(refused(&err), "{err:?}");
        assert!(reason(&err).starts_with("localhost is a loopback address (127.0.0.1)"), "{}", reason(&err));
    }
}
