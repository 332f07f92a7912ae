//! The backend's one error type, and how it becomes an HTTP response with a stable code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use porta_shared::api::ApiError;
use porta_shared::{ErrorBody, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// An error already in wire form (e.g. a bridge's reply).
    #[error("{0}")]
    Wire(ErrorBody),
    #[error(transparent)]
    Db(#[from] crate::db::StoreError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Wire(e) => e.code,
            Self::Db(crate::db::StoreError::Unavailable(_)) => ErrorCode::Unavailable,
            Self::Db(_) | Self::Other(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self.code() {
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::OutsideRoot | ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::NotFound | ErrorCode::UnknownTerminal | ErrorCode::UnknownStream => StatusCode::NOT_FOUND,
            ErrorCode::Conflict | ErrorCode::AlreadyExists => StatusCode::CONFLICT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::ServerOffline | ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Internal | ErrorCode::Io | ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The error as clients see it. Internal errors are logged here, once, and reported
    /// without detail.
    pub fn to_body(&self) -> ErrorBody {
        match self {
            Self::Db(crate::db::StoreError::Unavailable(why)) => {
                tracing::warn!(error = %why, "the database is unavailable");
                ErrorBody::new(ErrorCode::Unavailable, "the database is unavailable; try again in a moment")
            }
            Self::Db(_) | Self::Other(_) => {
                tracing::error!(error = ?self, "internal error");
                ErrorBody::new(ErrorCode::Internal, "internal error")
            }
            Self::Wire(e) => e.clone(),
            other => ErrorBody::new(other.code(), other.to_string()),
        }
    }
}

impl From<ErrorBody> for Error {
    fn from(e: ErrorBody) -> Self {
        Self::Wire(e)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut resp = (status, Json(ApiError { error: self.to_body() })).into_response();
        if let Self::RateLimited { retry_after_secs } = self {
            if let Ok(v) = retry_after_secs.to_string().parse() {
                resp.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
