//! A web app as people run on their servers, for previews: pages that show what they were
//! asked (headers, path), a redirect, a large download, an upload that is hashed, and a
//! WebSocket echo (what dev servers' hot reload uses). It listens on this machine's
//! loopback, where the test's bridge runs.

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Request};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

/// A running app; stopped when dropped.
pub struct WebApp {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The bytes `/bytes/<n>` answers: a pattern anyone can compute again.
pub fn pattern(n: usize) -> impl Iterator<Item = u8> {
    (0..n).map(|i| (i % 251) as u8)
}

impl WebApp {
    /// Listens on `address` (`127.0.0.1:0`, `[::1]:0`, …).
    pub async fn start(address: &str) -> anyhow::Result<Self> {
        let app = Router::new()
            .route("/", get(|h: HeaderMap, req: Request| async move { echo(&h, &req) }))
            .route("/echo/{*rest}", any(|h: HeaderMap, req: Request| async move { echo(&h, &req) }))
            .route("/redirect", get(|| async { Redirect::to("/landed?from=redirect") }))
            .route("/landed", get(|| async { "landed" }))
            .route("/small", get(|| async { "ok" }))
            // A page as an app that assumes it is served at `/` writes it: its logo from the root.
            .route(
                "/rooted",
                get(|| async {
                    axum::response::Html("<!doctype html><img src=\"/favicon.svg\" alt=\"logo\"><h1>rooted</h1>")
                }),
            )
            .route("/bytes/{n}", get(|Path(n): Path<usize>| async move { bytes(n) }))
            .route("/upload", post(upload))
            .route("/ws", get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(echo_socket) }));
        let listener = tokio::net::TcpListener::bind(address).await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { port, task })
    }
}

/// The request as the app saw it, as JSON: path, query, and the headers.
fn echo(h: &HeaderMap, req: &Request) -> Response {
    let headers: serde_json::Map<String, serde_json::Value> =
        h.iter().map(|(k, v)| (k.as_str().to_owned(), serde_json::Value::from(v.to_str().unwrap_or("?")))).collect();
    let body = serde_json::json!({
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": req.uri().query(),
        "headers": headers,
    });
    ([("content-type", "application/json"), ("set-cookie", "app_session=1; Path=/")], body.to_string()).into_response()
}

/// `n` bytes of [`pattern`], streamed in 64 KiB pieces.
fn bytes(n: usize) -> Response {
    const PIECE: usize = 64 * 1024;
    let pieces = futures_util::stream::iter((0..n).step_by(PIECE).map(move |start| {
        let end = (start + PIECE).min(n);
        Ok::<_, std::io::Error>(bytes::Bytes::from((start..end).map(|i| (i % 251) as u8).collect::<Vec<u8>>()))
    }));
    ([("content-length", n.to_string())], Body::from_stream(pieces)).into_response()
}

/// Reads the whole body as it streams in: its length and SHA-256.
async fn upload(req: Request) -> String {
    let mut stream = req.into_body().into_data_stream();
    let (mut hasher, mut len) = (Sha256::new(), 0usize);
    while let Some(Ok(chunk)) = stream.next().await {
        len += chunk.len();
        hasher.update(&chunk);
    }
    format!("{len} {}", hex::encode(hasher.finalize()))
}

async fn echo_socket(mut ws: WebSocket) {
    while let Some(Ok(msg)) = ws.recv().await {
        let reply = match msg {
            Message::Text(t) => Message::Text(format!("echo: {t}").into()),
            Message::Binary(b) => Message::Binary(b),
            Message::Close(_) => break,
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            break;
        }
    }
}
