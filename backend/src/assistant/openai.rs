//! A client for OpenAI-compatible chat endpoints (Ollama, LocalAI, vLLM, llama.cpp's server,
//! OpenAI): the model list and streamed chat completions with tool calls, read from the
//! server-sent events as they come.

use std::time::Duration;

use futures_util::{Stream, StreamExt as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::provider::Provider;

/// How long to wait for a provider to start answering (a local model may be loading).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stream may stay silent before it is given up.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Most bytes of a provider's error body quoted back.
const MAX_ERROR_TEXT: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum AiError {
    #[error("Porta does not connect to {url}: {reason}")]
    Refused { url: String, reason: String },
    #[error("cannot reach the model provider at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the model provider answered {status}: {message}")]
    Provider { status: u16, message: String },
    #[error("the model provider sent something unreadable: {0}")]
    Malformed(String),
    #[error("the model provider went silent for {} s", IDLE_TIMEOUT.as_secs())]
    Silent,
}

/// One message of a conversation, as the provider takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self { role: role.to_owned(), content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }
}

/// A tool call the model made (OpenAI's format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text, as the model wrote it.
    pub arguments: String,
}

/// What a stream carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    /// More of the answer's text.
    Text(String),
    /// The model asks for these tools (gathered from their pieces, at the end).
    ToolCalls(Vec<ToolCall>),
}

/// Talks to providers; one per process (it pools connections), under the egress policy.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    egress: std::sync::Arc<crate::egress::Egress>,
}

impl Client {
    pub fn new(egress: std::sync::Arc<crate::egress::Egress>) -> anyhow::Result<Self> {
        let http = egress.http_client(CONNECT_TIMEOUT)?;
        Ok(Self { http, egress })
    }

