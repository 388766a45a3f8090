//! Bearer tokens: the admin token guards the endpoints that change something, the agent token
//! guards registration and heartbeats.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};

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
    // Comparing digests keeps the comparison's time independent of where the tokens differ.
    let ok = got.is_some_and(|got| Sha256::digest(got) == Sha256::digest(want));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(format!(
            "missing or wrong bearer token: this endpoint needs the {what} token"
        )))
    }
}
