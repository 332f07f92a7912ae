//! Reverse proxies in front of the previews' web app: the peers a preview is measured beside
//! in the same run. One proxy is one HTTP hop (client → proxy → app); two chained proxies are
//! as many hops as a preview (client → backend → bridge → app), each an HTTP/1.1 proxy with
//! keep-alive connections onward. nginx (C) and Caddy (Go) as Debian ships them, named by
//! `PORTA_BENCH_NGINX` and `PORTA_BENCH_CADDY` (`cargo xtask bench` unpacks them into the
//! target folder); benchmark peers, never part of Porta. Everything they write stays in a
//! temporary folder.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// Which proxy.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Nginx,
    Caddy,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Caddy => "Caddy",
        }
    }

    /// The program, when the bench was given it.
    pub(crate) fn bin(self) -> Option<PathBuf> {
        let var = match self {
            Self::Nginx => "PORTA_BENCH_NGINX",
            Self::Caddy => "PORTA_BENCH_CADDY",
        };
        std::env::var_os(var).map(PathBuf::from)
    }

    /// Its configuration for a plain proxy from `port` to `to`: no access log, keep-alive
    /// connections to the app, as many workers as the machine has cores.
    fn config(self, port: u16, to: u16, dir: &Path) -> String {
        match self {
            Self::Nginx => {
                let d = dir.display();
                format!(
                    "worker_processes auto;\ndaemon off;\npid {d}/nginx-{port}.pid;\nerror_log {d}/error-{port}.log;\n\
                     events {{ worker_connections 1024; }}\n\
                     http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
                     fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
                     upstream app {{ server 127.0.0.1:{to}; keepalive 32; }}\n\
                     server {{\n  listen 127.0.0.1:{port};\n  location / {{\n   proxy_pass http://app;\n\
                     proxy_http_version 1.1;\n   proxy_set_header Connection \"\";\n  }}\n }}\n}}\n"
                )
            }
            Self::Caddy => format!(
                "{{\n\tadmin off\n\tauto_https off\n}}\nhttp://127.0.0.1:{port} {{\n\tbind 127.0.0.1\n\treverse_proxy 127.0.0.1:{to}\n}}\n"
            ),
        }
    }

    fn command(self, bin: &Path, config: &Path, dir: &Path) -> Command {
        let mut cmd = Command::new(bin);
        match self {
            Self::Nginx => {
                cmd.arg("-p").arg(dir).arg("-c").arg(config).args(["-e", "stderr"]);
            }
            Self::Caddy => {
                cmd.args(["run", "--adapter", "caddyfile", "--config"]).arg(config);
                cmd.env("HOME", dir).env("XDG_DATA_HOME", dir).env("XDG_CONFIG_HOME", dir);
            }
        }
        cmd
    }
}

/// Proxies chained in front of a port: the first one listens for the client.
pub(crate) struct Chain {
    procs: Vec<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Chain {
    /// `hops` proxies, the last to `127.0.0.1:<app>`, each to the next.
    pub(crate) async fn start(kind: Kind, bin: &Path, app: u16, hops: usize) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut chain = Self { procs: Vec::new(), port: app, _dir: dir };
        for _ in 0..hops {
            let dir = chain._dir.path();
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let config = dir.join(format!("proxy-{port}.conf"));
            std::fs::write(&config, kind.config(port, chain.port, dir))?;
            let child = kind
                .command(bin, &config, dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("cannot start {}", bin.display()))?;
            chain.procs.push(child);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                if let Some(Ok(Some(status))) = chain.procs.last_mut().map(Child::try_wait) {
                    bail!("{} exited at once ({status})", kind.name());
                }
                if tokio::time::Instant::now() > deadline {
                    bail!("{} never listened on port {port}", kind.name());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            chain.port = port;
        }
        Ok(chain)
    }

    /// The first proxy's address.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        for child in &mut self.procs {
            // TERM, not KILL: nginx's master stops its workers only when asked. KILL after
            // a few seconds all the same.
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