    fn request(&self, method: reqwest::Method, p: &Provider, path: &str) -> Result<reqwest::RequestBuilder, AiError> {
        let url = format!("{}{path}", p.base_url);
        let url = self
            .egress
            .check_url(&url)
            .map_err(|e| AiError::Refused { url: p.base_url.clone(), reason: e.to_string() })?;
        let req = self.http.request(method, url);
        Ok(match &p.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        })
    }

    async fn send(&self, p: &Provider, req: reqwest::RequestBuilder) -> Result<reqwest::Response, AiError> {
        let resp = req.send().await.map_err(|e| {
            let reason = crate::egress::reason(&e);
            if crate::egress::refused(&e) {
                AiError::Refused { url: p.base_url.clone(), reason }
            } else {
                AiError::Unreachable { url: p.base_url.clone(), reason }
            }
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Err(AiError::Provider { status, message: provider_message(&text) })
    }

    /// The models the provider offers, by name.
    pub async fn models(&self, p: &Provider) -> Result<Vec<String>, AiError> {
        let req = self.request(reqwest::Method::GET, p, "/models")?.timeout(Duration::from_secs(20));
        let body: Value = self
            .send(p, req)
            .await?
            .json()
            .await
            .map_err(|e| AiError::Malformed(format!("the model list is not JSON: {e}")))?;
        let mut names: Vec<String> = body["data"]
            .as_array()
            .ok_or_else(|| AiError::Malformed("the model list has no `data` array".into()))?
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Streams a chat completion: text as it comes, then tool calls if the model made any.
    pub async fn chat(
        &self,
        p: &Provider,
        messages: &[Message],
        tools: &[Value],
    ) -> Result<impl Stream<Item = Result<Delta, AiError>> + Send + use<>, AiError> {
        let mut body = serde_json::json!({ "model": p.model, "messages": messages, "stream": true });
        if !tools.is_empty() {
            body["tools"] = Value::Array(tools.to_vec());
        }
        let resp = self.send(p, self.request(reqwest::Method::POST, p, "/chat/completions")?.json(&body)).await?;
        let bytes = resp.bytes_stream();
        Ok(deltas(bytes))
    }
}

/// The `error.message` of an OpenAI-style error body. Anything else the server sent is not
/// repeated: an error page of some internal service must not be readable through Porta.
fn provider_message(text: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v["error"]["message"].as_str().or_else(|| v["error"].as_str()).map(str::to_owned))
        .unwrap_or_else(|| "it is not an OpenAI-compatible error (its body is not shown)".to_owned());
    let mut end = message.len().min(MAX_ERROR_TEXT);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    if message.is_empty() { "no reason given".into() } else { message[..end].to_owned() }
}

/// Turns the response's bytes into deltas.
fn deltas(
    bytes: impl Stream<Item = reqwest::Result<bytes::Bytes>> + Send + Unpin + 'static,
) -> impl Stream<Item = Result<Delta, AiError>> + Send {
    struct State<S> {
        bytes: S,
        events: SseParser,
        calls: ToolCallParts,
        pending: std::collections::VecDeque<Delta>,
        done: bool,
    }
    let state = State {
        bytes,
        events: SseParser::default(),
        calls: ToolCallParts::default(),
        pending: Default::default(),
        done: false,
    };
    futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(d) = s.pending.pop_front() {
                return Some((Ok(d), s));
            }
            if s.done {
                return None;
            }
            let chunk = match tokio::time::timeout(IDLE_TIMEOUT, s.bytes.next()).await {
                Err(_) => {
                    s.done = true;
                    return Some((Err(AiError::Silent), s));
                }
                Ok(Some(Ok(chunk))) => chunk,
                Ok(Some(Err(e))) => {
                    s.done = true;
                    return Some((
                        Err(AiError::Unreachable { url: "the stream".into(), reason: crate::egress::reason(&e) }),
                        s,
                    ));
                }
                Ok(None) => {
                    s.done = true;
                    if let Some(calls) = s.calls.finish() {
                        s.pending.push_back(Delta::ToolCalls(calls));
                    }
                    continue;
                }
            };
            for data in s.events.push(&chunk) {
                if data.trim() == "[DONE]" {
                    s.done = true;
                    break;
                }
                match parse_chunk(&data, &mut s.calls) {
                    Ok(Some(text)) => s.pending.push_back(Delta::Text(text)),
                    Ok(None) => {}
                    Err(e) => {
                        s.done = true;
                        s.pending.clear();
                        return Some((Err(e), s));
                    }
                }
            }
            if s.done {
                if let Some(calls) = s.calls.finish() {
                    s.pending.push_back(Delta::ToolCalls(calls));
                }
            }
        }
    })
}

/// Reads one chunk: its text (if any); tool-call pieces go into `calls`.
fn parse_chunk(data: &str, calls: &mut ToolCallParts) -> Result<Option<String>, AiError> {
    let v: Value = serde_json::from_str(data).map_err(|e| AiError::Malformed(format!("a chunk is not JSON: {e}")))?;
    if let Some(message) = v["error"]["message"].as_str().or_else(|| v["error"].as_str()) {
        return Err(AiError::Provider { status: 200, message: message.to_owned() });
    }
    let delta = &v["choices"][0]["delta"];
    for part in delta["tool_calls"].as_array().into_iter().flatten() {
        calls.add(part);
    }
    Ok(delta["content"].as_str().filter(|t| !t.is_empty()).map(str::to_owned))
}

/// Tool calls arrive in pieces: an index, then the id and name, then the arguments' text
/// a few characters at a time.
#[derive(Debug, Default)]
struct ToolCallParts {
    calls: Vec<(String, String, String)>,
}

impl ToolCallParts {
    fn add(&mut self, part: &Value) {
        let index = part["index"].as_u64().map_or(self.calls.len().saturating_sub(1), |i| i as usize).min(64);
        while self.calls.len() <= index {
            self.calls.push(Default::default());
        }
        let (id, name, args) = &mut self.calls[index];
        if let Some(s) = part["id"].as_str() {
            id.push_str(s);
        }
        if let Some(s) = part["function"]["name"].as_str() {
            name.push_str(s);
        }
        match &part["function"]["arguments"] {
            Value::String(s) => args.push_str(s),
            // Some servers send the arguments as an object.
            v @ Value::Object(_) => args.push_str(&v.to_string()),
            _ => {}
        }
    }

