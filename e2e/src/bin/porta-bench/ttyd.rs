//! ttyd 1.7.7 (C, libwebsockets, one hop: browser → ttyd → PTY), the web terminal the relay
//! is measured beside in the same run. Built from source into the target folder by
//! `cargo xtask bench` and named by `PORTA_BENCH_TTYD`; a benchmark peer, never part of Porta.
//!
//! Its protocol (subprotocol `tty`): the client's first message is JSON with the size, then
//! `0`+bytes is input; the server sends `0`+bytes of output (and `1`, `2` for the title and
//! preferences). Each connection gets its own shell.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::relay::{KEEP_AT_MOST, Term};

/// A ttyd server on loopback serving `bash --noprofile --norc` with the prompt `$ `.
pub(crate) struct Ttyd {
    child: Child,
    port: u16,
}

impl Ttyd {
    pub(crate) async fn start(bin: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(bin)
            .args(["--writable", "--interface", "127.0.0.1", "--port", &port.to_string(), "--"])
            .args(["/bin/bash", "--noprofile", "--norc"])
            .env("PS1", "$ ")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let ttyd = Self { child, port };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if tokio::time::Instant::now() > deadline {
                bail!("ttyd never listened on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(ttyd)
    }

    /// Its page, for a browser.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A terminal: one WebSocket, one shell, 120×40.
    pub(crate) async fn open(&self) -> anyhow::Result<TtydTerm> {
        let mut req = format!("ws://127.0.0.1:{}/ws", self.port).into_client_request()?;
        req.headers_mut().insert("sec-websocket-protocol", "tty".parse()?);
        // Without Nagle, as a browser and the Porta client connect.
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true).await?;
        ws.send(Message::binary(br#"{"AuthToken":"","columns":120,"rows":40}"#.to_vec())).await?;
        Ok(TtydTerm { ws, output: Vec::new(), keep_output: true, frames: 0, total: 0 })
    }
}

impl Drop for Ttyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One ttyd terminal, read as fast as this process can (ttyd has no acknowledgements: it
/// writes each PTY read to the socket and reads the PTY again once the write is done).
pub(crate) struct TtydTerm {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub(crate) output: Vec<u8>,
    pub(crate) keep_output: bool,
    /// Output messages received, and their bytes.
    pub(crate) frames: u64,
    total: u64,
}

impl TtydTerm {
    pub(crate) async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

impl Term for TtydTerm {
    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let mut msg = Vec::with_capacity(bytes.len() + 1);
        msg.push(b'0');
        msg.extend_from_slice(bytes);
        self.ws.send(Message::binary(msg)).await?;
        Ok(())
    }

    async fn more(&mut self, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .context("timed out waiting for ttyd")?
                .context("ttyd closed the socket")??;
            match msg {
                Message::Binary(b) if b.first() == Some(&b'0') => {
                    self.frames += 1;
                    self.total += b.len() as u64 - 1;
                    if self.keep_output {
                        self.output.extend_from_slice(&b[1..]);
                        if self.output.len() > 2 * KEEP_AT_MOST {
                            self.output.drain(..self.output.len() - KEEP_AT_MOST);
                        }
                    }
                    return Ok(());
                }
                Message::Close(f) => bail!("ttyd closed the socket: {f:?}"),
                _ => {}
            }
        }
    }

    fn keep_nothing(&mut self) {
        self.keep_output = false;
    }

    fn received(&self) -> &[u8] {
        &self.output
    }

    fn total(&self) -> u64 {
        self.total
    }
}
