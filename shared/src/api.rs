//! JSON bodies of the REST endpoints under `/api` (everything that is neither GraphQL nor a
//! stream).

use serde::{Deserialize, Serialize};

use crate::envelope::ErrorBody;

/// `POST /api/auth/login` and `POST /api/auth/setup` (first run: creates the admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// A signed-in user, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: String,
    pub username: String,
    pub is_admin: bool,
}

/// The reply to login, setup and refresh. The refresh token travels only in an HttpOnly
/// cookie, never in a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResponse {
    pub access_token: String,
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: UserInfo,
}

/// `GET /api/auth/status`: whether the first-run set-up is still open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthStatus {
    pub setup_required: bool,
}

/// `POST /api/ws/ticket`: a single-use ticket for opening `/api/ws?ticket=…`, so the access
/// token never appears in a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WsTicket {
    pub ticket: String,
    pub expires_in: u64,
}

/// `GET /api/invitations/{token}`: what an invitation link offers (answered without signing
/// in: the link's secret is the permission).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationView {
    pub team_id: String,
    pub team: String,
    /// `owner`, `admin`, `developer` or `viewer`.
    pub role: String,
    pub invited_by: String,
    pub expires_at_ms: i64,
}

/// `POST /api/invitations/{token}/accept`. Signed in (an access token is sent): joins as that
/// user, with an empty body. Otherwise a new account is made with these credentials, joins,
/// and is signed in (the reply is then an [`AuthResponse`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptInvitation {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

/// The reply to accepting an invitation as a signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub team_id: String,
    pub role: String,
}

/// Every non-2xx JSON response of the REST API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: ErrorBody,
}
