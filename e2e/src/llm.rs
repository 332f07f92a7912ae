//! A scripted OpenAI-compatible model server: `GET /v1/models` and streamed
//! `POST /v1/chat/completions`, answering each request with the next reply of its script
//! (text in pieces at a pace, tool calls, or an error) and keeping every request it got,
//! headers included, for the test to read. It stands in for Ollama or OpenAI, which are
//! outside our control; Porta's provider code is the same either way.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// One answer of the script.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Text sent in these pieces, `pace` apart.
    Text { pieces: Vec<String>, pace: Duration },
    /// Tool calls: (id, name, arguments).
    Tools(Vec<(String, String, Value)>),
    /// An HTTP error with this message.
    Error(u16, String),
}

impl Reply {
    /// `text` in pieces of about `size` characters, `pace` apart.
    pub fn text(text: &str, size: usize, pace: Duration) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let pieces = chars.chunks(size.max(1)).map(|c| c.iter().collect()).collect();
        Self::Text { pieces, pace }
    }

    pub fn tool(id: &str, name: &str, args: Value) -> Self {
        Self::Tools(vec![(id.to_owned(), name.to_owned(), args)])
    }
}

/// A request the server got.
#[derive(Debug, Clone)]
pub struct Request {
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Request>>,
}

pub struct ScriptedLlm {
    /// The base URL to give Porta, ending in `/v1`.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedLlm {
    pub async fn start() -> anyhow::Result<Self> {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1/models", get(models))
            .route("/v1/chat/completions", post(completions))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/v1", listener.local_addr()?);
        // As real model servers do (Go's net/http, uvicorn): small SSE writes go out at once,
        // not held back by Nagle's algorithm until the client's delayed ACK.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, shared, task })
    }

    /// Queues replies, answered in order.
    pub fn push(&self, reply: Reply) {
        self.shared.script.lock().unwrap_or_else(|p| p.into_inner()).push_back(reply);
    }

    /// Every completion request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for ScriptedLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    shared.requests.lock().unwrap_or_else(|p| p.into_inner()).push(Request { authorization, body: Value::Null });
    axum::Json(json!({ "object": "list", "data": [{ "id": "scripted-small" }, { "id": "scripted-large" }] }))
        .into_response()
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let v = json!({ "id": "x", "object": "chat.completion.chunk", "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] });
    format!("data: {v}\n\n")
}

async fn completions(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.requests.lock().unwrap_or_else(|p| p.into_inner()).push(Request { authorization, body });
    let reply = shared.script.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
    let reply = reply.unwrap_or_else(|| Reply::text("(the script is over)", 100, Duration::ZERO));
    let events: Vec<(Duration, String)> = match reply {
        Reply::Error(status, message) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, axum::Json(json!({ "error": { "message": message } }))).into_response();
        }
        Reply::Text { pieces, pace } => {
            let mut events = vec![(Duration::ZERO, chunk(json!({ "role": "assistant", "content": "" }), None))];
            events.extend(pieces.into_iter().map(|p| (pace, chunk(json!({ "content": p }), None))));
            events.push((Duration::ZERO, chunk(json!({}), Some("stop"))));
            events
        }
        Reply::Tools(calls) => {
            let mut events = Vec::new();
            for (i, (id, name, args)) in calls.into_iter().enumerate() {
                let start = json!({ "tool_calls": [{ "index": i, "id": id, "type": "function", "function": { "name": name, "arguments": "" } }] });
                events.push((Duration::ZERO, chunk(start, None)));
                // The arguments in two pieces, as real servers send them.
                let text = args.to_string();
                let (a, b) = text.split_at(text.len() / 2);
                for part in [a, b] {
                    let piece = json!({ "tool_calls": [{ "index": i, "function": { "arguments": part } }] });
                    events.push((Duration::from_millis(5), chunk(piece, None)));
                }
            }
            events.push((Duration::ZERO, chunk(json!({}), Some("tool_calls"))));
            events
        }
    };
    let stream = futures_util::stream::unfold(events.into_iter(), |mut events| async move {
        match events.next() {
            Some((pace, text)) => {
                tokio::time::sleep(pace).await;
                Some((Ok::<_, std::convert::Infallible>(text), events))
            }
            None => None,
        }
    });
    let done = futures_util::stream::once(async { Ok("data: [DONE]\n\n".to_owned()) });
    let body = Body::from_stream(futures_util::StreamExt::chain(stream, done));
    ([("content-type", "text/event-stream"), ("cache-control", "no-cache")], body).into_response()
}
