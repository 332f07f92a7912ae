//! The HTTP surface: router assembly, JSON extraction in our error shape, health, readiness,
//! metrics, and request tracing that never records secrets.

mod audit;
pub mod origin;
mod recordings;
mod ui;

use axum::Router;
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::trace::TraceLayer;

use crate::error::Error;
use crate::state::AppState;

/// `Json` whose rejections come back as our typed error.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct AppJson<T>(pub T);

impl From<axum::extract::rejection::JsonRejection> for Error {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        Error::BadRequest(r.body_text())
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::auth::router())
        .merge(audit::router())
        .merge(recordings::router())
        .merge(crate::teams::invitations::router())
        .merge(crate::agents::api::router())
        .merge(crate::mcp::router(&state))
        .merge(crate::graphql::router())
        .merge(crate::relay::router())
        .fallback(ui::serve)
        .layer(
            // Spans record the route pattern only: no query strings (tickets), no headers.
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str());
                tracing::debug_span!("http", method = %req.method(), route)
            }),
        )
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    resp
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "database not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render();
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}
