//! Agent-dialed connections (`crate::channel`): `POST /api/v1/agents/{instance}/channel`, an
//! agent's long poll for the server's next request, and `POST …/channel/{id}`, its answer.
//! Both carry the agent token, if the server has one, and the instance's secret in
//! `Livecov-Secret`: a poll's is checked as a heartbeat's (it also keeps the instance live),
//! an answer's against the poll's that took its request.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{AgentToken, ApiPath};
use crate::App;
use crate::channel::{Awaited, Mode, Reply};
use crate::error::ApiError;
use crate::json::Json;
use crate::registry;

/// Answers are bounded by what their request accepts, not by the API's default limit.
pub fn body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::disable()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| v.to_str())
        .transpose()
        .map_err(|_| ApiError::BadRequest(format!("{name} is not ASCII")))
}

/// Refuses everything under `--agent-channel never`.
fn open(app: &App) -> Result<(), ApiError> {
    if app.config.agent_channel == Mode::Never {
        return Err(ApiError::Conflict(
            "this server reads agents only by pulling them (--agent-channel never)".into(),
        ));
    }
    Ok(())
}

/// Checks the instance's secret as a heartbeat does (and counts as one).
async fn check(
    app: &App,
    peer: SocketAddr,
    instance: &str,
    secret: Option<&str>,
) -> Result<(), ApiError> {
    registry::heartbeat(app, peer, instance, secret, true).await?;
    Ok(())
}

pub async fn poll(
    State(app): State<Arc<App>>,
    _: AgentToken,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiPath(instance): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    open(&app)?;
    let secret = header(&headers, "livecov-secret")?;
    check(&app, peer, &instance, secret).await?;
    let wait = app.config.channel_wait;
    Ok(
        match app.agents.channels.poll(&instance, wait, secret).await {
            Some(request) => Json(request).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    )
}

pub async fn answer(
    State(app): State<Arc<App>>,
    _: AgentToken,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiPath((instance, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    open(&app)?;
    let secret = header(&headers, "livecov-secret")?;
    let channels = &app.agents.channels;
    // The secret is checked against the poll's that took the request, in memory; anything
    // else is checked as a heartbeat, so that a stranger learns nothing of which requests
    // wait.
    let limit = match channels.awaited(&instance, &id, secret) {
        Awaited::Yes(limit) => limit,
        Awaited::WrongSecret | Awaited::No => {
            check(&app, peer, &instance, secret).await?;
            return Err(ApiError::NotFound(format!(
                "no request {id:?} of instance {instance:?} waits for an answer (it timed out)"
            )));
        }
    };
    let status = header(&headers, "livecov-status")?
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| {
            ApiError::BadRequest("Livecov-Status: want the agent's HTTP status".into())
        })?;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::PayloadTooLarge(format!(
            "the answer broke off or is over the {limit} bytes its request accepts"
        ))
    })?;
    let raw = |name: &str| headers.get(name).map(|v| v.as_bytes().to_vec());
    let reply = Reply {
        status,
        build: raw("livecov-build"),
        epoch: raw("livecov-epoch"),
        body: body.to_vec(),
    };
    if channels.answer(&instance, &id, reply) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "no request {id:?} of instance {instance:?} waits for an answer (it timed out)"
        )))
    }
}