    fn finish(&mut self) -> Option<Vec<ToolCall>> {
        let calls: Vec<ToolCall> = std::mem::take(&mut self.calls)
            .into_iter()
            .enumerate()
            .filter(|(_, (_, name, _))| !name.is_empty())
            .map(|(i, (id, name, arguments))| ToolCall {
                id: if id.is_empty() { format!("call_{i}") } else { id },
                kind: function_type(),
                function: FunctionCall {
                    name,
                    arguments: if arguments.trim().is_empty() { "{}".into() } else { arguments },
                },
            })
            .collect();
        (!calls.is_empty()).then_some(calls)
    }
}

/// Server-sent events: `data:` lines, an event ending at a blank line.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<String>,
}

impl SseParser {
    /// Feeds bytes; returns the data of every event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(std::mem::take(&mut self.data).join("\n"));
                }
            } else if let Some(rest) = line.strip_prefix("data:") {
                self.data.push(rest.strip_prefix(' ').unwrap_or(rest).to_owned());
            }
            // Comments (`:`), `event:`, `id:` and `retry:` lines carry nothing we use.
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_at_blank_lines_however_the_bytes_arrive() {
        let text = b"data: {\"a\":1}\n\n: keep-alive\n\ndata: one\r\ndata: two\r\n\r\ndata: [DONE]\n\n";
        let whole = SseParser::default().push(text);
        assert_eq!(whole, ["{\"a\":1}", "one\ntwo", "[DONE]"]);
        let mut p = SseParser::default();
        let bytewise: Vec<String> = text.iter().flat_map(|b| p.push(&[*b])).collect();
        assert_eq!(bytewise, whole);
    }

    #[test]
    fn tool_calls_are_gathered_from_their_pieces() {
        let mut parts = ToolCallParts::default();
        let pieces = [
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"write_file","arguments":""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"path\":"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"a.txt\"}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"c2","function":{"name":"list_dir","arguments":{"path":"."}}}]}}]}"#,
            r#"{"choices":[{"delta":{"content":"ok"},"finish_reason":"tool_calls"}]}"#,
        ];
        let texts: Vec<Option<String>> = pieces.iter().map(|p| parse_chunk(p, &mut parts).expect("parse")).collect();
        assert_eq!(texts.last(), Some(&Some("ok".to_owned())));
        let calls = parts.finish().expect("calls");
        assert_eq!(calls.len(), 2);
        assert_eq!((calls[0].id.as_str(), calls[0].function.name.as_str()), ("c1", "write_file"));
        assert_eq!(calls[0].function.arguments, r#"{"path":"a.txt"}"#);
        assert_eq!(calls[1].function.arguments, r#"{"path":"."}"#);
        assert!(parts.finish().is_none());
    }

    #[test]
    fn provider_errors_are_quoted_briefly() {
        assert_eq!(provider_message(r#"{"error":{"message":"model \"x\" not found"}}"#), "model \"x\" not found");
        assert_eq!(provider_message(r#"{"error":"bad key"}"#), "bad key");
        let internal = "<html><title>Jenkins</title>secret build log</html>";
        assert!(!provider_message(internal).contains("Jenkins"), "a non-OpenAI body is never repeated");
        let long = serde_json::json!({ "error": { "message": "é".repeat(400) } }).to_string();
        assert_eq!(provider_message(&long).len(), 500);
        let mut parts = ToolCallParts::default();
        assert!(matches!(
            parse_chunk(r#"{"error":{"message":"overloaded"}}"#, &mut parts),
            Err(AiError::Provider { .. })
        ));
        assert!(matches!(parse_chunk("not json", &mut parts), Err(AiError::Malformed(_))));
    }
}
