//! The JSON envelope of every control message, replies, and typed errors.
//!
//! On the wire a control message is one JSON object:
//!
//! ```json
//! {"v":1,"id":"7","type":"fs.read","body":{"path":"/etc/hostname"}}
//! ```
//!
//! - `v`: the protocol version the sender speaks on this connection;
//! - `id`: a request id chosen by the sender of a request (at most
//!   [`MAX_REQUEST_ID_LEN`] bytes), echoed by the reply; absent on events;
//! - `type`: a permanent tag. Tags are never renamed or reused: a changed message becomes a new
//!   `…2` tag. Replies use the two tags `ok` and `error`;
//! - `body`: the message's fields (`{}` when it has none).
//!
//! Decoding happens in two steps, header first, so that a request whose body is malformed or
//! whose type is unknown still gets a typed error reply that echoes its id.

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::version::PROTOCOL_VERSION;

/// A request id, chosen by the sender of a request and echoed in its reply.
pub type RequestId = String;

/// The longest request id a peer accepts.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// The largest JSON control message a peer accepts. Larger data (file contents) is split into
/// several requests.
pub const MAX_TEXT_MESSAGE: usize = 1 << 20;

/// Tag of a successful reply.
pub const TYPE_OK: &str = "ok";
/// Tag of an error reply.
pub const TYPE_ERROR: &str = "error";

/// A set of messages that can travel in an envelope; implemented by the enums that
/// `messages!` generates (for example [`crate::bridge::BridgeRequest`]).
pub trait Message: Serialize + Sized {
    /// The permanent tag of this message.
    fn type_name(&self) -> &'static str;
    /// Decodes the body of a message whose tag is `ty`.
    fn decode_body(ty: &str, body: &str) -> Result<Self, BodyError>;
}

/// A request type, paired with the type of its successful reply.
pub trait Request: Serialize + DeserializeOwned {
    /// The permanent tag of this request.
    const TYPE: &'static str;
    /// The body of the `ok` reply to this request.
    type Response: Serialize + DeserializeOwned;
}

/// Why a message body did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The tag names no message of this set.
    UnknownType,
    /// The tag is known but the body does not match it.
    Invalid(String),
}

/// A control message with its request id (present on requests, absent on events).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<M> {
    pub id: Option<RequestId>,
    pub msg: M,
}

#[derive(Serialize)]
struct WireOut<'a, B: Serialize + ?Sized> {
    v: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type")]
    ty: &'a str,
    body: &'a B,
}

#[derive(Deserialize)]
struct WireIn<'a> {
    v: u16,
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(borrow, default)]
    body: Option<&'a RawValue>,
}

fn encode_raw<B: Serialize + ?Sized>(id: Option<&str>, ty: &str, body: &B) -> String {
    let out = WireOut { v: PROTOCOL_VERSION, id, ty, body };
    // Serialising plain data structs with string keys into a String cannot fail.
    serde_json::to_string(&out).unwrap_or_else(|e| {
        format!(r#"{{"v":{PROTOCOL_VERSION},"type":"error","body":{{"code":"internal","message":"encode: {e}"}}}}"#)
    })
}

impl<M: Message> Envelope<M> {
    /// A request: a message that expects a reply echoing `id`.
    pub fn request(id: impl Into<RequestId>, msg: impl Into<M>) -> Self {
        Self { id: Some(id.into()), msg: msg.into() }
    }

    /// An event: a message that expects no reply.
    pub fn event(msg: impl Into<M>) -> Self {
        Self { id: None, msg: msg.into() }
    }

    /// The JSON text of this message.
    pub fn encode(&self) -> String {
        encode_raw(self.id.as_deref(), self.msg.type_name(), &self.msg)
    }

    /// Decodes a message of set `M`; replies are refused as [`DecodeError::UnknownType`].
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        match Incoming::<M>::decode(text)? {
            Incoming::Message(env) => Ok(env),
            Incoming::Reply(reply) => Err(DecodeError::UnknownType {
                id: reply.id,
                ty: if reply.result.is_ok() { TYPE_OK } else { TYPE_ERROR }.to_owned(),
            }),
        }
    }
}

