//! A client that plays the browser: REST + GraphQL over HTTP, and the `/api/ws` stream
//! socket with acknowledgements, exactly as the UI will use them. GraphQL subscriptions are
//! in [`crate::subscription`].

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::{FutureExt as _, SinkExt, StreamExt};
use porta_shared::api::{AuthResponse, WsTicket};
use porta_shared::client::{ClientEvent, ClientRequest};
use porta_shared::envelope::Request;
use porta_shared::frame::{Frame, FrameKind};
use porta_shared::types::StreamId;
use porta_shared::{Envelope, ErrorBody, ErrorCode, Incoming, Reply};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The HTTP side, signed in.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub access: String,
    /// The `porta_refresh=…` pair from the last sign-in or refresh.
    pub refresh_cookie: Option<String>,
}

/// A PEM file of extra certificate authorities the clients trust (`PORTA_E2E_CA_FILE`): the
/// load balancer's own CA when a test runs through one (`cargo xtask compose-test`).
fn extra_ca() -> Option<&'static str> {
    static CA: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    CA.get_or_init(|| std::env::var_os("PORTA_E2E_CA_FILE").and_then(|f| std::fs::read_to_string(f).ok())).as_deref()
}

/// An HTTP client as a browser that trusts [`extra_ca`] has.
pub fn http() -> reqwest::Client {
    let mut builder = reqwest::Client::builder();
    if let Some(cert) = extra_ca().and_then(|pem| reqwest::Certificate::from_pem(pem.as_bytes()).ok()) {
        builder = builder.add_root_certificate(cert);
    }
    builder.build().unwrap_or_default()
}

/// The TLS a socket uses: the built-in roots, and [`extra_ca`].
fn tls() -> Option<tokio_tungstenite::Connector> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    porta_bridge::tls::trust(extra_ca()).ok().flatten().map(tokio_tungstenite::Connector::Rustls)
}

