//! The stream sockets: bridges dial in on `/bridge/ws` ([`bridge`]), browser tabs on
//! `/api/ws` ([`browser`]), and the bus carries requests, replies and stream frames between
//! them.

pub mod bridge;
pub mod browser;

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
    Router::new()
        .route("/bridge/ws", get(bridge::bridge_ws))
        .route("/bridge/download", get(bridge::bridge_download))
        .route("/api/ws", get(browser::client_ws))
}
