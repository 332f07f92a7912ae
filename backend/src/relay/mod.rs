//! The relay: bridges dial in on `/bridge/ws`, browsers on `/api/ws`, and the [`bus`]
//! carries requests, replies and stream frames between them.

pub mod bus;
pub mod client;
pub mod hub;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/bridge/ws", get(hub::bridge_ws)).route("/api/ws", get(client::client_ws))
}
