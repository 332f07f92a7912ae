//! Talking to the backend: REST for signing in, GraphQL for data.
//!
//! The access token lives only in memory; a page reload gets a new one through the HttpOnly
//! refresh cookie, which script cannot read. No token is ever put in a URL.

use gloo_net::http::{Request, Response};
use porta_shared::api::{
    AcceptInvitation, ApiError, AuthResponse, AuthStatus, InvitationView, Joined, LoginRequest, UserInfo, WsTicket,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A signed-in user and their current access token.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub token: String,
    pub user: UserInfo,
    /// When the access token was issued and expires (browser clock, ms since the epoch).
    pub issued_at_ms: f64,
    pub expires_at_ms: f64,
}

impl Session {
    /// When to renew the token: a minute before it expires, or after three quarters of its
    /// life when it lives less than four minutes.
    pub fn renew_at_ms(&self) -> f64 {
        let life = self.expires_at_ms - self.issued_at_ms;
        self.expires_at_ms - (life / 4.0).min(60_000.0)
    }
}

/// Why a call failed: the session is no longer valid, or anything else (with its message).
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    SignedOut,
    Other(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self::Other(message)
    }
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
    pub workspace_id: Option<String>,
    pub team_id: String,
    /// The user's role on it: `owner`, `admin`, `developer` or `viewer`.
    pub role: String,
    /// Its bridge's version.
    #[serde(default)]
    pub version: Option<String>,
    /// A newer bridge Porta carries for it (`update_server` installs it).
    #[serde(default)]
    pub update_to: Option<String>,
    /// Why its bridge was turned away (no protocol in common), and what to do.
    #[serde(default)]
    pub update_needed: Option<String>,
}

impl Server {
    /// Viewers watch terminals and read files; they cannot type or change anything.
    pub fn read_only(&self) -> bool {
        self.role == "viewer"
    }
}

const SERVER_FIELDS: &str = "id name online os arch lastSeenMs workspaceId teamId role version updateTo updateNeeded";

/// What a request that got no answer at all says. The browser's own words ("TypeError:
/// Failed to fetch") mean nothing to a person; they go to the console for whoever debugs.
fn unreachable_backend(e: gloo_net::Error) -> String {
    leptos::logging::warn!("a request to Porta got no answer: {e}");
    "cannot reach Porta: the network or Porta is down".to_owned()
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
    let issued_at_ms = js_sys::Date::now();
    let expires_at_ms = issued_at_ms + auth.expires_in as f64 * 1000.0;
    Ok(Session { token: auth.access_token, user: auth.user, issued_at_ms, expires_at_ms })
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

/// A new session from the refresh cookie. `SignedOut` when the browser holds no live one.
pub async fn refresh() -> Result<Session, Failure> {
    let resp = Request::post("/api/auth/refresh").send().await.map_err(unreachable_backend)?;
    if resp.status() == 401 {
        return Err(Failure::SignedOut);
    }
    Ok(session_from(resp).await?)
}

pub async fn logout() {
    let _ = Request::post("/api/auth/logout").send().await;
}

/// Changes the password: every sign-in ends, and this one gets a new session.
pub async fn change_password(token: &str, current: &str, new: &str) -> Result<Session, String> {
    let resp = Request::post("/api/auth/password")
        .header("Authorization", &format!("Bearer {token}"))
        .json(&json!({ "current": current, "new": new }))
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(unreachable_backend)?;
    session_from(resp).await
}

/// Ends every sign-in of the user, this one included.
pub async fn logout_everywhere(token: &str) -> Result<(), String> {
    let resp = Request::post("/api/auth/logout-all")
        .header("Authorization", &format!("Bearer {token}"))
        .send()
        .await
        .map_err(unreachable_backend)?;
    if resp.ok() { Ok(()) } else { Err(error_of(resp).await) }
}

/// Runs a GraphQL query and decodes `data.<field>`.
pub(crate) async fn graphql<T: DeserializeOwned>(
    token: &str,
    query: &str,
    variables: Value,
    field: &str,
) -> Result<T, String> {
    // Only the last step depends on `T`: the request is made by one function, not one copy
    // per answer's type (each a state machine of its own in the page's code).
    let data = graphql_data(token, query, variables, field).await?;
    serde_json::from_value(data).map_err(|e| format!("unexpected answer: {e}"))
}

/// `data.<field>` of a GraphQL answer, or its first error's message.
async fn graphql_data(token: &str, query: &str, variables: Value, field: &str) -> Result<Value, String> {
    let resp = Request::post("/graphql")
        .header("Authorization", &format!("Bearer {token}"))
        .json(&json!({ "query": query, "variables": variables }))
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
    Ok(body["data"][field].take())
}

/// A single-use ticket for opening the stream socket (the access token stays out of URLs).
pub async fn ws_ticket(token: &str) -> Result<String, Failure> {
    let resp = Request::post("/api/ws/ticket")
        .header("Authorization", &format!("Bearer {token}"))
        .send()
        .await
        .map_err(unreachable_backend)?;
    if resp.status() == 401 {
        return Err(Failure::SignedOut);
    }
    if !resp.ok() {
        return Err(Failure::Other(error_of(resp).await));
    }
    let ticket: WsTicket = resp.json().await.map_err(|e| format!("unexpected answer: {e}"))?;
    Ok(ticket.ticket)
}

pub async fn server(token: &str, id: &str) -> Result<Option<Server>, String> {
    let q = format!("query($id: String!) {{ server(id: $id) {{ {SERVER_FIELDS} }} }}");
    graphql(token, &q, json!({ "id": id }), "server").await
}

pub async fn servers(token: &str) -> Result<Vec<Server>, String> {
    graphql(token, &format!("{{ servers {{ {SERVER_FIELDS} }} }}"), json!({}), "servers").await
}

/// A bridge update: the version before and the one it became.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BridgeUpdate {
    pub from: String,
    pub to: String,
}

