//! What replicas say to each other through Redis: one message per publish, in a compact
//! binary form (a terminal's frames cross replicas as they are, without re-encoding), with
//! JSON only for what is JSON already (requests, events, replies).
//!
//! A message starts with its kind (one byte); numbers are big-endian; a server id is a
//! length (two bytes) and its bytes; what is left is the payload.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use porta_shared::bridge::{BridgeEvent, BridgeRequest};
use porta_shared::{Envelope, ErrorBody};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{ClientId, ConnId, ReplyResult, Route};

/// A message to one replica.
#[derive(Debug)]
pub enum ToNode {
    /// Ask the bridge of `server` (connected to the receiver); reply to replica `from`.
    Request { from: u8, id: u64, server: String, route: Route, req: BridgeRequest },
    /// The answer to request `id`.
    Reply { id: u64, result: ReplyResult },
    /// A frame (input, an acknowledgement) for the bridge of `server`.
    Frame { server: String, frame: Bytes },
    /// A frame from a bridge, for browser socket `client`.
    ClientFrame { client: ClientId, frame: Bytes },
    /// An event from a bridge, for browser socket `client`.
    ClientEvent { client: ClientId, event: BridgeEvent },
    /// Close `server`'s bridge connection `conn` (0: whichever is there).
    Close { server: String, conn: ConnId, reason: ErrorBody },
    /// Drop browser socket `client` from the bus once it has what came before: more was
    /// queued for it on the sender than a client may have (see `inbox::MAX_QUEUED`).
    LetGo { client: ClientId },
}

/// A bridge came or went, said to every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    pub server: String,
    /// The replica holding it, and that replica's run (a replica restarted on the same
    /// number is another run).
    pub node: u8,
    pub run: String,
    pub conn: ConnId,
    pub instance: String,
    pub agent: String,
    pub online: bool,
}

const REQUEST: u8 = 1;
const REPLY: u8 = 2;
const FRAME: u8 = 3;
const CLIENT_FRAME: u8 = 4;
const CLIENT_EVENT: u8 = 5;
const CLOSE: u8 = 6;
const LET_GO: u8 = 7;

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
#[error("a malformed message between replicas: {0}")]
pub struct Malformed(String);

fn put_str(b: &mut BytesMut, s: &str) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    b.put_u16(len);
    b.put_slice(&s.as_bytes()[..usize::from(len)]);
}

fn get_str(b: &mut Bytes) -> Result<String, Malformed> {
    need(b, 2)?;
    let len = usize::from(b.get_u16());
    need(b, len)?;
    String::from_utf8(b.split_to(len).to_vec()).map_err(|_| Malformed("a name that is not UTF-8".into()))
}

fn need(b: &Bytes, n: usize) -> Result<(), Malformed> {
    if b.remaining() < n { Err(Malformed(format!("{n} more bytes expected, {} left", b.remaining()))) } else { Ok(()) }
}

fn json<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, Malformed> {
    serde_json::from_slice(b).map_err(|e| Malformed(e.to_string()))
}

/// A message of the bridge protocol, as the bridge protocol writes it.
fn message<M: porta_shared::Message>(b: &[u8]) -> Result<M, Malformed> {
    let text = std::str::from_utf8(b).map_err(|_| Malformed("a message that is not UTF-8".into()))?;
    Envelope::<M>::decode(text).map(|e| e.msg).map_err(|e| Malformed(format!("{e:?}")))
}

fn to_json(v: &impl Serialize) -> Vec<u8> {
    // Our own types always serialise.
    serde_json::to_vec(v).unwrap_or_default()
}

impl ToNode {
    pub fn encode(self) -> Bytes {
        let mut b = BytesMut::new();
        match self {
            ToNode::Request { from, id, server, route, req } => {
                b.put_u8(REQUEST);
                b.put_u8(from);
                b.put_u64(id);
                match route {
                    Route::None => b.put_u8(0),
                    Route::Open(stream, client) => {
                        b.put_u8(1);
                        b.put_u32(stream);
                        b.put_u64(client);
                    }
                    Route::Close(stream) => {
                        b.put_u8(2);
                        b.put_u32(stream);
                    }
                }
                put_str(&mut b, &server);
                b.put_slice(Envelope::<BridgeRequest>::event(req).encode().as_bytes());
            }
            ToNode::Reply { id, result } => {
                b.put_u8(REPLY);
                b.put_u64(id);
                match result {
                    Ok(raw) => {
                        b.put_u8(1);
                        b.put_slice(raw.get().as_bytes());
                    }
                    Err(e) => {
                        b.put_u8(0);
                        b.put_slice(&to_json(&e));
                    }
                }
            }
            ToNode::Frame { server, frame } => {
                b.put_u8(FRAME);
                put_str(&mut b, &server);
                b.put_slice(&frame);
            }
            ToNode::ClientFrame { client, frame } => {
                b.put_u8(CLIENT_FRAME);
                b.put_u64(client);
                b.put_slice(&frame);
            }
            ToNode::ClientEvent { client, event } => {
                b.put_u8(CLIENT_EVENT);
                b.put_u64(client);
                b.put_slice(Envelope::<BridgeEvent>::event(event).encode().as_bytes());
            }
            ToNode::Close { server, conn, reason } => {
                b.put_u8(CLOSE);
                b.put_u64(conn);
                put_str(&mut b, &server);
                b.put_slice(&to_json(&reason));
            }
            ToNode::LetGo { client } => {
                b.put_u8(LET_GO);
                b.put_u64(client);
            }
        }
        b.freeze()
    }

