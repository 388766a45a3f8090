//! `PUT /api/v1/builds/{build}` and `PUT /api/v1/builds/{build}/sources`: the HTTP side of
//! [`crate::sources`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::{ApiPath, UploadToken};
use crate::App;
use crate::error::ApiError;
use crate::json::Json;
use crate::meta::is_build_id;
use crate::sources::{self, MAX_UPLOAD, Uploaded};

/// The body limit of the upload routes.
pub fn body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_UPLOAD)
}

/// An upload for a build: the request carries the admin or the agent token ([`UploadToken`]), the path a build
/// id, and the body is read whole (up to [`MAX_UPLOAD`]).
pub struct Upload {
    pub build: String,
    pub body: Bytes,
}

impl FromRequest<Arc<App>> for Upload {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Upload, ApiError> {
        let (mut parts, body) = req.into_parts();
        UploadToken::from_request_parts(&mut parts, app).await?;
        let ApiPath(build) = ApiPath::<String>::from_request_parts(&mut parts, app).await?;
        check_id(&build)?;
        let req = Request::from_parts(parts, body);
        let body = Bytes::from_request(req, app).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!("an upload is at most {MAX_UPLOAD} bytes"))
            } else {
                ApiError::BadRequest(format!("reading the request body: {e}"))
            }
        })?;
        Ok(Upload { build, body })
    }
}

fn check_id(build: &str) -> Result<(), ApiError> {
    if is_build_id(build) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "build {build:?}: want a build id, 64 lowercase hex digits"
        )))
    }
}

/// `PUT /api/v1/builds/{build}`: the build's metadata, exactly as its agent serves it at
/// `/livecov/v1/meta` (gzip JSON); 201 when it is new.
pub async fn put_build(
    State(app): State<Arc<App>>,
    Upload { build, body }: Upload,
) -> Result<impl IntoResponse, ApiError> {
    let (uploaded, new) = sources::put_build(&app, build, body.to_vec()).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(uploaded)))
}

/// `PUT /api/v1/builds/{build}/sources`: sources of files of a stored build, a gzip
/// [`SourceUpload`](crate::sources::SourceUpload), checked by [`sources::put_sources`].
pub async fn put_sources(
    State(app): State<Arc<App>>,
    Upload { build, body }: Upload,
) -> Result<Json<Uploaded>, ApiError> {
    Ok(Json(
        sources::put_sources(&app, build, body.to_vec()).await?,
    ))
}
