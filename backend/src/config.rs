//! The backend's configuration: command-line flags with `PORTA_*` environment fallbacks,
//! validated at start with messages that say what to fix.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "porta", version, about = "Porta: a self-hosted web IDE and server-admin platform.")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API, the UI and the bridge hub (the default).
    Serve,
    /// Print a one-time enrolment token for a new server, owned by the first admin.
    CreateEnrollmentToken {
        /// Name the server will get.
        #[arg(long)]
        name: Option<String>,
    },
    /// Exit 0 when the Porta serving on PORTA_LISTEN is ready (its `/readyz` answers 200), else
    /// 1 with the reason: a container's health check, with no other tool in the image.
    Ready,
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check that no audit event was changed, removed or inserted since it was written; names
    /// the first that was (and exits with status 1).
    Verify,
}

#[derive(Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "PORTA_LISTEN", default_value = "127.0.0.1:8111")]
    pub listen: SocketAddr,
    /// Directory for the SQLite database and the generated signing key.
    #[arg(long, env = "PORTA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://<file>` (the default: `porta.db` in the data directory) or
    /// `postgres://user:password@host/database`, for several replicas.
    #[arg(long, env = "PORTA_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Redis, for several replicas of this backend: `redis://[:password@]host[:port][/db]`.
    /// Without it the backend is one process and keeps its bus in memory.
    #[arg(long, env = "PORTA_REDIS_URL")]
    pub redis_url: Option<String>,
    /// What this deployment's Redis keys and channels start with (deployments sharing one
    /// Redis need different ones).
    #[arg(long, env = "PORTA_REDIS_PREFIX", default_value = "porta:")]
    pub redis_prefix: String,
    /// Directory of the built browser app (`cargo xtask ui` puts it in `target/ui`).
    #[arg(long, env = "PORTA_UI_DIR")]
    pub ui_dir: Option<PathBuf>,
    /// Directory of the static bridges "Add server" hands out (`porta-bridge-linux-x86_64`,
    /// `porta-bridge-linux-aarch64`; `cargo xtask bridges` builds them). Defaults to
    /// `bridges/` beside this program.
    #[arg(long, env = "PORTA_BRIDGE_DOWNLOADS")]
    pub bridge_downloads: Option<PathBuf>,
    /// The URL people open, e.g. https://porta.example.com. Its origin is the one browser
    /// WebSockets are accepted from; https makes cookies Secure. Defaults to http://LISTEN.
    #[arg(long, env = "PORTA_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// More origins allowed to open browser WebSockets, comma-separated.
    #[arg(long, env = "PORTA_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// The domain previews are served under as hosts of their own (`<port>--<server>.DOMAIN`,
    /// perhaps with a `:port`), for a wildcard DNS name and certificate that reach this
    /// backend: e.g. `porta.example.com` itself (previews at `*.porta.example.com`) or
    /// `preview.example.com`. Apps there are served at their root, and previews can be
    /// shared. Keep it on the same site as PORTA_PUBLIC_URL (the preview pane's cookie is then
    /// first-party). Without it, previews are at `/p/<server>/<port>/` only.
    #[arg(long, env = "PORTA_PREVIEW_DOMAIN")]
    pub preview_domain: Option<String>,
    /// Load balancers (addresses or networks, comma-separated) whose `X-Forwarded-For` names
    /// the client, for sign-in limits and the audit log. Nobody by default.
    #[arg(long, env = "PORTA_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Key for signing access tokens (at least 32 bytes). Generated into the data directory
    /// when absent.
    #[arg(long, env = "PORTA_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Password for the first admin ("admin"), created when no user exists.
    #[arg(long, env = "PORTA_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Create the first admin with a generated password, printed once, when no user exists
    /// and no password was given.
    #[arg(long, env = "PORTA_GENERATE_ADMIN_PASSWORD")]
    pub generate_admin_password: bool,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "PORTA_ACCESS_TTL_SECS", default_value_t = 900)]
    pub access_ttl_secs: u64,
    /// Lifetime of refresh tokens, in seconds.
    #[arg(long, env = "PORTA_REFRESH_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub refresh_ttl_secs: u64,
    /// A spent refresh token presented again within this many seconds (two tabs refreshing
    /// at once) gets a sibling token instead of revoking its family.
    #[arg(long, env = "PORTA_REFRESH_REUSE_GRACE_SECS", default_value_t = 10)]
    pub refresh_reuse_grace_secs: u64,
    /// Sign-in attempts allowed per minute from one client address (over all accounts); wrong
    /// passwords for one account from one address also back off after five.
    #[arg(long, env = "PORTA_LOGIN_ATTEMPTS_PER_MINUTE", default_value_t = 10)]
    pub login_attempts_per_minute: u32,
    /// Lifetime of enrolment tokens, in seconds.
    #[arg(long, env = "PORTA_ENROLLMENT_TTL_SECS", default_value_t = 1800)]
    pub enrollment_ttl_secs: u64,
    /// Interval of WebSocket pings to bridges and browsers, in milliseconds; a peer silent
    /// for three intervals, or one that takes three intervals to take one message, is
    /// dropped.
    #[arg(long, env = "PORTA_HEARTBEAT_MS", default_value_t = 10_000)]
    pub heartbeat_ms: u64,
    /// How long a request to a bridge may take before the caller gets `timeout`, in ms.
    #[arg(long, env = "PORTA_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// Files larger than this open read-only in the editor (or are offered as a download).
    #[arg(long, env = "PORTA_EDITOR_MAX_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub editor_max_bytes: u64,

    /// The OpenAI-compatible endpoint a workspace's assistant uses until its admins choose
    /// another (Ollama's, by default).
    #[arg(long, env = "PORTA_AI_BASE_URL", default_value = "http://127.0.0.1:11434/v1")]
    pub ai_base_url: String,

    /// Addresses the backend may reach although they are loopback, private or link-local
    /// (model providers, webhooks, mail relays people set): IPs, networks (10.0.0.0/8) or host
    /// names, each perhaps with a :port, comma-separated. PORTA_AI_BASE_URL's host and port
    /// are always allowed.
    #[arg(long, env = "PORTA_OUTBOUND_ALLOW", value_delimiter = ',')]
    pub outbound_allow: Vec<String>,

    /// A bearer token a Prometheus scraper sends to read `/metrics`; metrics are off without
    /// one (at least 16 characters).
    #[arg(long, env = "PORTA_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Recordings stop when the data folder's disk has less than this many MB free.
    #[arg(long, env = "PORTA_RECORDING_MIN_FREE_MB", default_value_t = 1024)]
    pub recording_min_free_mb: u64,

    /// The most one outbound delivery attempt (a webhook, a mail) may take, in seconds.
    #[arg(long, env = "PORTA_OUTBOUND_TIMEOUT_SECS", default_value_t = 30)]
    pub outbound_timeout_secs: u64,

    /// The model asked for until a workspace chooses another.
    #[arg(long, env = "PORTA_AI_MODEL", default_value = "llama3.2")]
    pub ai_model: String,

    /// Key (64 hex characters) that seals stored secrets such as providers' API keys;
    /// generated into `data_dir/secrets.key` when not given.
    #[arg(long, env = "PORTA_SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<set>"))
            .field("public_url", &self.public_url)
            .field("allowed_origins", &self.allowed_origins)
            .field("preview_domain", &self.preview_domain)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<redacted>"))
            .field("admin_password", &self.admin_password.as_ref().map(|_| "<redacted>"))
            .field("ai_base_url", &self.ai_base_url)
            .field("outbound_allow", &self.outbound_allow)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "<redacted>"))
            .field("ai_model", &self.ai_model)
            .field("secrets_key", &self.secrets_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Checks values that clap cannot, with a message naming the setting to fix.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = &self.jwt_secret {
            if s.len() < 32 {
                return Err("PORTA_JWT_SECRET must be at least 32 bytes long".into());
            }
        }
        if let Some(u) = &self.public_url {
            normalize_origin(u).ok_or_else(|| format!("PORTA_PUBLIC_URL {u:?} is not an http(s):// URL"))?;
        }
        for o in &self.allowed_origins {
            normalize_origin(o)
                .ok_or_else(|| format!("PORTA_ALLOWED_ORIGINS entry {o:?} is not an http(s):// origin"))?;
        }
        if let Some(d) = &self.preview_domain {
            valid_preview_domain(d).map_err(|e| format!("PORTA_PREVIEW_DOMAIN {d:?}: {e}"))?;
            self.previews_beside_porta(d).map_err(|e| format!("PORTA_PREVIEW_DOMAIN {d:?}: {e}"))?;
        }
        if !(10..=86_400).contains(&self.access_ttl_secs) {
            return Err("PORTA_ACCESS_TTL_SECS must be between 10 and 86400".into());
        }
        if self.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err("PORTA_METRICS_TOKEN must be at least 16 characters".into());
        }
        if self.recording_min_free_mb > 1_000_000_000 {
            return Err("PORTA_RECORDING_MIN_FREE_MB is at most 1000000000".into());
        }
        if !(2..=600).contains(&self.outbound_timeout_secs) {
            return Err("PORTA_OUTBOUND_TIMEOUT_SECS must be between 2 and 600".into());
        }
        if self.login_attempts_per_minute == 0 {
            return Err("PORTA_LOGIN_ATTEMPTS_PER_MINUTE must be at least 1".into());
        }
        if !(50..=600_000).contains(&self.heartbeat_ms) {
            return Err("PORTA_HEARTBEAT_MS must be between 50 and 600000".into());
        }
        if !(1024..=1 << 30).contains(&self.editor_max_bytes) {
            return Err("PORTA_EDITOR_MAX_BYTES must be between 1024 and 1073741824 (1 GiB)".into());
        }
        crate::egress::valid_base_url(&self.ai_base_url).map_err(|e| format!("PORTA_AI_BASE_URL: {e}"))?;
        crate::egress::Egress::new(&self.outbound_allow).map_err(|e| format!("PORTA_OUTBOUND_ALLOW: {e}"))?;
        if self.ai_model.trim().is_empty() {
            return Err("PORTA_AI_MODEL may not be empty".into());
        }
        crate::proxies::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| format!("PORTA_TRUSTED_PROXIES: {e}"))?;
        if let Some(k) = &self.secrets_key {
            crate::secrets::parse_key(k).map_err(|e| format!("PORTA_SECRETS_KEY: {e}"))?;
        }
        if let Some(url) = &self.redis_url {
            if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                return Err(format!(
                    "PORTA_REDIS_URL must be redis://[:password@]host[:port] (it starts with {:?})",
                    url.split(':').next().unwrap_or_default()
                ));
            }
        }
        if self.redis_url.is_some() {
            // Replicas share one database and must sign and seal with the same keys: a key each
            // generated into its own data folder would refuse the others' tokens and secrets.
            if !self
                .database_url
                .as_deref()
                .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
            {
                return Err("with PORTA_REDIS_URL (several replicas), PORTA_DATABASE_URL must be postgres://…: \
                            replicas share one database"
                    .into());
            }
            if self.jwt_secret.is_none() || self.secrets_key.is_none() {
                return Err("with PORTA_REDIS_URL (several replicas), set PORTA_JWT_SECRET and PORTA_SECRETS_KEY, \
                            the same on every replica"
                    .into());
            }
        }
        if self.redis_prefix.is_empty()
            || self.redis_prefix.len() > 64
            || self.redis_prefix.contains(char::is_whitespace)
        {
            return Err("PORTA_REDIS_PREFIX must be 1 to 64 characters without spaces".into());
        }
        if let Some(url) = &self.database_url {
            let scheme = url.split_once("://").map(|(s, _)| s);
            if !matches!(scheme, Some("sqlite" | "postgres" | "postgresql")) && !url.starts_with("sqlite:") {
                // The URL may hold a password: only its scheme is repeated.
                return Err(format!(
                    "PORTA_DATABASE_URL must be sqlite://<file> or postgres://user:password@host/database \
                     (it starts with {:?})",
                    url.split(':').next().unwrap_or_default()
                ));
            }
        }
        Ok(())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("porta.db").display()))
    }

    /// Previews' hosts beside Porta's: Porta's own host is not one of theirs, and over plain
    /// http (where Porta's cookies cannot be `__Host-` cookies, which a preview's page could
    /// otherwise set or shadow) only on this machine.
    fn previews_beside_porta(&self, domain: &str) -> Result<(), String> {
        let domain = domain.trim().to_ascii_lowercase();
        let domain_host = domain.rsplit_once(':').map_or(domain.as_str(), |(h, _)| h);
        let public = self.public_url.as_deref().and_then(normalize_origin);
        let (https, host) = match &public {
            Some(origin) => {
                let (scheme, authority) = origin.split_once("://").unwrap_or(("http", origin));
                (scheme == "https", authority.rsplit_once(':').map_or(authority, |(h, _)| h).to_owned())
            }
            None => (false, self.listen.ip().to_string()),
        };
        if host.ends_with(&format!(".{domain_host}")) {
            return Err(format!(
                "Porta's own host {host} would be taken for a preview's: use its name itself \
                 (previews at *.{host}) or another"
            ));
        }
        let local = host == "localhost"
            || host.ends_with(".localhost")
            || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !https && !local {
            return Err("previews at their own hosts need Porta on https (PORTA_PUBLIC_URL=https://…): \
                        over plain http a preview's page could set cookies that Porta reads"
                .into());
        }
        Ok(())
    }

    /// Where previews' own hosts are: `scheme://DOMAIN` (the scheme of the public URL), when
    /// `PORTA_PREVIEW_DOMAIN` is set.
    pub fn preview_base(&self) -> Option<String> {
        let domain = self.preview_domain.as_deref()?.trim().to_ascii_lowercase();
        Some(format!("{}://{domain}", if self.is_https() { "https" } else { "http" }))
    }

    /// Whether the public URL is https (cookies then get `Secure`).
    pub fn is_https(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }
}

