//! The extractors of the API's handlers: path, query and body extractors whose rejections are
//! [`ApiError`]s, and the bearer tokens a route requires ([`AdminToken`], [`AgentToken`],
//! [`UploadToken`]), checked by [`crate::auth::check`] before the handler runs.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::auth;
use crate::error::ApiError;
use crate::{App, Config};

/// The request carries the token of role `R` (or none is configured): [`AdminToken`] or
/// [`AgentToken`].
pub struct Token<R>(PhantomData<R>);

/// A role that a bearer token stands for.
pub trait Role {
    /// As the refusal names it.
    const NAME: &'static str;
    /// The role's token in the server's configuration.
    fn token(config: &Config) -> Option<&str>;
}

pub struct Admin;
pub struct Agent;

impl Role for Admin {
    const NAME: &'static str = "admin";
    fn token(config: &Config) -> Option<&str> {
        config.admin_token.as_deref()
    }
}

impl Role for Agent {
    const NAME: &'static str = "agent";
    fn token(config: &Config) -> Option<&str> {
        config.agent_token.as_deref()
    }
}

/// The admin token: snapshots and resets.
pub type AdminToken = Token<Admin>;
/// The agent token: registration and heartbeats.
pub type AgentToken = Token<Agent>;

impl<R: Role> FromRequestParts<Arc<App>> for Token<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let checked = auth::check(&parts.headers, R::token(&app.config), R::NAME);
        if let Err(e) = &checked
            && R::NAME == Agent::NAME
        {
            // An agent with the wrong LIVECOV_TOKEN would otherwise fail unseen.
            let peer = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip());
            let what = format!("{} {}", parts.method, parts.uri.path());
            crate::registry::refused(app, peer, what, e.to_string(), "token");
        }
        checked?;
        Ok(Token(PhantomData))
    }
}

/// The request carries the admin or the agent token (or neither is configured). Uploads
/// change what the dashboard shows: either token will do, as builds are made by the people
/// who hold the admin token or by pipelines that hold the agent token.
pub struct UploadToken;

impl FromRequestParts<Arc<App>> for UploadToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let headers = &parts.headers;
        let (admin, agent) = (
            app.config.admin_token.as_deref(),
            app.config.agent_token.as_deref(),
        );
        match (admin, agent) {
            (None, None) => Ok(()),
            (Some(t), None) | (None, Some(t)) => auth::check(headers, Some(t), "admin or agent"),
            (Some(a), Some(b)) => auth::check(headers, Some(a), "admin or agent")
                .or_else(|_| auth::check(headers, Some(b), "admin or agent")),
        }?;
        Ok(UploadToken)
    }
}

/// A JSON body, with errors as API errors. An empty body reads as `T::default()` where the
/// handler allows it (see [`OptionalJson`]).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Path parameters, with errors as API errors.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| ApiPath(t))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// Query parameters, with errors as API errors.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| ApiQuery(t))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// A JSON body that may be empty.
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("request body too large".into())
        } else {
            ApiError::BadRequest(format!("reading the request body: {e}"))
        }
    })
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("request body: {e}")))
}

/// The `exclude=` query parameters of an export (repeatable, each a pattern or a
/// comma-separated list of them, see [`report::filter`]); a bad pattern is a 400 that says
/// why.
pub struct Excludes(pub report::Filter);

impl<S: Send + Sync> FromRequestParts<S> for Excludes {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        crate::export::excludes(&parts.uri).map(Excludes)
    }
}
