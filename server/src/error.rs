//! Errors as the API answers them: a status and `{"error": "..."}`. The domain's errors
//! become one here, at the edge; a server error's cause (a database's message, a stored
//! record that does not decode) is logged with its whole chain and never sent.

use crate::json::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;
use crate::types::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, or not needing to be, and still not allowed.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A quota or a rate is exceeded; nothing changed.
    #[error("{0}")]
    TooMany(String),
    /// No instance answered usably.
    #[error("{0}")]
    BadGateway(String),
    /// The database is unreachable; the request changed nothing (or says what it kept).
    #[error("{message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// Something that should not fail did: `message` is what the client is told, `source`
    /// what the log says.
    #[error("{message}")]
    Internal {
        message: String,
        #[source]
        source: Option<Cause>,
    },
}

/// The cause of a server error, kept for the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// What a client reads of an internal error.
pub const INTERNAL: &str = "internal error (the server's log says more)";

impl ApiError {
    /// An internal error: the client is told only that one happened.
    pub fn internal(source: impl Into<Cause>) -> ApiError {
        ApiError::Internal {
            message: INTERNAL.into(),
            source: Some(source.into()),
        }
    }
}

/// An error with its causes, `: `-separated, for logs.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<report::FormatError> for ApiError {
    fn from(e: report::FormatError) -> ApiError {
        ApiError::BadRequest(e.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let message = e.to_string();
        if e.is_unavailable() {
            ApiError::Unavailable {
                message,
                source: Some(Box::new(e)),
            }
        } else {
            ApiError::Internal {
                message,
                source: Some(Box::new(e)),
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %Chain(&self), "request failed");
        }
        let mut resp = (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"livecov\""),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// A database's message is kept as the cause, for the log, and not in what clients read.
    #[test]
    fn store_errors_keep_their_cause_out_of_the_answer() {
        let e = ApiError::from(StoreError::Query(sqlx::Error::Protocol(
            "relation \"secret_table\" does not exist".into(),
        )));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.to_string(), "database error");
        let chain = Chain(&e).to_string();
        assert!(chain.contains("secret_table"), "{chain}");
        assert!(e.source().is_some());
        let e = ApiError::from(StoreError::Unavailable(sqlx::Error::PoolTimedOut));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.to_string(), "database unavailable");
        let e = ApiError::internal("stored build x: bad gzip");
        assert!(!e.to_string().contains("bad gzip"));
        assert!(Chain(&e).to_string().contains("bad gzip"));
    }
}