/// `scheme://host[:port]` of an http(s) URL, lower-cased, without a default port or path;
/// `None` for anything else (including the literal `null`).
pub fn normalize_origin(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return None;
    }
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

/// A preview domain is a DNS name (perhaps with a port): names under it are previews' and
/// never Porta's. It may be Porta's own host (previews at `*.porta.example.com`).
fn valid_preview_domain(domain: &str) -> Result<(), String> {
    let domain = domain.trim().to_ascii_lowercase();
    let (host, port) = match domain.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain.as_str(), None),
    };
    if port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
        return Err("its port must be a number from 1 to 65535".into());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.is_empty() || host.len() > 200 || !host.split('.').all(label_ok) {
        return Err("write a DNS name such as preview.example.com, without a scheme or a path".into());
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() || host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err("previews need a DNS name (with a wildcard record), not an address".into());
    }
    Ok(())
}

/// The origins browsers may connect from.
#[derive(Debug, Clone)]
pub struct Origins(Vec<String>);

impl Origins {
    pub fn new(list: impl IntoIterator<Item = String>) -> Self {
        Self(list.into_iter().filter_map(|o| normalize_origin(&o)).collect())
    }

    pub fn allows(&self, origin: &str) -> bool {
        normalize_origin(origin).is_some_and(|o| self.0.contains(&o))
    }

