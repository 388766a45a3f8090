//! Bearer tokens and secrets: the admin token guards the endpoints that change something, the
//! agent token guards registration and heartbeats, and an instance's own secret guards what
//! changes that instance's registration.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::error::ApiError;

/// Checks `Authorization: Bearer <token>` against `want`; anything goes when `want` is None.
pub fn check(headers: &HeaderMap, want: Option<&str>, what: &str) -> Result<(), ApiError> {
    let Some(want) = want else {
        return Ok(());
    };
    let got = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let ok = crate::secret::same(got, want);
    if ok {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(format!(
            "missing or wrong bearer token: this endpoint needs the {what} token"
        )))
    }
}
