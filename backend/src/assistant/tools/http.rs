//! `http_get` and `http_request`: an HTTP request to a port on the server itself (the app a
//! person previews, a health endpoint, a local API), carried by the server's bridge as a
//! preview is (see `crate::previews::proxy`): no port is opened. A GET only reads and needs
//! no approval (but, as it reaches whatever listens there, a developer's role and the
//! terminal scope); any other method is judged by the workspace's command policy as the
//! `curl` command it amounts to, and waits for the person's approval unless allowed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine as _;
use futures_util::StreamExt as _;
use porta_shared::{ErrorBody, ErrorCode};
use serde::Serialize;

use super::Assistant;
use crate::previews::proxy::{Forwarded, Joined, Target};

/// The most of an answer's body handed back.
pub const KEEP_BODY: usize = 64 * 1024;
/// The largest body a request may send.
pub const MAX_REQUEST_BODY: usize = 1 << 20;
/// How long a request may take, answer included.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Methods an `http_request` may use (GET has `http_get`).
pub const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// What the app answered.
#[derive(Debug, Clone, Serialize)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    /// Text when it is UTF-8, else base64.
    pub body: String,
    /// `utf-8` or `base64`.
    pub encoding: &'static str,
    /// Whether the body went on past what is kept ([`KEEP_BODY`]).
    pub truncated: bool,
    pub took_ms: u64,
}

/// A call's request, read from its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub port: u16,
    pub method: String,
    /// The path and query, from `/`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

fn bad(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, msg)
}

impl Call {
    /// Reads `args` for `tool` (`http_get` is always a GET).
    pub fn from_args(tool: &str, args: &serde_json::Value) -> Result<Self, ErrorBody> {
        let port = args["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the argument \"port\" must be a port on the server (1 to 65535)"))?;
        let path = args["path"].as_str().unwrap_or("/").to_owned();
        if !path.starts_with('/') || path.starts_with("//") || path.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad("the argument \"path\" must start with one / and hold no spaces"));
        }
        let method = if tool == "http_get" {
            "GET".to_owned()
        } else {
            let m = args["method"].as_str().unwrap_or("GET").to_ascii_uppercase();
            if !METHODS.contains(&m.as_str()) {
                return Err(bad(format!("the method {m:?} is not one of {}", METHODS.join(", "))));
            }
            m
        };
        let mut headers = Vec::new();
        if let Some(map) = args["headers"].as_object() {
            for (k, v) in map {
                let v = v.as_str().ok_or_else(|| bad(format!("the header {k:?} must be a string")))?;
                headers.push((k.clone(), v.to_owned()));
            }
        }
        let body = args["body"].as_str().map(str::to_owned);
        if body.as_ref().is_some_and(|b| b.len() > MAX_REQUEST_BODY) {
            return Err(bad(format!("a request's body is at most {MAX_REQUEST_BODY} bytes")));
        }
        Ok(Self { port, method, path, headers, body })
    }

    /// The command the workspace's policy judges it as.
    pub fn command_line(&self) -> String {
        format!("curl -X {} http://127.0.0.1:{}{}", self.method, self.port, self.path)
    }
}

/// Sends the call to its port on `server` and reads the answer.
pub async fn send(ai: &Assistant, server: &str, call: Call) -> Result<HttpAnswer, ErrorBody> {
    let started = Instant::now();
    let method = Method::from_bytes(call.method.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let mut req = Request::builder().method(method).uri(call.path.as_str());
    for (k, v) in &call.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req =
        req.body(call.body.map_or_else(Body::empty, Body::from)).map_err(|e| bad(format!("a bad request: {e}")))?;
    let target = Target { server: server.to_owned(), port: call.port };
    let host = format!("127.0.0.1:{}", call.port);
    let fwd = Forwarded { host, proto: "http", client: std::net::Ipv4Addr::LOCALHOST.into(), prefix: None };
    let asked = async {
        let resp = ai.http.send(&target, &fwd, req, Joined::default()).await.map_err(|e| match e {
            crate::previews::proxy::ProxyError::Open(body) => body,
            other => ErrorBody::new(ErrorCode::Io, other.to_string()),
        })?;
        let (parts, body) = resp.into_parts();
        let (kept, truncated) = read_some(body, KEEP_BODY).await;
        Ok::<_, ErrorBody>((parts, kept, truncated))
    };
    let (parts, kept, truncated) = tokio::time::timeout(TIMEOUT, asked).await.map_err(|_| {
        ErrorBody::new(ErrorCode::Timeout, format!("port {} did not answer within {TIMEOUT:?}", call.port))
    })??;
    let headers = parts
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
        .collect();
    let (body, encoding) = match String::from_utf8(kept) {
        Ok(text) => (text, "utf-8"),
        Err(e) => (base64::engine::general_purpose::STANDARD.encode(e.as_bytes()), "base64"),
    };
    let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(HttpAnswer { status: parts.status.as_u16(), headers, body, encoding, truncated, took_ms })
}

/// Up to `keep` bytes of `body`, and whether it had more (the rest is not read).
async fn read_some(body: Body, keep: usize) -> (Vec<u8>, bool) {
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        let room = keep - kept.len();
        if chunk.len() > room {
            kept.extend_from_slice(&chunk[..room]);
            return (kept, true);
        }
        kept.extend_from_slice(&chunk);
    }
    (kept, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calls_are_read_from_their_arguments_and_bad_ones_say_why() {
        let get = Call::from_args("http_get", &json!({ "port": 5173, "path": "/health?x=1" })).unwrap();
        assert_eq!((get.port, get.method.as_str(), get.path.as_str()), (5173, "GET", "/health?x=1"));
        let post = Call::from_args(
            "http_request",
            &json!({ "port": 80, "method": "post", "path": "/api", "headers": { "content-type": "application/json" }, "body": "{}" }),
        )
        .unwrap();
        assert_eq!(post.method, "POST");
        assert_eq!(post.headers, [("content-type".to_owned(), "application/json".to_owned())]);
        assert_eq!(post.command_line(), "curl -X POST http://127.0.0.1:80/api");
        let defaulted = Call::from_args("http_request", &json!({ "port": 80 })).unwrap();
        assert_eq!((defaulted.method.as_str(), defaulted.path.as_str()), ("GET", "/"));
        for (args, why) in [
            (json!({}), "port"),
            (json!({ "port": 0 }), "port"),
            (json!({ "port": 70000 }), "port"),
            (json!({ "port": 80, "path": "x" }), "path"),
            (json!({ "port": 80, "path": "//evil.example/" }), "path"),
            (json!({ "port": 80, "path": "/a b" }), "path"),
            (json!({ "port": 80, "method": "CONNECT" }), "method"),
            (json!({ "port": 80, "headers": { "x": 1 } }), "header"),
        ] {
            let e = Call::from_args("http_request", &args).unwrap_err();
            assert!(e.message.contains(why), "{args}: {}", e.message);
        }
    }
}