    pub fn list(&self) -> &[String] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration these flags (after `porta`) give.
    fn parse(args: &[&str]) -> Config {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        use clap::Parser as _;
        Cli::parse_from(["porta"].iter().chain(args)).config
    }

    #[test]
    fn a_database_url_is_sqlite_or_postgres_and_its_password_is_never_repeated() {
        let config = |url: &str| parse(&["--database-url", url]);
        for good in ["sqlite://./data/porta.db", "sqlite::memory:", "postgres://porta:pw@db/porta", "postgresql://db/p"]
        {
            assert_eq!(config(good).validate(), Ok(()), "{good}");
        }
        let bad = config("mysql://root:hunter2@db/porta").validate().expect_err("refused");
        assert!(bad.contains("sqlite://") && bad.contains("postgres://") && !bad.contains("hunter2"), "{bad}");
    }

    #[test]
    fn replicas_need_postgres_and_the_same_keys_everywhere() {
        let config = parse;
        let keys = ["--jwt-secret", "a-shared-signing-key-of-32-bytes-or-more!", "--secrets-key", &"ab".repeat(32)];
        let on_sqlite = config(&["--redis-url", "redis://r:6379", keys[0], keys[1], keys[2], keys[3]]);
        assert!(on_sqlite.validate().expect_err("refused").contains("postgres://"));
        let pg = ["--redis-url", "redis://r:6379", "--database-url", "postgres://db/p"];
        assert!(config(&pg).validate().expect_err("refused").contains("PORTA_JWT_SECRET"));
        let all: Vec<&str> = pg.iter().chain(keys.iter()).copied().collect();
        assert_eq!(config(&all).validate(), Ok(()));
        let not_redis = config(&["--redis-url", "http://r:6379"]).validate().expect_err("refused");
        assert!(not_redis.contains("redis://"), "{not_redis}");
    }

