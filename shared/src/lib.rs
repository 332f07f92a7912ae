//! Porta's wire protocol: everything the backend, the bridge daemon and the browser app say
//! to each other, and nothing else. No HTTP, no SQL, no DOM: this crate builds for wasm32.
//!
//! Two kinds of WebSocket message travel on every channel:
//! - **control messages**: JSON text frames in one [`envelope`] (protocol version, a
//!   `request_id` echoed by the reply, a permanent `type` tag, a body);
//! - **stream frames**: binary frames with a fixed 14-byte [`frame`] header (kind, stream id,
//!   sequence number) followed by raw bytes, for terminal and exec output on the hot path.
//!
//! Channels: [`bridge`] (bridge daemon ⇄ backend, `/bridge/ws`), [`client`] (browser ⇄
//! backend, `/api/ws`), [`api`] (JSON bodies of the REST endpoints), [`telemetry`] (what
//! bridges report about their machines), [`docker`] (the containers on them) and [`ports`]
//! (listening ports, and tunnels to them for previews).

#![forbid(unsafe_code)]
// What comes from outside the process is handled, never unwrapped; tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod bridge;
pub mod client;
pub mod docker;
pub mod envelope;
pub mod frame;
pub mod ports;
pub mod telemetry;
pub mod text;
pub mod types;
pub mod version;

pub use envelope::{DecodeError, Envelope, ErrorBody, ErrorCode, Incoming, Message, Reply, Request, RequestId};
pub use frame::{Frame, FrameError, FrameKind};
pub use version::{PROTOCOL_VERSION, ProtocolRange};
