//! The `graphql-transport-ws` protocol on `/graphql/ws`, as its specification writes it
//! (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>), which GraphQL clients
//! (`graphql-ws`, `gql`, Apollo) hold a server to: every way a socket ends has its own close
//! code, and an operation that cannot run is answered with an `error` message.
//!
//! The caller is known before the upgrade (see `graphql_ws`), so `connection_init` is
//! acknowledged at once; its purpose here is the handshake the protocol asks for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Data, Response};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_channel::oneshot;
use futures_util::stream::{self, BoxStream, SelectAll};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Runs;
use crate::auth::AuthUser;
use crate::state::AppState;

/// How long a socket may stay open without `connection_init` (the reference server's default).
pub const INIT_WAIT: Duration = Duration::from_secs(3);

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[allow(dead_code)]
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {
        #[allow(dead_code)]
        #[serde(default)]
        payload: Option<Value>,
    },
    Pong {
        #[allow(dead_code)]
        #[serde(default)]
        payload: Option<Value>,
    },
    Subscribe {
        id: String,
        payload: Box<async_graphql::Request>,
    },
    Complete {
        id: String,
    },
}

/// Why the server closes a socket: the protocol's close code and reason.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Closing(pub u16, pub String);

impl Closing {
    fn invalid(why: impl std::fmt::Display) -> Self {
        Self(4400, format!("invalid message: {why}"))
    }

    /// The close frame: its reason cut to what a frame may carry (123 bytes), as clients
    /// refuse a longer one and would never see the code.
    fn frame(self) -> CloseFrame {
        let Closing(code, mut reason) = self;
        if reason.len() > MAX_REASON {
            let mut end = MAX_REASON - '…'.len_utf8();
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push('…');
        }
        CloseFrame { code, reason: reason.into() }
    }
}

/// The longest close reason a WebSocket frame carries, in bytes.
const MAX_REASON: usize = 123;

/// How long sending one message may take before the client is taken for gone: a client that
/// stops reading must not hold the socket's task (and its credential watch) forever.
const SEND_WITHIN: Duration = Duration::from_secs(30);

/// One event of an operation's stream: a response, or its end.
type Event = (String, Option<Response>);

/// The protocol's state on one socket, apart from the socket itself.
struct Session {
    data: Arc<Data>,
    acknowledged: bool,
    /// Running operations by id: dropping (or sending on) the sender stops the operation.
    running: HashMap<String, Running>,
    events: SelectAll<BoxStream<'static, Event>>,
}

struct Running {
    _stop: oneshot::Sender<()>,
    /// Something was sent for it: a failure after that is a `next`, not an `error`.
    answered: bool,
}

impl Session {
    /// Handles one message from the client: what to send back, or why to close.
    fn receive(&mut self, text: &str) -> Result<Option<Value>, Closing> {
        let message: ClientMessage = serde_json::from_str(text).map_err(Closing::invalid)?;
        match message {
            ClientMessage::ConnectionInit { .. } if self.acknowledged => {
                Err(Closing(4429, "Too many initialisation requests".into()))
            }
            ClientMessage::ConnectionInit { .. } => {
                self.acknowledged = true;
                Ok(Some(json!({ "type": "connection_ack" })))
            }
            ClientMessage::Ping { .. } => Ok(Some(json!({ "type": "pong" }))),
            ClientMessage::Pong { .. } => Ok(None),
            ClientMessage::Subscribe { .. } if !self.acknowledged => Err(Closing(4401, "Unauthorized".into())),
            ClientMessage::Subscribe { id, .. } if self.running.contains_key(&id) => {
                Err(Closing(4409, format!("Subscriber for {id} already exists")))
            }
            ClientMessage::Subscribe { id, payload } => {
                let (stop, stopped) = oneshot::channel();
                let responses = match super::runs(*payload) {
                    Runs::Operations(req) => super::schema().execute_stream_with_session_data(req, self.data.clone()),
                    Runs::Introspection(req) => {
                        super::introspection::schema().execute_stream_with_session_data(req, self.data.clone())
                    }
                    Runs::Refused(response) => stream::once(async move { response }).boxed(),
                };
                let key = id.clone();
                let end = id.clone();
                let events = responses
                    .map(move |r| (key.clone(), Some(r)))
                    .chain(stream::once(async move { (end, None) }))
                    .take_until(stopped)
                    .boxed();
                self.events.push(events);
                self.running.insert(id, Running { _stop: stop, answered: false });
                Ok(None)
            }
            ClientMessage::Complete { id } => {
                // Dropping the sender ends the operation's stream; nothing is sent back.
                self.running.remove(&id);
                Ok(None)
            }
        }
    }

    /// What to send for an event of a running operation (none for one already completed).
    fn answer(&mut self, (id, response): Event) -> Option<Value> {
        let running = self.running.get_mut(&id)?;
        let Some(response) = response else {
            self.running.remove(&id);
            return Some(json!({ "type": "complete", "id": id }));
        };
        // A first answer with errors and nothing else is an operation that could not run (it
        // failed to parse or validate, or was refused): `error`, which also ends it.
        let refused = !running.answered
            && response.data == async_graphql::Value::Null
            && !response.errors.is_empty()
            && response.errors.iter().all(|e| e.path.is_empty());
        if refused {
            self.running.remove(&id);
            return Some(json!({ "type": "error", "id": id, "payload": response.errors }));
        }
        running.answered = true;
        Some(json!({ "type": "next", "id": id, "payload": response }))
    }
}