    #[test]
    fn a_bad_trusted_proxy_list_stops_the_start_with_what_to_fix() {
        let config = |list: &str| parse(&["--trusted-proxies", list]);
        assert_eq!(config("10.0.0.0/8,192.168.1.7,fd00::/8").validate(), Ok(()));
        let bad = config("10.0.0.0/8,caddy").validate().expect_err("refused");
        assert!(bad.contains("PORTA_TRUSTED_PROXIES") && bad.contains("\"caddy\""), "{bad}");
    }

    #[test]
    fn normalizes_origins() {
        assert_eq!(normalize_origin("HTTP://Example.com:80/x").as_deref(), Some("http://example.com"));
        assert_eq!(normalize_origin("https://a.b:443").as_deref(), Some("https://a.b"));
        assert_eq!(normalize_origin("http://127.0.0.1:8111").as_deref(), Some("http://127.0.0.1:8111"));
        assert_eq!(normalize_origin("null"), None);
        assert_eq!(normalize_origin("example.com"), None);
        assert_eq!(normalize_origin("ftp://example.com"), None);
        assert_eq!(normalize_origin("http://user@evil.com"), None);
    }

    #[test]
    fn a_preview_domain_is_a_dns_name_of_its_own() {
        for good in ["preview.example.com", "porta.localhost:8080", "Preview.Example.COM"] {
            assert_eq!(valid_preview_domain(good), Ok(()), "{good}");
        }
        for bad in ["https://preview.example.com", "preview.example.com/x", "10.0.0.1", "-a.example", "a..b", "x:0", ""]
        {
            assert!(valid_preview_domain(bad).is_err(), "{bad}");
        }
        // Beside Porta: not over its own host, and over plain http only on this machine.
        let beside = |domain: &str, public: &[&str]| {
            let mut args = vec!["--preview-domain", domain];
            args.extend_from_slice(public);
            parse(&args).validate()
        };
        assert_eq!(beside("porta.example.com", &["--public-url", "https://porta.example.com"]), Ok(()));
        assert_eq!(beside("porta.localhost:8080", &[]), Ok(()));
        assert_eq!(beside("porta.localhost:8080", &["--public-url", "http://porta.localhost:8080"]), Ok(()));
        let under = beside("example.com", &["--public-url", "https://porta.example.com"]);
        assert!(under.is_err_and(|e| e.contains("would be taken for a preview")));
        let plain = beside("porta.example.com", &["--public-url", "http://porta.example.com"]);
        assert!(plain.is_err_and(|e| e.contains("need Porta on https")));
        let c = parse(&["--preview-domain", "Preview.Example.com", "--public-url", "https://porta.example.com"]);
        assert_eq!(c.preview_base().as_deref(), Some("https://preview.example.com"));
        assert_eq!(parse(&[]).preview_base(), None);
    }

    #[test]
    fn only_exact_origins_pass() {
        let o = Origins::new(["https://ide.example.com".to_string(), "http://127.0.0.1:8111".to_string()]);
        assert!(o.allows("https://ide.example.com"));
        assert!(o.allows("https://IDE.example.com:443"));
        for evil in [
            "https://ide.example.com.evil.com",
            "https://evil.com",
            "http://ide.example.com",
            "https://ide.example.com:8443",
            "http://127.0.0.1:8112",
            "null",
            "ide.example.com",
            "",
        ] {
            assert!(!o.allows(evil), "{evil} must be refused");
        }
    }
}
