//! The egress policy: every request the backend makes to an address someone typed (model
//! providers, webhooks, Slack/Discord/Telegram, mail servers) goes through here.
//!
//! An address is refused when it is loopback, private, link-local (the cloud metadata
//! service at 169.254.169.254 among them), shared (CGNAT), unspecified, multicast,
//! documentation or otherwise reserved, unless the operator allowed it
//! (`PORTA_OUTBOUND_ALLOW`: addresses, networks in CIDR form, or host names, each perhaps with
//! a `:port`). The check runs on the addresses a name resolves to, at the moment of
//! connecting (so a name that turns private between a check and the request is still
//! refused), on IP literals in URLs, and — since HTTP clients here follow no redirects — on
//! nothing a remote server chooses. An entry with a port allows that port only (the default
//! model provider's `127.0.0.1:11434` does not open the rest of loopback to port scans).
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

/// The policy: what is refused, and what the operator allowed regardless (each entry with
/// the one port it allows, or any).
#[derive(Debug, Clone, Default)]
pub struct Egress {
    allow: Vec<(Allowed, Option<u16>)>,
}

/// `host`, `host:port`, `[v6]:port`, `net/len` split into the part and its port.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((host, port)) = rest.split_once("]:") {
            return (host, port.parse().ok());
        }
        return (rest.trim_end_matches(']'), None);
    }
    match entry.rsplit_once(':') {
        // One colon: a port. More: a bare IPv6 address.
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host, Some(p)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

impl Egress {
    /// A policy with these allow-list entries: `10.0.0.5`, `10.1.0.0/16`, `::1`,
    /// `ollama.internal`. An entry that is none of those is an error naming it.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut allow = Vec::new();
        for raw in entries {
            let full = raw.as_ref().trim();
            if full.is_empty() {
                continue;
            }
            let (e, port) = split_port(full);
            if full.ends_with(':') || (full.contains("]:") && port.is_none()) {
                return Err(format!("{full:?}: the port is not a number from 1 to 65535"));
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
                     those, each perhaps with a :port, comma-separated"
                ));
            };
            allow.push((entry, port));
        }
        Ok(Self { allow })
    }

    /// Allows the endpoint (host and port) of `url`: the operator named it in their own
    /// settings (the instance's default model provider), so it is theirs.
    pub fn allow_url(&mut self, url: &str) {
        let Ok(u) = reqwest::Url::parse(url) else { return };
        let port = u.port_or_known_default();
        match u.host() {
            Some(url::Host::Ipv4(ip)) => self.allow.push((Allowed::Net(IpNet::from(IpAddr::V4(ip))), port)),
            Some(url::Host::Ipv6(ip)) => self.allow.push((Allowed::Net(IpNet::from(IpAddr::V6(ip))), port)),
            Some(url::Host::Domain(d)) => self.allow.push((Allowed::Host(d.to_ascii_lowercase()), port)),
            None => {}
        }
    }

    /// Whether an entry names `host` (a name) on `port` (`None`: on some port).
    fn host_allowed(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.trim_end_matches('.');
        self.allow.iter().any(|(a, p)| {
            matches!(a, Allowed::Host(h) if h.eq_ignore_ascii_case(host))
                && (port.is_none() || p.is_none() || *p == port)
        })
    }

    /// Whether an entry covers `ip` on `port` (`None`: the port is not known, so only an entry
    /// for any port will do).
    fn ip_allowed(&self, ip: IpAddr, port: Option<u16>) -> bool {
        let ip = canonical(ip);
        self.allow.iter().any(|(a, p)| {
            matches!(a, Allowed::Net(n) if n.contains(&ip)) && (p.is_none() || (port.is_some() && *p == port))
        })
    }

    /// Whether a connection to `ip` (reached as `host`, on `port` when known) may be made.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), EgressError> {
        self.check(host, ip, None)
    }

    fn check(&self, host: &str, ip: IpAddr, port: Option<u16>) -> Result<(), EgressError> {
        if self.host_allowed(host, port) || self.ip_allowed(ip, port) {
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
        let known = (port != 0).then_some(port);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check(host, ip, known)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        self.check_name_port(bare, known)?;
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|_| EgressError::Unresolved(host.to_owned()))?
            .collect();
        if addrs.is_empty() {
            return Err(EgressError::Unresolved(host.to_owned()));
        }
        for a in &addrs {
            self.check(host, a.ip(), known)?;
        }
        Ok(addrs)
    }

    /// A name allowed on some ports only is refused on the others (the resolver, which does
    /// not see the port, lets the name through).
    fn check_name_port(&self, host: &str, port: Option<u16>) -> Result<(), EgressError> {
        let host = host.trim_end_matches('.');
        let ports: Vec<Option<u16>> = self
            .allow
            .iter()
            .filter(|(a, _)| matches!(a, Allowed::Host(h) if h.eq_ignore_ascii_case(host)))
            .map(|(_, p)| *p)
            .collect();
        if ports.is_empty() || ports.contains(&None) || port.is_none() || ports.contains(&port) {
            return Ok(());
        }
        Err(EgressError::BadUrl(format!(
            "{host} may be reached on port {} only (PORTA_OUTBOUND_ALLOW)",
            ports.iter().flatten().map(u16::to_string).collect::<Vec<_>>().join(", ")
        )))
    }

    /// Checks a URL before a request: http or https, and an IP literal host (which no
    /// resolver sees) checked here.
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, EgressError> {
        let u = reqwest::Url::parse(url).map_err(|e| EgressError::BadUrl(format!("not a URL: {e}")))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(EgressError::BadUrl(format!("{}: only http and https are fetched", u.scheme())));
        }
        let port = u.port_or_known_default();
        match u.host() {
            Some(url::Host::Ipv4(ip)) => self.check(&ip.to_string(), IpAddr::V4(ip), port)?,
            Some(url::Host::Ipv6(ip)) => self.check(&ip.to_string(), IpAddr::V6(ip), port)?,
            Some(url::Host::Domain(d)) => self.check_name_port(d, port)?,
            None => return Err(EgressError::BadUrl("the URL names no host".into())),
        }
        Ok(u)
    }

    /// [`Egress::check_url`], and a name resolved and checked now too, for an early, clear
    /// answer when an address is saved (it is checked again at every request). A name that
    /// does not resolve now is let through: it may later.
    pub async fn check_saved_url(&self, url: &str) -> Result<(), EgressError> {
        let u = self.check_url(url)?;
        if let (Some(url::Host::Domain(d)), Some(port)) = (u.host(), u.port_or_known_default()) {
            match self.resolve(d, port).await {
                Ok(_) | Err(EgressError::Unresolved(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// An HTTP client under this policy: every name it connects to is resolved and checked
    /// here, it follows no redirects, and it gives up on a connection after `connect`.
    pub fn http_client(self: &Arc<Self>, connect: Duration) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(Resolver(self.clone())))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would make the connection to the proxy, not to
            // the address this policy checked: the resolver above would be bypassed.
            .no_proxy()
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

/// Checks a base URL: `http(s)://host[:port][/path]`, with no credentials, query or
/// fragment. Returns it without a trailing slash.
pub fn valid_base_url(url: &str) -> std::result::Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    if url.len() > 2048 {
        return Err("a URL is at most 2048 bytes".into());
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{url:?} names no host"));
    }
    if host.contains('@') {
        return Err("put the API key in its own field, not in the URL".into());
    }
    if url.contains(['?', '#', ' ']) || url.chars().any(char::is_control) {
        return Err(format!("{url:?} may not carry a query, a fragment or spaces"));
    }
    Ok(url.to_owned())
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
        local.allow_url("http://127.0.0.1:11434/v1");
        assert!(local.check_url("http://127.0.0.1:11434/v1/models").is_ok());
        assert!(local.check_url("http://127.0.0.1:6379/").is_err(), "the default provider's port only");
        assert!(local.check_url("http://127.0.0.1/").is_err());
    }

    #[test]
    fn entries_may_name_a_port() {
        let e = Egress::new(&["10.0.0.5:25", "mail.internal:587", "[fd00::1]:8080", "::1"]).expect("policy");
        assert!(e.check("10.0.0.5", ip("10.0.0.5"), Some(25)).is_ok());
        assert!(e.check("10.0.0.5", ip("10.0.0.5"), Some(22)).is_err());
        assert!(e.check("10.0.0.5", ip("10.0.0.5"), None).is_err(), "a resolver without the port is refused");
        assert!(e.check_url("http://mail.internal:587/").is_ok());
        assert!(e.check_url("http://mail.internal:25/").is_err());
        assert!(e.check_url("http://[fd00::1]:8080/").is_ok());
        assert!(e.check_url("http://[::1]:9/").is_ok(), "a bare IPv6 entry allows any port");
        assert!(Egress::new(&["10.0.0.5:"]).is_err() && Egress::new(&["10.0.0.5:99999"]).is_err());
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