/// Serves one socket until either side closes it, or the caller's credential dies (closed
/// with 1008, policy violation, and the reason).
pub(super) async fn serve(socket: WebSocket, state: AppState, user: AuthUser) {
    let mut data = Data::default();
    data.insert(state.clone());
    data.insert(user.clone());
    data.insert(super::LiveSocket);
    let mut session =
        Session { data: Arc::new(data), acknowledged: false, running: HashMap::new(), events: SelectAll::new() };
    let (mut sink, mut incoming) = socket.split();
    let init_deadline = tokio::time::sleep(INIT_WAIT);
    tokio::pin!(init_deadline);
    let dies = super::credential_dies(&state, &user);
    tokio::pin!(dies);
    let closing = loop {
        let reply = tokio::select! {
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => match session.receive(&text) {
                    Ok(reply) => reply,
                    Err(closing) => break Some(closing),
                },
                Some(Ok(Message::Binary(_))) => break Some(Closing::invalid("messages are JSON text")),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
                Some(Ok(_)) => None,
            },
            Some(event) = session.events.next(), if !session.events.is_empty() => session.answer(event),
            () = &mut init_deadline, if !session.acknowledged => {
                break Some(Closing(4408, "Connection initialisation timeout".into()));
            }
            why = &mut dies => break Some(Closing(1008, why.into())),
        };
        if let Some(reply) = reply {
            let sent = tokio::time::timeout(SEND_WITHIN, sink.send(Message::Text(reply.to_string().into()))).await;
            if !matches!(sent, Ok(Ok(()))) {
                break None;
            }
        }
    };
    if let Some(closing) = closing {
        let _ = tokio::time::timeout(SEND_WITHIN, sink.send(Message::Close(Some(closing.frame())))).await;
    }
    // Flushes the answer to a client's own close, which is only queued when it is read.
    let _ = tokio::time::timeout(SEND_WITHIN, sink.close()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            data: Arc::new(Data::default()),
            acknowledged: false,
            running: HashMap::new(),
            events: SelectAll::new(),
        }
    }

    fn subscribe(id: &str) -> String {
        json!({ "type": "subscribe", "id": id, "payload": { "query": "{ __typename }" } }).to_string()
    }

    #[test]
    fn every_protocol_breach_closes_with_its_own_code() {
        let mut s = session();
        assert_eq!(s.receive("not json").unwrap_err().0, 4400);
        assert_eq!(s.receive(r#"{"type":"subscribe"}"#).unwrap_err().0, 4400, "a subscribe without an id");
        assert_eq!(s.receive(r#"{"type":"launch"}"#).unwrap_err().0, 4400, "an unknown type");
        assert_eq!(s.receive(&subscribe("1")).unwrap_err(), Closing(4401, "Unauthorized".into()));
        let ack = s.receive(r#"{"type":"connection_init"}"#).unwrap();
        assert_eq!(ack, Some(json!({ "type": "connection_ack" })));
        assert_eq!(s.receive(r#"{"type":"connection_init","payload":{}}"#).unwrap_err().0, 4429);
        assert_eq!(s.receive(r#"{"type":"ping"}"#).unwrap(), Some(json!({ "type": "pong" })));
        assert_eq!(s.receive(r#"{"type":"pong","payload":{"x":1}}"#).unwrap(), None);
        assert_eq!(s.receive(&subscribe("1")).unwrap(), None);
        assert_eq!(s.receive(&subscribe("1")).unwrap_err(), Closing(4409, "Subscriber for 1 already exists".into()));
        // Completed by the client, the id may be used again.
        assert_eq!(s.receive(r#"{"type":"complete","id":"1"}"#).unwrap(), None);
        assert_eq!(s.receive(&subscribe("1")).unwrap(), None);
    }

    #[test]
    fn a_close_reason_fits_a_frame() {
        let long = Closing(4409, format!("Subscriber for {} already exists", "é".repeat(200))).frame();
        assert_eq!(long.code, 4409);
        assert!(long.reason.len() <= MAX_REASON && long.reason.ends_with('…'), "{}", long.reason.len());
        let short = Closing(4401, "Unauthorized".into()).frame();
        assert_eq!(short.reason.as_str(), "Unauthorized");
    }

    #[test]
    fn an_operation_that_cannot_run_is_an_error_and_a_field_error_later_is_next() {
        let mut s = session();
        s.acknowledged = true;
        s.receive(&subscribe("a")).unwrap();
        let invalid = Response::from_errors(vec![async_graphql::ServerError::new("Unknown field \"nope\"", None)]);
        let answer = s.answer(("a".into(), Some(invalid))).unwrap();
        assert_eq!(answer["type"], "error");
        assert_eq!(answer["payload"][0]["message"], "Unknown field \"nope\"");
        assert!(!s.running.contains_key("a"), "an error ends the operation");
        assert_eq!(s.answer(("a".into(), None)), None, "nothing more is sent for it");

        s.receive(&subscribe("b")).unwrap();
        let first = Response::new(async_graphql::Value::from_json(json!({ "n": 1 })).unwrap());
        assert_eq!(s.answer(("b".into(), Some(first))).unwrap()["type"], "next");
        let mut failed = async_graphql::ServerError::new("the server went away", None);
        failed.path = vec![async_graphql::PathSegment::Field("n".into())];
        assert_eq!(s.answer(("b".into(), Some(Response::from_errors(vec![failed])))).unwrap()["type"], "next");
        assert_eq!(s.answer(("b".into(), None)), Some(json!({ "type": "complete", "id": "b" })));
    }
}