/// Makes the server's bridge the one Porta carries; answers once the new binary is in place.
pub async fn update_server(token: &str, server: &str) -> Result<BridgeUpdate, String> {
    let q = "mutation($id: String!) { updateServer(id: $id) { from to } }";
    graphql(token, q, json!({ "id": server }), "updateServer").await
}

/// Updates every out-of-date online server of a workspace; how many updates began.
pub async fn update_workspace_servers(token: &str, workspace: &str) -> Result<i32, String> {
    let q = "mutation($w: String!) { updateWorkspaceServers(workspaceId: $w) }";
    graphql(token, q, json!({ "w": workspace }), "updateWorkspaceServers").await
}

/// A one-time token for a new server, with the line to run there.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrollment {
    /// For a server where `porta-bridge` is already installed.
    pub command: String,
    pub install_snippet: String,
    /// The one line that installs the bridge too; none when the backend carries no bridges.
    pub install_command: Option<String>,
    /// Where the new server must reach Porta.
    pub server_url: String,
    pub architectures: Vec<String>,
    pub expires_at_ms: f64,
}

/// An enrolment token for a server joining `workspace`.
pub async fn create_enrollment(token: &str, workspace: &str) -> Result<Enrollment, String> {
    let q = "mutation($w: String!) { createEnrollmentToken(workspaceId: $w) { command installSnippet installCommand serverUrl architectures expiresAtMs } }";
    graphql(token, q, json!({ "w": workspace }), "createEnrollmentToken").await
}

/// `GET url` as the signed-in user; the response when it is a success.
async fn get_signed_in(token: &str, url: &str) -> Result<Response, String> {
    let resp = Request::get(url)
        .header("Authorization", &format!("Bearer {token}"))
        .send()
        .await
        .map_err(unreachable_backend)?;
    if !resp.ok() {
        return Err(error_of(resp).await);
    }
    Ok(resp)
}

/// A terminal recording (asciicast v2).
pub async fn recording(token: &str, id: &str) -> Result<String, String> {
    let url = format!("/api/recordings/{}", String::from(js_sys::encode_uri_component(id)));
    let resp = get_signed_in(token, &url).await?;
    resp.text().await.map_err(|e| format!("the recording broke off: {e}"))
}

/// What an invitation link offers (asked without signing in).
pub async fn invitation(secret: &str) -> Result<InvitationView, String> {
    let url = format!("/api/invitations/{}", String::from(js_sys::encode_uri_component(secret)));
    let resp = Request::get(&url).send().await.map_err(unreachable_backend)?;
    if !resp.ok() {
        return Err(error_of(resp).await);
    }
    resp.json().await.map_err(|e| format!("unexpected answer: {e}"))
}

/// Accepts an invitation: as the signed-in user (`token`), or by making an account (`creds`),
/// which is then signed in (the session comes back).
pub async fn accept_invitation(
    secret: &str,
    token: Option<&str>,
    creds: Option<(&str, &str)>,
) -> Result<Option<Session>, String> {
    let url = format!("/api/invitations/{}/accept", String::from(js_sys::encode_uri_component(secret)));
    let mut req = Request::post(&url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let body =
        AcceptInvitation { username: creds.map(|(u, _)| u.to_owned()), password: creds.map(|(_, p)| p.to_owned()) };
    let resp = req.json(&body).map_err(|e| e.to_string())?.send().await.map_err(unreachable_backend)?;
    if token.is_some() {
        if !resp.ok() {
            return Err(error_of(resp).await);
        }
        let _: Joined = resp.json().await.map_err(|e| format!("unexpected answer: {e}"))?;
        return Ok(None);
    }
    session_from(resp).await.map(Some)
}

/// Limits this Porta is configured with.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Larger files open read-only in the editor.
    pub editor_max_bytes: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { editor_max_bytes: 10.0 * 1024.0 * 1024.0 }
    }
}

