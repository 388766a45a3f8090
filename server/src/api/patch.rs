//! Patch coverage of a stored snapshot: `POST /api/v1/snapshots/{id}/patch`, the unified
//! diff in the body parsed into a [`report::patch::Patch`] and answered by
//! [`export::patch_coverage`] or [`export::patch_export`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiPath, ApiQuery, parse_id};
use crate::App;
use crate::error::ApiError;
use crate::export;
use crate::json::Json;
use report::patch::{answer_format, parse};

/// Patches are often larger than other request bodies: this route takes up to this much (or
/// the server's body limit, if that is larger).
pub const MAX_PATCH: usize = 8 << 20;

/// The body limit of the patch route, given the server's limit for other bodies.
pub fn body_limit(max_body: usize) -> DefaultBodyLimit {
    DefaultBodyLimit::max(max_body.max(MAX_PATCH))
}

#[derive(Deserialize)]
pub struct PatchParams {
    module: Option<String>,
    format: Option<String>,
    strip: Option<String>,
    source: Option<String>,
}

/// `POST /api/v1/snapshots/{id}/patch[?module=PREFIX&format=json|lcov|cobertura&strip=PREFIX&source=DIR]`,
/// the patch (a unified diff) as the raw body.
pub async fn handler(
    State(app): State<Arc<App>>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<PatchParams>,
    req: Request,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let format = answer_format(params.format.as_deref())?;
    let body = Bytes::from_request(req, &()).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "the diff is over {} bytes",
                app.config.max_body.max(MAX_PATCH)
            ))
        } else {
            ApiError::BadRequest(format!("reading the request body: {e}"))
        }
    })?;
    let module = params
        .module
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let patch =
        parse(&String::from_utf8_lossy(&body)).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let Some(format) = format else {
        let coverage = export::patch_coverage(&app, id, &patch, module).await?;
        return Ok(Json(coverage).into_response());
    };
    let options = report::Options {
        strip: params.strip,
        source: params.source,
    };
    let text = export::patch_export(&app, id, &patch, module, format, &options).await?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], text).into_response())
}
