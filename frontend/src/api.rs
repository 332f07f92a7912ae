//! Talking to the backend: REST for signing in, GraphQL for data.
//!
//! The access token lives only in memory; a page reload gets a new one through the HttpOnly
//! refresh cookie, which script cannot read. No token is ever put in a URL.

use gloo_net::http::{Request, Response};
use porta_shared::api::{ApiError, AuthResponse, AuthStatus, LoginRequest, UserInfo};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A signed-in user and their current access token.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub token: String,
    pub user: UserInfo,
}

/// A server, as the dashboard lists it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Server {
    pub id: String,
    pub name: String,
    pub online: bool,
    pub os: Option<String>,
    pub arch: Option<String>,
    pub last_seen_ms: Option<f64>,
}

fn unreachable_backend(e: gloo_net::Error) -> String {
    format!("cannot reach Porta ({e})")
}

/// The message of a non-2xx answer.
async fn error_of(resp: Response) -> String {
    match resp.json::<ApiError>().await {
        Ok(e) => e.error.message,
        Err(_) => format!("Porta answered HTTP {}", resp.status()),
    }
}

async fn session_from(resp: Response) -> Result<Session, String> {
    if !resp.ok() {
        return Err(error_of(resp).await);
    }
    let auth: AuthResponse = resp.json().await.map_err(|e| format!("unexpected answer: {e}"))?;
    Ok(Session { token: auth.access_token, user: auth.user })
}

/// Whether no user exists yet, so the first-run set-up must be shown.
pub async fn setup_required() -> Result<bool, String> {
    let resp = Request::get("/api/auth/status").send().await.map_err(unreachable_backend)?;
    if !resp.ok() {
        return Err(error_of(resp).await);
    }
    let status: AuthStatus = resp.json().await.map_err(|e| format!("unexpected answer: {e}"))?;
    Ok(status.setup_required)
}

pub async fn login(username: &str, password: &str) -> Result<Session, String> {
    credentials("/api/auth/login", username, password).await
}

/// First run: creates the admin and signs in.
pub async fn setup(username: &str, password: &str) -> Result<Session, String> {
    credentials("/api/auth/setup", username, password).await
}

async fn credentials(path: &str, username: &str, password: &str) -> Result<Session, String> {
    let body = LoginRequest { username: username.to_owned(), password: password.to_owned() };
    let resp = Request::post(path).json(&body).map_err(|e| e.to_string())?.send().await.map_err(unreachable_backend)?;
    session_from(resp).await
}

/// A new session from the refresh cookie, if the browser holds a live one.
pub async fn refresh() -> Option<Session> {
    let resp = Request::post("/api/auth/refresh").send().await.ok()?;
    session_from(resp).await.ok()
}

pub async fn logout() {
    let _ = Request::post("/api/auth/logout").send().await;
}

/// Runs a GraphQL query and decodes `data.<field>`.
async fn graphql<T: DeserializeOwned>(token: &str, query: &str, field: &str) -> Result<T, String> {
    let resp = Request::post("/graphql")
        .header("Authorization", &format!("Bearer {token}"))
        .json(&json!({ "query": query }))
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(unreachable_backend)?;
    if !resp.ok() {
        return Err(error_of(resp).await);
    }
    let mut body: Value = resp.json().await.map_err(|e| format!("unexpected answer: {e}"))?;
    if let Some(message) = body["errors"][0]["message"].as_str() {
        return Err(message.to_owned());
    }
    serde_json::from_value(body["data"][field].take()).map_err(|e| format!("unexpected answer: {e}"))
}

pub async fn servers(token: &str) -> Result<Vec<Server>, String> {
    graphql(token, "{ servers { id name online os arch lastSeenMs } }", "servers").await
}

/// A one-time token for a new server, with the line to run there.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrollment {
    pub command: String,
    pub install_snippet: String,
    pub expires_at_ms: f64,
}

pub async fn create_enrollment(token: &str) -> Result<Enrollment, String> {
    let q = "mutation { createEnrollmentToken { command installSnippet expiresAtMs } }";
    graphql(token, q, "createEnrollmentToken").await
}
