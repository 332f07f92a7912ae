//! The relay: bridges dial in on `/bridge/ws`, browsers on `/api/ws`, and the [`bus`]
//! carries requests, replies and stream frames between them.

pub mod client;
pub mod command;
pub mod hub;
pub mod recorder;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

/// Hard cap on one WebSocket message; the protocol's own limits are smaller and answered
/// with typed errors, this one closes the connection.
const MAX_WS_MESSAGE: usize = 8 << 20;

/// Initial read buffer per socket; it grows for large messages. (The library's default,
/// 128 KiB, would dominate the memory of an idle connection.)
const READ_BUFFER: usize = 8 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/bridge/ws", get(hub::bridge_ws)).route("/api/ws", get(client::client_ws))
}
