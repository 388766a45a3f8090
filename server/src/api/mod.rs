//! The HTTP API: the route table (one list of [`Endpoint`]s per [`Area`], the dashboard's
//! from `web`; [`router`] is built from it and [`routes`] lists it) and thin handlers over
//! the registry, snapshot, round, diff, export, patch and sources modules. Every error is
//! `{"error": "..."}` with a fitting status (`error`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::json::Json;
use serde::Deserialize;

mod channel;
mod cross_site;
mod ended;
mod errors;
mod extract;
mod patch;
mod sources;

pub use crate::route::{Area, Endpoint, Route};
pub use extract::{AdminToken, AgentToken, ApiPath, ApiQuery, JsonBody, OptionalJson, UploadToken};

use crate::error::ApiError;
use crate::export;
use crate::registry;
use crate::round;
use crate::snapshot::{self, Against};
use crate::types::{
    ServiceDetail, ServiceList, SessionList, SessionRequest, SnapshotList, SnapshotRequest,
};
use crate::{App, Config};
use report::Format;

type AppState = State<Arc<App>>;

/// Every route of the server, area by area, in the order [`router`] adds them.
pub fn routes() -> Vec<Route> {
    areas(Config::default().max_body)
        .into_iter()
        .flatten()
        .map(|e| e.route)
        .collect()
}

/// The route table: one list of endpoints per area.
fn areas(max_body: usize) -> Vec<Vec<Endpoint>> {
    vec![
        agents(),
        snapshots(),
        exports(max_body),
        builds(),
        crate::web::endpoints(),
        ops(),
    ]
}

fn agents() -> Vec<Endpoint> {
    use Area::Agents;
    vec![
        Endpoint::new(Agents, Method::POST, "/api/v1/agents/register", register),
        Endpoint::new(
            Agents,
            Method::POST,
            "/api/v1/agents/{instance}/heartbeat",
            heartbeat,
        ),
        Endpoint::new(
            Agents,
            Method::POST,
            "/api/v1/agents/{instance}/channel",
            channel::poll,
        ),
        Endpoint::new(
            Agents,
            Method::POST,
            "/api/v1/agents/{instance}/channel/{id}",
            channel::answer,
        )
        .map(|h| h.layer(channel::body_limit())),
        Endpoint::new(
            Agents,
            Method::POST,
            "/api/v1/agents/{instance}/final",
            ended::deliver,
        )
        .map(|h| h.layer(ended::body_limit())),
        Endpoint::new(
            Agents,
            Method::POST,
            "/api/v1/services/{service}/collect",
            ended::collect,
        )
        .map(|h| h.layer(ended::body_limit())),
    ]
}

fn snapshots() -> Vec<Endpoint> {
    use Area::Snapshots;
    vec![
        Endpoint::new(Snapshots, Method::GET, "/api/v1/services", services),
        Endpoint::new(
            Snapshots,
            Method::GET,
            "/api/v1/services/{service}",
            service,
        ),
        Endpoint::new(
            Snapshots,
            Method::GET,
            "/api/v1/services/{service}/snapshots",
            list_snapshots,
        ),
        Endpoint::new(
            Snapshots,
            Method::POST,
            "/api/v1/services/{service}/snapshots",
            take_snapshot,
        ),
        Endpoint::new(
            Snapshots,
            Method::POST,
            "/api/v1/services/{service}/reset",
            reset,
        ),
        Endpoint::new(
            Snapshots,
            Method::GET,
            "/api/v1/snapshots/{id}",
            snapshot_detail,
        ),
        Endpoint::new(
            Snapshots,
            Method::GET,
            "/api/v1/services/{service}/sessions",
            list_sessions,
        ),
        Endpoint::new(
            Snapshots,
            Method::POST,
            "/api/v1/services/{service}/sessions",
            start_session,
        ),
        Endpoint::new(
            Snapshots,
            Method::POST,
            "/api/v1/services/{service}/sessions/{name}/stop",
            stop_session,
        ),
    ]
}

