//! `PUT /api/v1/builds/{build}` and `PUT /api/v1/builds/{build}/sources`: the HTTP side of
//! [`crate::sources`].

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::{ApiPath, UploadToken};
use crate::App;
use crate::error::ApiError;
use crate::meta::{Build, is_build_id};
use crate::sources::{MAX_UPLOAD, Uploaded, check, decode};

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
/// `/livecov/v1/meta` (gzip JSON).
pub async fn put_build(
    State(app): State<Arc<App>>,
    Upload { build, body }: Upload,
) -> Result<impl IntoResponse, ApiError> {
    let id = build.clone();
    let parsed = tokio::task::spawn_blocking(move || Build::from_gzip(body.to_vec(), &id))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::BadRequest(format!("metadata of build {build}: {e}")))?;
    let existed = app.store.build_meta(&build).await?.is_some();
    app.store.insert_build(&parsed).await?;
    let sources = app
        .store
        .source_files(std::slice::from_ref(&build))
        .await?
        .len();
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(Uploaded {
            build,
            files: parsed.meta.files.len(),
            sources,
            stored: 0,
        }),
    ))
}

/// `PUT /api/v1/builds/{build}/sources`: sources of files of a stored build, a gzip
/// [`SourceUpload`]. All are checked before any is stored; one that does not match the build
/// rejects the upload.
pub async fn put_sources(
    State(app): State<Arc<App>>,
    Upload { build, body }: Upload,
) -> Result<impl IntoResponse, ApiError> {
    let Some(gz) = app.store.build_meta(&build).await? else {
        return Err(ApiError::NotFound(format!(
            "build {build} is unknown: PUT its metadata to /api/v1/builds/{build} first \
             (livecov build --upload-sources does both)"
        )));
    };
    let id = build.clone();
    let checked = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let meta = Build::from_stored_gzip(gz, &id)
            .map_err(|e| ApiError::internal(format!("stored metadata of build {id}: {e}")))?;
        let upload = decode(&body)?;
        let files = check(&meta, upload)?;
        Ok((meta.meta.files.len(), files))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let (total, files) = checked;
    let stored = app.store.insert_sources(&build, &files).await?;
    let sources = app
        .store
        .source_files(std::slice::from_ref(&build))
        .await?
        .len();
    Ok(Json(Uploaded {
        build,
        files: total,
        sources,
        stored,
    }))
}