/// Anything a peer may receive: a message of set `M`, or a reply to one of its own requests.
#[derive(Debug)]
pub enum Incoming<M> {
    Message(Envelope<M>),
    Reply(Reply),
}

impl<M: Message> Incoming<M> {
    /// Decodes one JSON text frame.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        if text.len() > MAX_TEXT_MESSAGE {
            return Err(DecodeError::TooLarge { len: text.len() });
        }
        let wire: WireIn<'_> = serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if let Some(id) = &wire.id {
            if id.is_empty() || id.len() > MAX_REQUEST_ID_LEN {
                return Err(DecodeError::BadRequestId);
            }
        }
        if wire.v == 0 || wire.v > PROTOCOL_VERSION {
            return Err(DecodeError::UnsupportedVersion { id: wire.id, v: wire.v });
        }
        let body = wire.body.map_or("{}", RawValue::get);
        match &*wire.ty {
            TYPE_OK | TYPE_ERROR => {
                let result = if wire.ty == TYPE_OK {
                    Ok(RawValue::from_string(body.to_owned()).map_err(|e| DecodeError::Malformed(e.to_string()))?)
                } else {
                    Err(serde_json::from_str::<ErrorBody>(body).map_err(|e| DecodeError::InvalidBody {
                        id: wire.id.clone(),
                        ty: TYPE_ERROR.into(),
                        reason: e.to_string(),
                    })?)
                };
                // Only an error may lack an id: the refusal of a request whose id was unreadable.
                if result.is_ok() && wire.id.is_none() {
                    return Err(DecodeError::MissingId);
                }
                let id = wire.id;
                Ok(Incoming::Reply(Reply { id, result }))
            }
            ty => match M::decode_body(ty, body) {
                Ok(msg) => Ok(Incoming::Message(Envelope { id: wire.id, msg })),
                Err(BodyError::UnknownType) => Err(DecodeError::UnknownType { id: wire.id, ty: ty.to_owned() }),
                Err(BodyError::Invalid(reason)) => {
                    Err(DecodeError::InvalidBody { id: wire.id, ty: ty.to_owned(), reason })
                }
            },
        }
    }
}

/// A reply to a request: `ok` with the response body, or `error` with a typed error.
#[derive(Debug)]
pub struct Reply {
    /// The request's id; absent only on the refusal of a request whose id was unreadable.
    pub id: Option<RequestId>,
    pub result: Result<Box<RawValue>, ErrorBody>,
}

impl Reply {
    /// The JSON text of an `ok` reply with `body`.
    pub fn ok<B: Serialize + ?Sized>(id: &str, body: &B) -> String {
        encode_raw(Some(id), TYPE_OK, body)
    }

    /// The JSON text of an `error` reply. `id` is `None` only when the request's id could
    /// not be read.
    pub fn error(id: Option<&str>, err: &ErrorBody) -> String {
        encode_raw(id, TYPE_ERROR, err)
    }

    /// Decodes the `ok` body as the response type of request `R`.
    pub fn into_response<R: Request>(self) -> Result<R::Response, ErrorBody> {
        let raw = self.result?;
        serde_json::from_str(raw.get())
            .map_err(|e| ErrorBody::new(ErrorCode::BadRequest, format!("malformed {} reply: {e}", R::TYPE)))
    }
}

/// Why a control message was refused. Every variant maps to a typed error reply, echoing the
/// request id whenever it could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message is {len} bytes; the limit is {MAX_TEXT_MESSAGE}")]
    TooLarge { len: usize },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("request id must be 1 to {MAX_REQUEST_ID_LEN} bytes")]
    BadRequestId,
    #[error("an ok reply must carry the id of its request")]
    MissingId,
    #[error("protocol version {v} is not spoken here (this peer speaks up to {PROTOCOL_VERSION})")]
    UnsupportedVersion { id: Option<RequestId>, v: u16 },
    #[error("unknown message type {ty:?}")]
    UnknownType { id: Option<RequestId>, ty: String },
    #[error("invalid body for {ty:?}: {reason}")]
    InvalidBody { id: Option<RequestId>, ty: String, reason: String },
}