fn refresh_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("porta_refresh=") || v.starts_with("__Host-porta_refresh="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

impl Api {
    pub async fn post_login(base: &str, username: &str, password: &str) -> anyhow::Result<reqwest::Response> {
        Ok(http()
            .post(format!("{base}/api/auth/login"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await?)
    }

    /// Calls as a program holding an API token (sent as a bearer token), not as a person.
    pub fn with_token(base: &str, token: &str) -> Self {
        Self { base: base.to_owned(), http: http(), access: token.to_owned(), refresh_cookie: None }
    }

    pub async fn login(base: &str, username: &str, password: &str) -> anyhow::Result<Self> {
        let resp = Self::post_login(base, username, password).await?;
        Self::signed_in(base, resp, "login").await
    }

    /// The session a sign-in response (`AuthResponse` + refresh cookie) opened.
    async fn signed_in(base: &str, resp: reqwest::Response, what: &str) -> anyhow::Result<Self> {
        if !resp.status().is_success() {
            bail!("{what} failed: {} {}", resp.status(), resp.text().await.unwrap_or_default());
        }
        let cookie = refresh_cookie(&resp);
        let auth: AuthResponse = resp.json().await?;
        Ok(Self { base: base.to_owned(), http: http(), access: auth.access_token, refresh_cookie: cookie })
    }

    /// An invitation link to this user's team `team_id` with `role` (via GraphQL).
    pub async fn invite(&self, team_id: &str, role: &str) -> anyhow::Result<String> {
        let q = "mutation($t: String!, $r: String!) { createInvitation(teamId: $t, role: $r) { link } }";
        let v = self.graphql(q, json!({ "t": team_id, "r": role })).await?;
        v["data"]["createInvitation"]["link"].as_str().map(str::to_owned).with_context(|| format!("invite: {v}"))
    }

    /// The id of the first team this user owns.
    pub async fn own_team(&self) -> anyhow::Result<String> {
        let v = self.graphql("{ teams { id role } }", json!({})).await?;
        let teams = v["data"]["teams"].as_array().with_context(|| format!("teams: {v}"))?;
        teams
            .iter()
            .find(|t| t["role"] == "owner")
            .and_then(|t| t["id"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("no team owned: {v}"))
    }

    /// Makes an account through an invitation link (as a person who is not signed in) and
    /// returns it signed in.
    pub async fn join_by_link(base: &str, link: &str, username: &str, password: &str) -> anyhow::Result<Self> {
        let resp = Self::accept_link(base, link, None, Some((username, password))).await?;
        Self::signed_in(base, resp, "joining").await
    }

    /// `POST /api/invitations/{token}/accept` for the link, signed in with `access` or making
    /// an account with `creds`.
    pub async fn accept_link(
        base: &str,
        link: &str,
        access: Option<&str>,
        creds: Option<(&str, &str)>,
    ) -> anyhow::Result<reqwest::Response> {
        let token = link.rsplit('/').next().unwrap_or_default();
        let mut req = http().post(format!("{base}/api/invitations/{token}/accept"));
        if let Some(a) = access {
            req = req.bearer_auth(a);
        }
        if let Some((u, p)) = creds {
            req = req.json(&json!({ "username": u, "password": p }));
        }
        Ok(req.send().await?)
    }

    /// `POST /api/auth/refresh` with `cookie`; on success the new tokens replace ours.
    pub async fn refresh_with(&mut self, cookie: &str) -> anyhow::Result<reqwest::StatusCode> {
        let resp = self
            .http
            .post(format!("{}/api/auth/refresh", self.base))
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await?;
        let status = resp.status();
        if status.is_success() {
            self.refresh_cookie = refresh_cookie(&resp);
            self.access = resp.json::<AuthResponse>().await?.access_token;
        }
        Ok(status)
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> anyhow::Result<reqwest::Response> {
        Ok(self.http.get(format!("{}{path}", self.base)).bearer_auth(token).send().await?)
    }

    pub async fn graphql(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(format!("{}/graphql", self.base))
            .bearer_auth(&self.access)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?;
        Ok(resp.json().await?)
    }

    pub async fn servers(&self) -> anyhow::Result<Vec<Value>> {
        let v = self.graphql("{ servers { id name online os arch hostname lastSeenMs } }", json!({})).await?;
        v["data"]["servers"].as_array().cloned().with_context(|| format!("bad servers reply: {v}"))
    }

    /// Waits until the first server's `online` is `online`; returns its id.
    pub async fn wait_server_online(&self, online: bool, within: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let servers = self.servers().await?;
            if let Some(s) = servers.first() {
                if s["online"].as_bool() == Some(online) {
                    return Ok(s["id"].as_str().unwrap_or_default().to_owned());
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!("server never became online={online}: {servers:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn ticket(&self) -> anyhow::Result<String> {
        let resp = self.http.post(format!("{}/api/ws/ticket", self.base)).bearer_auth(&self.access).send().await?;
        if !resp.status().is_success() {
            bail!("ticket: {}", resp.status());
        }
        Ok(resp.json::<WsTicket>().await?.ticket)
    }

    pub fn ws_url(&self, ticket: &str) -> String {
        let base = self.base.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
        format!("{base}/api/ws?ticket={ticket}")
    }

    /// Opens a stream socket as a page of this origin would.
    pub async fn ws(&self) -> anyhow::Result<Ws> {
        let ticket = self.ticket().await?;
        Ok(Ws::connect(&self.ws_url(&ticket), Some(&self.base)).await?)
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Keeps `socket` talking (a ping every 300 ms) while nothing reads it, as a peer whose TCP
/// still answers but whose program is frozen; the task ends when sending fails. The half
/// nobody reads is returned: keep it for as long as the peer should stay connected.
pub fn ping_without_reading<S>(
    socket: WebSocketStream<S>,
) -> (tokio::task::JoinHandle<()>, futures_util::stream::SplitStream<WebSocketStream<S>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut talking, not_read) = socket.split();
    let task = tokio::spawn(async move {
        while talking.send(Message::Ping(Default::default())).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    (task, not_read)
}

/// The browser's stream socket.
pub struct Ws {
    ws: Socket,
    next_id: u64,
    /// Output bytes received per stream, in order.
    pub output: HashMap<StreamId, Vec<u8>>,
    /// Next offset expected per stream.
    pub next: HashMap<StreamId, u64>,
    /// Frames that did not continue where the previous one ended (without a gap frame).
    pub discontinuities: Vec<String>,
    /// Gap frames received: (stream, first lost offset, resumed offset).
    pub gaps: Vec<(StreamId, u64, u64)>,
    pub events: Vec<ClientEvent>,
    /// Error replies without an id (refused frames).
    pub errors: Vec<ErrorBody>,
    /// Acknowledge output as it arrives (a browser that renders instantly): every 32 KiB.
    pub auto_ack: bool,
    /// Also acknowledge everything held whenever nothing more is waiting on the socket, as
    /// the page does when xterm.js has written all it was given: a fast client's view.
    pub ack_when_idle: bool,
    /// Text messages that are neither replies nor browser events (e.g. a hub's `welcome`).
    pub unknown: Vec<String>,
    /// Offset last acknowledged per stream.
    acked: HashMap<StreamId, u64>,
    /// Keep output bytes in [`Ws::output`] (off for a flood nobody reads).
    pub keep_output: bool,
    /// Keep only about the newest this many bytes of each stream's output (a reader that
    /// looks for a marker in a flood); [`Ws::next`] still counts them all.
    pub keep_at_most: Option<usize>,
}

/// How much output the client takes before it acknowledges.
const ACK_EVERY: u64 = 32 * 1024;

impl Ws {
    pub async fn connect(url: &str, origin: Option<&str>) -> Result<Self, tungstenite::Error> {
        Self::connect_with(url, origin.map(|o| ("origin", o.to_owned()))).await
    }

    /// A socket to `/bridge/ws` presenting a bridge's credential, as a bridge of any version
    /// (or a forged one) would.
    pub async fn connect_as_bridge(url: &str, credential: &str) -> Result<Self, tungstenite::Error> {
        Self::connect_with(url, Some(("authorization", format!("Bearer {credential}")))).await
    }

    async fn connect_with(url: &str, header: Option<(&'static str, String)>) -> Result<Self, tungstenite::Error> {
        let mut req = url.into_client_request()?;
        if let Some((name, value)) = header {
            req.headers_mut().insert(
                name,
                value.parse().map_err(|_| tungstenite::Error::Url(tungstenite::error::UrlError::NoHostName))?,
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(req, None, true, tls()).await?;
        Ok(Self::over(ws))
    }

    /// A socket (plain `ws://`) whose receive buffer is 4 KiB: a client that stops reading
    /// then holds almost nothing, so what the backend sends waits in its own send.
    pub async fn connect_with_small_buffer(url: &str) -> anyhow::Result<Self> {
        let req = url.into_client_request()?;
        let uri = req.uri();
        let addr = format!("{}:{}", uri.host().context("no host")?, uri.port_u16().context("no port")?);
        let addr = tokio::net::lookup_host(addr).await?.next().context("no address")?;
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_recv_buffer_size(4096)?;
        let tcp = socket.connect(addr).await?;
        let (ws, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp)).await?;
        Ok(Self::over(ws))
    }

    /// The socket itself, for a test that drives it by hand from here on.
    pub fn into_socket(self) -> Socket {
        self.ws
    }

    fn over(ws: Socket) -> Self {
        Self {
            ws,
            next_id: 1,
            output: HashMap::new(),
            next: HashMap::new(),
            discontinuities: Vec::new(),
            gaps: Vec::new(),
            events: Vec::new(),
            errors: Vec::new(),
            auto_ack: true,
            unknown: Vec::new(),
            acked: HashMap::new(),
            keep_output: true,
            keep_at_most: None,
            ack_when_idle: false,
        }
    }

    /// Waits until the backend closes the socket; its close code (`None`: no close frame).
    pub async fn wait_closed(&mut self) -> anyhow::Result<Option<u16>> {
        loop {
            match self.ws.next().await {
                None | Some(Err(_)) => return Ok(None),
                Some(Ok(Message::Close(f))) => return Ok(f.map(|f| u16::from(f.code))),
                Some(Ok(_)) => {}
            }
        }
    }

    pub async fn send_text(&mut self, text: String) -> anyhow::Result<()> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.ws.send(Message::binary(bytes)).await?;
        Ok(())
    }

    /// Sends a typed request and waits for its typed reply.
    pub async fn call<R>(&mut self, req: R) -> anyhow::Result<Result<R::Response, ErrorBody>>
    where
        R: Request + Into<ClientRequest>,
    {
        let id = self.next_id.to_string();
        self.next_id += 1;
        self.send_text(Envelope::<ClientRequest>::request(id.clone(), req).encode()).await?;
        let reply = self.wait_reply(&id, Duration::from_secs(30)).await?;
        Ok(reply.into_response::<R>())
    }

    /// Sends raw text and waits for the reply carrying `id`.
    pub async fn call_raw(&mut self, text: String, id: &str) -> anyhow::Result<Reply> {
        self.send_text(text).await?;
        self.wait_reply(id, Duration::from_secs(30)).await
    }

    pub async fn wait_reply(&mut self, id: &str, within: Duration) -> anyhow::Result<Reply> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(reply) = self.pump(deadline).await? {
                if reply.id.as_deref() == Some(id) {
                    return Ok(reply);
                }
            }
        }
    }

    /// Waits for the replies to several requests sent at once, in whatever order they come.
    pub async fn wait_replies(&mut self, ids: &[String], within: Duration) -> anyhow::Result<HashMap<String, Reply>> {
        let deadline = tokio::time::Instant::now() + within;
        let mut got = HashMap::new();
        while got.len() < ids.len() {
            let reply =
                self.pump(deadline).await.with_context(|| format!("{} of {} replies came", got.len(), ids.len()))?;
            if let Some(r) = reply.filter(|r| r.id.as_ref().is_some_and(|id| ids.contains(id))) {
                got.insert(r.id.clone().unwrap_or_default(), r);
            }
        }
        Ok(got)
    }

    /// Reads one message; returns it if it is a reply, after recording frames and events.
    async fn pump(&mut self, deadline: tokio::time::Instant) -> anyhow::Result<Option<Reply>> {
        let ready = match self.ws.next().now_or_never() {
            Some(ready) => ready,
            None => {
                // Nothing more has come: a fast client has consumed all it holds.
                if self.ack_when_idle && self.auto_ack {
                    self.ack_all().await?;
                }
                tokio::time::timeout_at(deadline, self.ws.next()).await.context("timed out waiting for the backend")?
            }
        };
        let msg = ready.context("the backend closed the socket")??;
        match msg {
            Message::Binary(b) => {
                self.on_frame(&b).await?;
                Ok(None)
            }
            Message::Text(t) => match Incoming::<ClientEvent>::decode(&t) {
                Ok(Incoming::Reply(r)) if r.id.is_none() => {
                    if let Err(e) = r.result {
                        self.errors.push(e);
                    }
                    Ok(None)
                }
                Ok(Incoming::Reply(r)) => Ok(Some(r)),
                Ok(Incoming::Message(env)) => {
                    self.events.push(env.msg);
                    Ok(None)
                }
                Err(_) => {
                    self.unknown.push(t.to_string());
                    Ok(None)
                }
            },
            Message::Close(f) => bail!("the backend closed the socket: {f:?}"),
            _ => Ok(None),
        }
    }

    async fn on_frame(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let f = Frame::decode(bytes)?;
        match f.kind {
            k if k.is_output() => {
                let next = self.next.entry(f.stream).or_insert(f.seq);
                if *next != f.seq {
                    self.discontinuities.push(format!("stream {}: expected {}, got {}", f.stream, next, f.seq));
                }
                *next = f.seq + f.payload.len() as u64;
                let end = *next;
                if self.keep_output {
                    let out = self.output.entry(f.stream).or_default();
                    out.extend_from_slice(f.payload);
                    if let Some(most) = self.keep_at_most.filter(|m| out.len() > 2 * m) {
                        out.drain(..out.len() - most);
                    }
                }
                // Acknowledge in batches, as a renderer does; well below the window, so the
                // stream never waits on us.
                let acked = *self.acked.entry(f.stream).or_insert(f.seq);
                if self.auto_ack && end - acked >= ACK_EVERY {
                    self.ack(f.stream, end).await?;
                }
            }
            FrameKind::Gap => {
                self.gaps.push((f.stream, f.gap_from().unwrap_or(0), f.seq));
                self.next.insert(f.stream, f.seq);
            }
            other => bail!("the backend sent a {other:?} frame"),
        }
        Ok(())
    }

    /// Acknowledges every stream's output received so far.
    async fn ack_all(&mut self) -> anyhow::Result<()> {
        let behind: Vec<(StreamId, u64)> = self
            .next
            .iter()
            .filter(|(s, end)| self.acked.get(s).is_some_and(|a| a < end))
            .map(|(s, e)| (*s, *e))
            .collect();
        if behind.is_empty() {
            return Ok(());
        }
        for (stream, end) in behind {
            self.acked.insert(stream, end);
            self.ws.feed(Message::binary(Frame::new(FrameKind::Ack, stream, end, &[]).encode())).await?;
        }
        self.ws.flush().await?;
        Ok(())
    }

    pub async fn ack(&mut self, stream: StreamId, offset: u64) -> anyhow::Result<()> {
        self.acked.insert(stream, offset);
        self.send_binary(Frame::new(FrameKind::Ack, stream, offset, &[]).encode()).await
    }

    pub async fn input(&mut self, stream: StreamId, bytes: &[u8]) -> anyhow::Result<()> {
        self.send_binary(Frame::new(FrameKind::TermInput, stream, 0, bytes).encode()).await
    }

    pub fn text(&self, stream: StreamId) -> String {
        String::from_utf8_lossy(self.output.get(&stream).map_or(&[][..], Vec::as_slice)).into_owned()
    }

    /// Waits until the stream's output contains `needle`; returns all its output.
    pub async fn wait_output(&mut self, stream: StreamId, needle: &str, within: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + within;
        let needle_bytes = needle.as_bytes();
        let mut searched = 0usize;
        loop {
            let out = self.output.get(&stream).map_or(&[][..], Vec::as_slice);
            let from = searched.saturating_sub(needle_bytes.len());
            if out.len() >= needle_bytes.len() && out[from..].windows(needle_bytes.len()).any(|w| w == needle_bytes) {
                return Ok(self.text(stream));
            }
            searched = out.len();
            if let Err(e) = self.pump(deadline).await {
                let text = self.text(stream);
                let tail: String = text.chars().rev().take(400).collect::<Vec<_>>().into_iter().rev().collect();
                bail!("{e:#} while waiting for {needle:?}; output ends with: {tail:?}");
            }
        }
    }

    /// Reads until the stream's output grows; returns the new bytes.
    pub async fn wait_more(&mut self, stream: StreamId, within: Duration) -> anyhow::Result<Vec<u8>> {
        let before = self.output.get(&stream).map_or(0, Vec::len);
        self.wait_grown(stream, within).await?;
        Ok(self.output.get(&stream).map_or(&[][..], Vec::as_slice)[before..].to_vec())
    }

    /// Reads until more of the stream's output has come, kept or not.
    pub async fn wait_grown(&mut self, stream: StreamId, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        let before = self.next.get(&stream).copied();
        loop {
            self.pump(deadline).await?;
            if self.next.get(&stream).copied() != before {
                return Ok(());
            }
        }
    }

    /// Waits for an event matching `pred` (including ones already received).
    pub async fn wait_event(
        &mut self,
        pred: impl Fn(&ClientEvent) -> bool,
        within: Duration,
    ) -> anyhow::Result<ClientEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(i) = self.events.iter().position(&pred) {
                return Ok(self.events.remove(i));
            }
            if let Err(e) = self.pump(deadline).await {
                bail!("{e:#} while waiting for an event; events so far: {:?}", self.events);
            }
        }
    }

    /// Waits for an id-less error reply (the answer to a refused frame).
    pub async fn wait_error(&mut self, within: Duration) -> anyhow::Result<ErrorBody> {
        let deadline = tokio::time::Instant::now() + within;
        while self.errors.is_empty() {
            self.pump(deadline).await?;
        }
        Ok(self.errors.remove(0))
    }

    /// Keeps reading for `d`, recording what arrives.
    pub async fn drain_for(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while self.pump(deadline).await.is_ok() {}
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A `term.open` for the server's default shell at 80×24.
pub fn term_open(server: &str) -> porta_shared::client::TermOpen {
    porta_shared::client::TermOpen {
        server: server.to_owned(),
        shell: None,
        args: vec![],
        cwd: None,
        size: porta_shared::types::TermSize { cols: 80, rows: 24 },
        env: Default::default(),
        container: None,
    }
}

/// True for the error code `code`.
pub fn is_code<T>(r: &Result<T, ErrorBody>, code: ErrorCode) -> bool {
    matches!(r, Err(e) if e.code == code)
}

pub use crate::subscription::Subscription;
