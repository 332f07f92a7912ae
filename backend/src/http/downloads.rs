//! What a new server fetches before it has any credential (`crate::fleet`), so none is asked:
//!
//! - `GET /install.sh`: the install script, set to this backend's public URL.
//! - `GET /download/porta-bridge-linux-<arch>`: the static bridge (ranges and `HEAD` work).
//! - `GET /download/porta-bridge-linux-<arch>.sha256`: its digest, as `sha256sum` prints it.

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceExt as _;
use tower_http::services::ServeFile;

use crate::error::{Error, Result};
use crate::fleet;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/install.sh", get(script)).route("/download/{file}", get(download))
}

/// Never cached: it names the current public URL and version.
const NO_STORE: &str = "no-store";

async fn script(State(state): State<AppState>) -> Response {
    // Plain text, so a person can read it in a browser before piping it into a shell.
    let body = fleet::install_script(&state.public_url);
    ([(CONTENT_TYPE, "text/plain; charset=utf-8"), (CACHE_CONTROL, NO_STORE)], body).into_response()
}

async fn download(State(state): State<AppState>, Path(file): Path<String>, req: Request) -> Result<Response> {
    let (name, digest_only) = match file.strip_suffix(".sha256") {
        Some(name) => (name, true),
        None => (file.as_str(), false),
    };
    let arch = fleet::ARCHES.into_iter().find(|a| fleet::file_name(a) == name).ok_or_else(|| {
        let known: Vec<String> = fleet::ARCHES.iter().map(|a| fleet::file_name(a)).collect();
        Error::NotFound(format!("no download named {file}; there are {}", known.join(" and ")))
    })?;
    let carried = state.downloads.bridge(arch).await?.ok_or_else(|| {
        Error::NotFound(format!(
            "this Porta carries no bridge for {arch}: its operator builds them with `cargo xtask bridges --release` \
             into {} (PORTA_BRIDGE_DOWNLOADS)",
            state.downloads.dir().display()
        ))
    })?;
    if digest_only {
        let body = format!("{}  {name}\n", carried.sha256);
        return Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8"), (CACHE_CONTROL, NO_STORE)], body).into_response());
    }
    let served = ServeFile::new(&carried.path).oneshot(req).await;
    let mut resp = match served {
        Ok(r) => r.into_response(),
        Err(e) => match e {},
    };
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&carried.sha256) {
        h.insert("x-checksum-sha256", v);
    }
    Ok(resp)
}
