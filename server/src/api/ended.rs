//! Processes that end: `POST /api/v1/agents/{instance}/final`, an agent's last counters as
//! its process ends, and `POST /api/v1/services/{service}/collect?instance=ID`, a counters
//! file an agent kept in `LIVECOV_DIR` (`crate::exited` does both).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{AdminToken, AgentToken, ApiPath, ApiQuery, JsonBody};
use crate::App;
use crate::error::ApiError;
use crate::json::Json;
use crate::types::{Ended, FinalDelivery};

/// The largest body of either: the counters of a build of millions of blocks, all of them
/// hit, fit with room to spare.
pub const MAX_COUNTERS: usize = 16 << 20;

pub fn body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_COUNTERS)
}

pub async fn deliver(
    State(app): State<Arc<App>>,
    _: AgentToken,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiPath(instance): ApiPath<String>,
    JsonBody(d): JsonBody<FinalDelivery>,
) -> Result<Json<Ended>, ApiError> {
    let forwarded = headers
        .get("x-forwarded-for")
        .map(|v| v.to_str())
        .transpose()
        .map_err(|_| ApiError::BadRequest("X-Forwarded-For is not ASCII".into()))?;
    Ok(Json(
        crate::exited::deliver(&app, peer, forwarded, &instance, d).await?,
    ))
}

#[derive(Deserialize)]
pub struct CollectParams {
    instance: Option<String>,
}

pub async fn collect(
    State(app): State<Arc<App>>,
    _: AdminToken,
    ApiPath(service): ApiPath<String>,
    ApiQuery(params): ApiQuery<CollectParams>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Ended>, ApiError> {
    let Some(instance) = params.instance else {
        return Err(ApiError::BadRequest(
            "name the instance the counters are of: ?instance=ID (the file is \
             <service>-<instance>.lcc)"
                .into(),
        ));
    };
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!("counters are at most {MAX_COUNTERS} bytes"))
        } else {
            ApiError::BadRequest(format!("reading the request body: {e}"))
        }
    })?;
    Ok(Json(
        crate::exited::collect(&app, &service, &instance, &body).await?,
    ))
}