    pub fn decode(mut b: Bytes) -> Result<Self, Malformed> {
        need(&b, 1)?;
        Ok(match b.get_u8() {
            REQUEST => {
                need(&b, 10)?;
                let from = b.get_u8();
                let id = b.get_u64();
                let route = match b.get_u8() {
                    0 => Route::None,
                    1 => {
                        need(&b, 12)?;
                        Route::Open(b.get_u32(), b.get_u64())
                    }
                    2 => {
                        need(&b, 4)?;
                        Route::Close(b.get_u32())
                    }
                    other => return Err(Malformed(format!("unknown route {other}"))),
                };
                let server = get_str(&mut b)?;
                ToNode::Request { from, id, server, route, req: message(&b)? }
            }
            REPLY => {
                need(&b, 9)?;
                let id = b.get_u64();
                let result = if b.get_u8() == 1 {
                    let text = std::str::from_utf8(&b).map_err(|_| Malformed("a reply that is not UTF-8".into()))?;
                    Ok(RawValue::from_string(text.to_owned()).map_err(|e| Malformed(e.to_string()))?)
                } else {
                    Err(json(&b)?)
                };
                ToNode::Reply { id, result }
            }
            FRAME => {
                let server = get_str(&mut b)?;
                ToNode::Frame { server, frame: b }
            }
            CLIENT_FRAME => {
                need(&b, 8)?;
                ToNode::ClientFrame { client: b.get_u64(), frame: b }
            }
            CLIENT_EVENT => {
                need(&b, 8)?;
                let client = b.get_u64();
                ToNode::ClientEvent { client, event: message(&b)? }
            }
            CLOSE => {
                need(&b, 8)?;
                let conn = b.get_u64();
                let server = get_str(&mut b)?;
                ToNode::Close { server, conn, reason: json(&b)? }
            }
            LET_GO => {
                need(&b, 8)?;
                ToNode::LetGo { client: b.get_u64() }
            }
            other => return Err(Malformed(format!("unknown kind {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use porta_shared::ErrorCode;
    use porta_shared::bridge::{TermExited, TermList};
    use porta_shared::types::ExitStatus;

    use super::*;

    fn roundtrip(m: ToNode) -> ToNode {
        ToNode::decode(m.encode()).expect("decodes")
    }

    #[test]
    fn every_message_reads_back_as_it_was_written() {
        let req = ToNode::Request {
            from: 3,
            id: 77,
            server: "srv-1".into(),
            route: Route::Open(0x0300_0001, (3 << 48) | 9),
            req: TermList {}.into(),
        };
        assert_eq!(
            format!("{:?}", roundtrip(req)),
            format!(
                "{:?}",
                ToNode::Request {
                    from: 3,
                    id: 77,
                    server: "srv-1".into(),
                    route: Route::Open(0x0300_0001, (3 << 48) | 9),
                    req: TermList {}.into(),
                }
            )
        );
        let ok = RawValue::from_string(r#"{"terminals":[]}"#.into()).expect("json");
        let ToNode::Reply { id: 5, result: Ok(raw) } = roundtrip(ToNode::Reply { id: 5, result: Ok(ok) }) else {
            panic!("reply")
        };
        assert_eq!(raw.get(), r#"{"terminals":[]}"#);
        let gone = ErrorBody::new(ErrorCode::ServerOffline, "gone");
        let ToNode::Reply { result: Err(e), .. } = roundtrip(ToNode::Reply { id: 6, result: Err(gone) }) else {
            panic!("error reply")
        };
        assert_eq!(e.code, ErrorCode::ServerOffline);
        let frame = Bytes::from_static(b"\x00\x00\x00\x07binary \xff payload");
        let ToNode::ClientFrame { client: 42, frame: f } =
            roundtrip(ToNode::ClientFrame { client: 42, frame: frame.clone() })
        else {
            panic!("frame")
        };
        assert_eq!(f, frame);
        assert!(matches!(roundtrip(ToNode::LetGo { client: 77 }), ToNode::LetGo { client: 77 }));
        let exit = ExitStatus { code: Some(0), signal: None };
        let event = BridgeEvent::TermExited(TermExited { stream: 9, term: porta_shared::types::TermId(1), exit });
        let ToNode::ClientEvent { client: 1, event: BridgeEvent::TermExited(e) } =
            roundtrip(ToNode::ClientEvent { client: 1, event })
        else {
            panic!("event")
        };
        assert_eq!(e.stream, 9);
    }

    #[test]
    fn malformed_messages_are_refused_not_trusted() {
        for bad in
            [&b""[..], b"\x09", b"\x01\x00", b"\x03\x00\x10ab", b"\x02\x00\x00\x00\x00\x00\x00\x00\x01\x01{not json"]
        {
            assert!(ToNode::decode(Bytes::copy_from_slice(bad)).is_err(), "{bad:?}");
        }
    }
}