fn exports(max_body: usize) -> Vec<Endpoint> {
    use Area::Exports;
    vec![
        Endpoint::new(
            Exports,
            Method::GET,
            "/api/v1/snapshots/{id}/profile",
            profile,
        ),
        Endpoint::new(Exports, Method::GET, "/api/v1/snapshots/{a}/diff/{b}", diff),
        Endpoint::new(
            Exports,
            Method::GET,
            "/api/v1/services/{service}/cycle",
            cycle,
        ),
        Endpoint::new(
            Exports,
            Method::GET,
            "/api/v1/services/{service}/cycle/profile",
            cycle_profile,
        ),
        Endpoint::new(
            Exports,
            Method::POST,
            "/api/v1/snapshots/{id}/patch",
            patch::handler,
        )
        .map(|h| h.layer(patch::body_limit(max_body))),
    ]
}

fn builds() -> Vec<Endpoint> {
    use Area::Builds;
    vec![
        Endpoint::new(
            Builds,
            Method::PUT,
            "/api/v1/builds/{build}",
            sources::put_build,
        )
        .map(|h| h.layer(sources::body_limit())),
        Endpoint::new(
            Builds,
            Method::PUT,
            "/api/v1/builds/{build}/sources",
            sources::put_sources,
        )
        .map(|h| h.layer(sources::body_limit())),
    ]
}

fn ops() -> Vec<Endpoint> {
    use Area::Ops;
    vec![
        Endpoint::new(Ops, Method::GET, "/healthz", healthz),
        Endpoint::new(Ops, Method::GET, "/metrics", metrics),
        Endpoint::new(Ops, Method::GET, "/api/v1/openapi.json", openapi),
    ]
}

/// The router of one area: its endpoints, one `.route` each (a path's methods merge).
fn area_router(endpoints: Vec<Endpoint>) -> Router<Arc<App>> {
    endpoints.into_iter().fold(Router::new(), |router, e| {
        router.route(e.route.path, e.handler)
    })
}

/// The server's router: every area's router merged, with the API's fallbacks and limits.
pub fn router(app: Arc<App>) -> Router {
    let max_body = app.config.max_body;
    areas(max_body)
        .into_iter()
        .fold(Router::new(), |router, area| {
            router.merge(area_router(area))
        })
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("method not allowed on this endpoint".into())
        })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(cross_site::refuse))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}

fn parse_id(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|&id| id > 0)
        .ok_or_else(|| ApiError::BadRequest(format!("snapshot id {s:?}: want a positive integer")))
}

/// This API as an OpenAPI 3.1 document: `openapi.json`, by hand; `tests/openapi.rs` checks it.
async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
}

async fn healthz(State(app): AppState) -> Result<Json<serde_json::Value>, ApiError> {
    app.store.ping().await?;
    let pending = app.store.pending_boundaries(None).await?.len();
    Ok(Json(serde_json::json!({
        "status": "ok",
        "store": "up",
        "pending_boundaries": pending,
    })))
}

async fn metrics(State(app): AppState) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::exposition(&app).await,
    )
        .into_response()
}

async fn register(
    State(app): AppState,
    _: AgentToken,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    JsonBody(r): JsonBody<crate::types::Registration>,
) -> Result<impl IntoResponse, ApiError> {
    let forwarded = headers
        .get("x-forwarded-for")
        .map(|v| v.to_str())
        .transpose()
        .map_err(|_| ApiError::BadRequest("X-Forwarded-For is not ASCII".into()))?;
    Ok(Json(registry::register(&app, peer, forwarded, r).await?))
}

async fn heartbeat(
    State(app): AppState,
    _: AgentToken,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiPath(instance): ApiPath<String>,
    OptionalJson(beat): OptionalJson<crate::types::Heartbeat>,
) -> Result<impl IntoResponse, ApiError> {
    registry::heartbeat(&app, peer, &instance, beat.secret.as_deref(), false).await?;
    Ok(Json(crate::types::Beat {
        channel: app.agents.channels.wanted(&instance),
    }))
}

#[derive(Deserialize)]
struct ServicesParams {
    limit: Option<i64>,
    after: Option<String>,
}

async fn services(
    State(app): AppState,
    ApiQuery(params): ApiQuery<ServicesParams>,
) -> Result<Json<ServiceList>, ApiError> {
    let (services, next) =
        registry::services_page(&app, params.after.as_deref(), params.limit).await?;
    Ok(Json(ServiceList {
        services: services.iter().map(registry::info).collect(),
        next,
    }))
}

