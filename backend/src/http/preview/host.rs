//! The host form of a preview's address: `<port>--<server>.<preview domain>`.

/// What a request's host says about previews.
#[derive(Debug, PartialEq, Eq)]
pub enum Host<'a> {
    /// Not under the preview domain (or the domain itself, which may be Porta's own host:
    /// previews at `*.porta.example.com` beside Porta at `porta.example.com`).
    Porta,
    /// Under the preview domain but naming no preview.
    Unknown,
    Preview {
        port: u16,
        server: &'a str,
    },
}

/// Reads `host` (a `Host` header, lower-cased) against `domain` (`PORTA_PREVIEW_DOMAIN`,
/// lower-cased). A domain without a port matches the host on any port.
pub fn parse<'a>(host: &'a str, domain: &str) -> Host<'a> {
    let host = if domain.contains(':') { host } else { host.rsplit_once(':').map_or(host, |(h, _)| h) };
    let Some(label) = host.strip_suffix(domain).and_then(|l| l.strip_suffix('.')) else {
        return Host::Porta;
    };
    let Some((port, server)) = label.split_once("--") else { return Host::Unknown };
    match port.parse::<u16>() {
        Ok(port) if porta_shared::ports::valid_port(port) && server_id(server) => Host::Preview { port, server },
        _ => Host::Unknown,
    }
}

/// A server's id as a host names it: lower-case letters, digits and dashes (ids are UUIDs).
fn server_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_hosts_name_a_port_and_a_server_under_the_domain() {
        let d = "preview.example.com";
        assert_eq!(parse("3000--s1.preview.example.com", d), Host::Preview { port: 3000, server: "s1" });
        assert_eq!(parse("3000--s1.preview.example.com:8443", d), Host::Preview { port: 3000, server: "s1" });
        assert_eq!(parse("porta.example.com", d), Host::Porta);
        assert_eq!(parse("preview.example.com", d), Host::Porta, "the domain itself may be Porta's host");
        assert_eq!(parse("evilpreview.example.com", d), Host::Porta);
        for unknown in [
            "x.preview.example.com",
            "3000--a_b.preview.example.com",
            "3000--a%2e.preview.example.com",
            "0--s1.preview.example.com",
            "3000--.preview.example.com",
            "3000--a.b.preview.example.com",
        ] {
            assert_eq!(parse(unknown, d), Host::Unknown, "{unknown}");
        }
        let with_port = "porta.localhost:8080";
        assert_eq!(parse("5173--ab-cd.porta.localhost:8080", with_port), Host::Preview { port: 5173, server: "ab-cd" });
        assert_eq!(parse("5173--ab-cd.porta.localhost:9090", with_port), Host::Porta);
    }
}