impl DecodeError {
    /// The id of the refused request, when it could be read.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::UnsupportedVersion { id, .. } | Self::UnknownType { id, .. } | Self::InvalidBody { id, .. } => {
                id.as_deref()
            }
            _ => None,
        }
    }

    /// The typed error this refusal is reported as.
    pub fn to_error_body(&self) -> ErrorBody {
        let code = match self {
            Self::TooLarge { .. } => ErrorCode::TooLarge,
            Self::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            Self::UnknownType { .. } => ErrorCode::UnknownType,
            Self::Malformed(_) | Self::BadRequestId | Self::MissingId | Self::InvalidBody { .. } => {
                ErrorCode::BadRequest
            }
        };
        ErrorBody::new(code, self.to_string())
    }

    /// The JSON text of the error reply to this refusal.
    pub fn to_reply(&self) -> String {
        Reply::error(self.request_id(), &self.to_error_body())
    }
}

/// Stable error codes. Clients match on these; the message is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnknownType,
    UnsupportedVersion,
    TooLarge,
    Unauthorized,
    Forbidden,
    NotFound,
    AlreadyExists,
    /// A precondition failed, e.g. the file changed since it was read.
    Conflict,
    OutsideRoot,
    NotADirectory,
    IsADirectory,
    NotEmpty,
    PermissionDenied,
    Io,
    Timeout,
    Cancelled,
    ServerOffline,
    UnknownTerminal,
    UnknownStream,
    RateLimited,
    Unavailable,
    Internal,
    /// A code this build does not know (sent by a newer peer).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownType => "unknown_type",
            Self::UnsupportedVersion => "unsupported_version",
            Self::TooLarge => "too_large",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::Conflict => "conflict",
            Self::OutsideRoot => "outside_root",
            Self::NotADirectory => "not_a_directory",
            Self::IsADirectory => "is_a_directory",
            Self::NotEmpty => "not_empty",
            Self::PermissionDenied => "permission_denied",
            Self::Io => "io",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
            Self::ServerOffline => "server_offline",
            Self::UnknownTerminal => "unknown_terminal",
            Self::UnknownStream => "unknown_stream",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of an `error` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// Defines a set of messages: an enum with one variant per tag, its [`Message`]
/// implementation, `From` conversions, and — for requests written `=> Resp` — the
/// [`Request`] pairing.
macro_rules! messages {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $tag:literal => $variant:ident($ty:ty) $(-> $resp:ty)? ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant($ty), )+
        }

        impl $name {
            /// Every tag of this set, in declaration order.
            pub const TYPES: &'static [&'static str] = &[$($tag),+];
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self { $( Self::$variant(body) => body.serialize(s), )+ }
            }
        }

        impl $crate::envelope::Message for $name {
            fn type_name(&self) -> &'static str {
                match self { $( Self::$variant(_) => $tag, )+ }
            }

            fn decode_body(ty: &str, body: &str) -> Result<Self, $crate::envelope::BodyError> {
                match ty {
                    $( $tag => ::serde_json::from_str::<$ty>(body)
                        .map(Self::$variant)
                        .map_err(|e| $crate::envelope::BodyError::Invalid(e.to_string())), )+
                    _ => Err($crate::envelope::BodyError::UnknownType),
                }
            }
        }

        $(
            impl From<$ty> for $name {
                fn from(body: $ty) -> Self { Self::$variant(body) }
            }
            $(
                impl $crate::envelope::Request for $ty {
                    const TYPE: &'static str = $tag;
                    type Response = $resp;
                }
            )?
        )+
    };
}
pub(crate) use messages;