async fn service(
    State(app): AppState,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ServiceDetail>, ApiError> {
    let (service, instances) = registry::service(&app, &name).await?;
    Ok(Json(registry::detail(&app, &service, instances)))
}

#[derive(Deserialize)]
struct SnapshotParams {
    #[serde(default)]
    reset: bool,
}

async fn take_snapshot(
    State(app): AppState,
    _: AdminToken,
    ApiPath(service): ApiPath<String>,
    ApiQuery(params): ApiQuery<SnapshotParams>,
    OptionalJson(req): OptionalJson<SnapshotRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let id = if params.reset {
        no_selector(&req, "a reset ends the round of every instance")?;
        round::reset(&app, &service, req.label).await?
    } else {
        let selector = req
            .selector
            .as_deref()
            .map(str::parse::<crate::types::Selector>)
            .transpose()
            .map_err(ApiError::BadRequest)?;
        round::take(&app, &service, req.label, selector.as_ref()).await?
    };
    created(&app, id).await
}

async fn reset(
    State(app): AppState,
    _: AdminToken,
    ApiPath(service): ApiPath<String>,
    OptionalJson(req): OptionalJson<SnapshotRequest>,
) -> Result<impl IntoResponse, ApiError> {
    no_selector(&req, "a reset ends the round of every instance")?;
    let id = round::reset(&app, &service, req.label).await?;
    created(&app, id).await
}

/// A selector where every instance is read is refused, never ignored.
fn no_selector(req: &SnapshotRequest, why: &str) -> Result<(), ApiError> {
    match req.selector {
        Some(_) => Err(ApiError::BadRequest(format!("{why}: it takes no selector"))),
        None => Ok(()),
    }
}

/// `201 Created` with the detail of the snapshot just stored.
async fn created(app: &App, id: i64) -> Result<Response, ApiError> {
    Ok((StatusCode::CREATED, Json(snapshot::detail(app, id).await?)).into_response())
}

async fn list_sessions(
    State(app): AppState,
    ApiPath(service): ApiPath<String>,
) -> Result<Json<SessionList>, ApiError> {
    Ok(Json(round::sessions(&app, &service).await?))
}

async fn start_session(
    State(app): AppState,
    _: AdminToken,
    ApiPath(service): ApiPath<String>,
    JsonBody(req): JsonBody<SessionRequest>,
) -> Result<Response, ApiError> {
    let (session, new) = round::start_session(&app, &service, &req.name).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(session)).into_response())
}

async fn stop_session(
    State(app): AppState,
    _: AdminToken,
    ApiPath((service, name)): ApiPath<(String, String)>,
    OptionalJson(req): OptionalJson<SnapshotRequest>,
) -> Result<Response, ApiError> {
    no_selector(
        &req,
        "a session's snapshot holds every instance the session saw",
    )?;
    let id = round::stop_session(&app, &service, &name, req.label).await?;
    created(&app, id).await
}

#[derive(Deserialize)]
struct ListParams {
    limit: Option<i64>,
    before: Option<i64>,
    selector: Option<String>,
}

async fn list_snapshots(
    State(app): AppState,
    ApiPath(service): ApiPath<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<SnapshotList>, ApiError> {
    let selector = params
        .selector
        .as_deref()
        .map(str::parse::<crate::types::Selector>)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let list = snapshot::list(
        &app,
        service,
        params.limit,
        params.before,
        selector.as_ref(),
    )
    .await?;
    Ok(Json(list))
}

async fn snapshot_detail(
    State(app): AppState,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(snapshot::detail(&app, parse_id(&id)?).await?))
}

#[derive(Deserialize)]
struct ProfileParams {
    format: Option<String>,
    view: Option<String>,
    build: Option<String>,
    strip: Option<String>,
    source: Option<String>,
}

async fn profile(
    State(app): AppState,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<ProfileParams>,
    extract::Excludes(exclude): extract::Excludes,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let format: Format = params.format.as_deref().unwrap_or("go").parse()?;
    let options = report::Options {
        strip: params.strip,
        source: params.source,
    };
    let view = view(params.view.as_deref())?;
    let build = params.build.as_deref();
    let (text, dropped) = export::export(&app, id, view, build, format, &options, &exclude).await?;
    let mut response = (
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"snapshot-{id}.{}\"",
                    format.extension()
                ),
            ),
        ],
        text,
    )
        .into_response();
    if let Some(value) = excluded_header(&exclude, dropped) {
        response.headers_mut().insert(EXCLUDED_HEADER, value);
    }
    Ok(response)
}

