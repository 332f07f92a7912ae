//! `GET /api/recordings/{id}`: a terminal session recording as asciicast v2, for the admins
//! and owners of its workspace's team. Every fetch is written to the audit log.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::io::AsyncReadExt as _;

use crate::auth::AuthUser;
use crate::auth::scopes::Scope;
use crate::db::AuditEvent;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::teams::{Role, require_role, workspace_role};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/recordings/{id}", get(fetch))
}

async fn fetch(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Response> {
    user.require(Scope::Read)?;
    let not_found = || Error::NotFound(format!("no recording {id}, or you may not watch it"));
    let rec = state.store.recording(&id).await?.ok_or_else(not_found)?;
    let (ws, role) = workspace_role(&state.store, &user, &rec.workspace_id).await.map_err(|e| match e {
        Error::NotFound(_) => not_found(),
        e => e,
    })?;
    require_role(role, Role::Admin, "watching a recording")?;
    let file = match tokio::fs::File::open(state.recorder.file(&rec.id)).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(format!("the file of recording {id} is missing")));
        }
        Err(e) => return Err(Error::Other(e.into())),
    };
    state
        .store
        .audit(
            AuditEvent::new(&user.actor(), "recording.view")
                .target(&format!("recording:{id}"))
                .server(&rec.server_id)
                .workspace(&ws.id),
        )
        .await;
    // In pieces: a recording of a long session can be large.
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut f = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), Some(f)))
            }
            // The error ends the body; nothing more is read.
            Err(e) => Some((Err(e), None)),
        }
    });
    Ok(([(CONTENT_TYPE, "application/x-asciicast"), (CACHE_CONTROL, "no-store")], Body::from_stream(chunks))
        .into_response())
}
