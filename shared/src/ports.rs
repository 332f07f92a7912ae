//! A server's listening TCP ports, and tunnels to them: what previews of the web apps people
//! run on their servers travel through.
//!
//! A tunnel is a stream (like an exec's) carrying one TCP connection the bridge made to a
//! port on its own machine's loopback. Bytes go both ways as [`crate::frame::FrameKind::TunnelData`]
//! frames, each direction numbered by its own byte offset, each under a window the other side
//! opens with [`crate::frame::FrameKind::Ack`]: the backend acknowledges what it consumed,
//! the bridge what it wrote to the socket. An empty `TunnelData` payload ends that direction
//! (a TCP half-close). [`TunnelClosed`] says the connection is over.

use serde::{Deserialize, Serialize};

use crate::envelope::ErrorBody;
use crate::types::StreamId;

/// A tunnel's receiver acknowledges what it consumed (or wrote) at least every this many
/// bytes, and need not otherwise: each side's window must be larger, or a sender would wait
/// for an acknowledgement that never comes. (Acknowledging every small message would double
/// the messages of a request and its answer.)
pub const ACK_EVERY: u64 = 64 * 1024;

/// Bytes a tunnel's sender has in flight, at most, each way (unconsumed by the backend, or
/// not yet written to the port by the bridge).
pub const WINDOW: u64 = 512 * 1024;

/// The ports listening on the machine (TCP, IPv4 and IPv6), with the processes that own them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SysPorts {}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listening {
    pub port: u16,
    /// The address it is bound to as the kernel tells it: `0.0.0.0`, `::`, `127.0.0.1`, …
    pub address: String,
    /// Whether a preview (through the machine's loopback) reaches it.
    pub loopback: bool,
    /// The owning process, when the bridge may look at it (its own user's, or any as root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// Its command line, cut to [`crate::bridge::ProcessInfo::MAX_COMMAND`] characters.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub command: String,
    /// The socket owner's user id.
    pub uid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PortsListed {
    /// By port, then address; one entry per port and address.
    pub ports: Vec<Listening>,
}

/// Connect to `port` on the machine's loopback (127.0.0.1, then ::1, then the one address
/// the port is bound to) and carry the connection on `stream`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelOpen {
    pub stream: StreamId,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelOpened {
    /// The address the bridge connected to, e.g. `127.0.0.1:5173`.
    pub address: String,
}

/// Drop the connection at once (both directions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelClose {
    pub stream: StreamId,
}

/// A tunnel's connection is over: both directions ended, or it failed (`error`), or it was
/// closed. Sent after its last data frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelClosed {
    pub stream: StreamId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// Whether `port` may be tunnelled to: any but 0.
pub fn valid_port(port: u16) -> bool {
    port != 0
}