/// The header of an export that an `exclude=` filter took files out of.
const EXCLUDED_HEADER: &str = "livecov-excluded";

/// `livecov-excluded: 2 files; example.com/m/mocks/...,**/*_mock.go`, when a filter was
/// given.
fn excluded_header(exclude: &report::Filter, files: usize) -> Option<header::HeaderValue> {
    if exclude.is_empty() {
        return None;
    }
    let s = if files == 1 { "" } else { "s" };
    let text = format!("{files} file{s}; {}", exclude.texts().join(","));
    header::HeaderValue::from_str(&text).ok()
}

#[derive(Deserialize)]
struct DiffParams {
    blocks: Option<bool>,
    view: Option<String>,
    build: Option<String>,
}

/// A `view` query parameter: the snapshot's window unless it says `deploy`.
fn view(v: Option<&str>) -> Result<snapshot::View, ApiError> {
    v.map_or(Ok(snapshot::View::Window), |v| {
        v.parse().map_err(ApiError::BadRequest)
    })
}

async fn diff(
    State(app): AppState,
    ApiPath((a, b)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<DiffParams>,
) -> Result<impl IntoResponse, ApiError> {
    let (a, b) = (parse_id(&a)?, parse_id(&b)?);
    let blocks = params.blocks.unwrap_or(true);
    let view = view(params.view.as_deref())?;
    let build = params.build.as_deref();
    Ok(Json(
        crate::diff::diff(&app, a, b, view, blocks, build).await?,
    ))
}

#[derive(Deserialize)]
struct CycleParams {
    from: Option<String>,
    to: Option<String>,
    view: Option<String>,
    build: Option<String>,
    format: Option<String>,
    strip: Option<String>,
    source: Option<String>,
}

impl CycleParams {
    async fn load(&self, app: &App, service: &str) -> Result<crate::cycle::CycleView, ApiError> {
        let Some(from) = &self.from else {
            return Err(ApiError::BadRequest(
                "a cycle needs its first snapshot: ?from=ID".into(),
            ));
        };
        let from = parse_id(from)?;
        let to = self.to.as_deref().map(parse_id).transpose()?;
        let view = view(self.view.as_deref())?;
        Ok(crate::cycle::load(app, service, from, to, view, self.build.as_deref()).await?)
    }
}

async fn cycle(
    State(app): AppState,
    ApiPath(service): ApiPath<String>,
    ApiQuery(params): ApiQuery<CycleParams>,
) -> Result<impl IntoResponse, ApiError> {
    let c = params.load(&app, &service).await?;
    Ok(Json(crate::cycle::summary(&c)))
}

async fn cycle_profile(
    State(app): AppState,
    ApiPath(service): ApiPath<String>,
    ApiQuery(params): ApiQuery<CycleParams>,
    extract::Excludes(exclude): extract::Excludes,
) -> Result<Response, ApiError> {
    let format: Format = params.format.as_deref().unwrap_or("go").parse()?;
    let c = params.load(&app, &service).await?;
    let options = report::Options {
        strip: params.strip.clone(),
        source: params.source.clone(),
    };
    let snapshot = report::Snapshot {
        id: c.to,
        taken_at: c.taken_at,
        service: c.service.clone(),
        label: Some(format!("cycle #{} to #{}", c.from, c.to)),
    };
    let parts = c.parts();
    let proj = report::project::project(&parts, c.target);
    let exclusions = report::Exclusions {
        filter: exclude,
        built: None,
    };
    let meta = parts[c.target].meta;
    let (text, dropped) =
        report::write_excluding(format, meta, &proj, &snapshot, &options, &exclusions);
    let mut response = (
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"cycle-{}-{}.{}\"",
                    c.from,
                    c.to,
                    format.extension()
                ),
            ),
        ],
        text,
    )
        .into_response();
    if let Some(value) = excluded_header(&exclusions.filter, dropped) {
        response.headers_mut().insert(EXCLUDED_HEADER, value);
    }
    Ok(response)
}