pub async fn limits(token: &str) -> Result<Limits, String> {
    graphql(token, "{ limits { editorMaxBytes } }", json!({}), "limits").await
}

/// One audit event.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub seq: i64,
    pub at_ms: f64,
    pub actor: Option<String>,
    pub actor_name: Option<String>,
    pub source: Option<String>,
    pub server_id: Option<String>,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub workspace_id: Option<String>,
    #[serde(default)]
    pub workspace_name: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub result: String,
    pub detail: Option<String>,
}

/// Which audit events to show; empty fields match everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditFilter {
    pub actor: String,
    pub server: String,
    /// Exact, or a prefix ending in `.`.
    pub action: String,
    pub since_ms: Option<f64>,
    pub until_ms: Option<f64>,
}

impl AuditFilter {
    fn non_empty(s: &str) -> Option<&str> {
        Some(s.trim()).filter(|s| !s.is_empty())
    }

    /// As GraphQL variables.
    fn variables(&self, before_seq: Option<i64>) -> Value {
        json!({
            "actor": Self::non_empty(&self.actor),
            "server": Self::non_empty(&self.server),
            "action": Self::non_empty(&self.action),
            "since": self.since_ms.map(|m| m as i64),
            "until": self.until_ms.map(|m| m as i64),
            "before": before_seq,
        })
    }

    /// As the export's query string.
    pub fn query_string(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [("actor", &self.actor), ("server", &self.server), ("action", &self.action)] {
            if let Some(v) = Self::non_empty(v) {
                parts.push(format!("{k}={}", String::from(js_sys::encode_uri_component(v))));
            }
        }
        for (k, v) in [("since_ms", self.since_ms), ("until_ms", self.until_ms)] {
            if let Some(v) = v {
                parts.push(format!("{k}={}", v as i64));
            }
        }
        parts.join("&")
    }
}

pub async fn audit_log(token: &str, filter: &AuditFilter, before_seq: Option<i64>) -> Result<Vec<AuditEntry>, String> {
    let q = "query($actor: String, $server: String, $action: String, $since: Int64, $until: Int64, $before: Int64) {
        auditLog(actor: $actor, serverId: $server, action: $action, sinceMs: $since, untilMs: $until,
                 beforeSeq: $before, limit: 100) {
            seq atMs actor actorName source serverId serverName workspaceId workspaceName action target result detail
        }
    }";
    graphql(token, q, filter.variables(before_seq), "auditLog").await
}

/// Whether the audit log's chain holds.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditCheck {
    pub intact: bool,
    pub events: f64,
    pub broken_at: Option<i64>,
    pub reason: Option<String>,
}

pub async fn audit_verify(token: &str) -> Result<AuditCheck, String> {
    graphql(token, "{ auditVerify { intact events brokenAt reason } }", json!({}), "auditVerify").await
}

/// The audit log (as the filter picks it) exported as `jsonl` or `csv`.
pub async fn audit_export(token: &str, filter: &AuditFilter, format: &str) -> Result<Vec<u8>, String> {
    let url = format!("/api/audit/export?format={format}&{}", filter.query_string());
    let resp = get_signed_in(token, &url).await?;
    resp.binary().await.map_err(|e| format!("the export broke off: {e}"))
}

/// A personal API token, as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub hint: String,
    pub scopes: Vec<String>,
    pub created_ms: f64,
    pub expires_ms: Option<f64>,
    pub last_used_ms: Option<f64>,
    pub revoked_ms: Option<f64>,
    /// The one workspace it reaches, if limited.
    pub workspace_id: Option<String>,
}

const TOKEN_FIELDS: &str = "id name hint scopes createdMs expiresMs lastUsedMs revokedMs workspaceId";

pub async fn api_tokens(token: &str) -> Result<Vec<ApiToken>, String> {
    graphql(token, &format!("{{ apiTokens {{ {TOKEN_FIELDS} }} }}"), json!({}), "apiTokens").await
}

/// A new token's secret (shown once) and its listing.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ApiTokenCreated {
    pub token: String,
    pub info: ApiToken,
}

pub async fn create_api_token(
    token: &str,
    name: &str,
    scopes: &[&str],
    expires_in_days: Option<u32>,
    workspace: Option<&str>,
) -> Result<ApiTokenCreated, String> {
    let q = format!(
        "mutation($name: String!, $scopes: [String!]!, $days: Int, $ws: String) {{
            createApiToken(name: $name, scopes: $scopes, expiresInDays: $days, workspaceId: $ws) {{
                token info {{ {TOKEN_FIELDS} }}
            }}
        }}"
    );
    let vars = json!({ "name": name, "scopes": scopes, "days": expires_in_days, "ws": workspace });
    graphql(token, &q, vars, "createApiToken").await
}

pub async fn revoke_api_token(token: &str, id: &str) -> Result<bool, String> {
    let q = "mutation($id: String!) { revokeApiToken(id: $id) }";
    graphql(token, q, json!({ "id": id }), "revokeApiToken").await
}
