//! The dashboard: server-rendered pages over the same modules the API uses, for people with a
//! browser. Pages are plain HTML with one stylesheet and one script, both served from here
//! (`assets/`), so the dashboard works without any other network. It reads only; the snapshot
//! and reset buttons call the API from the browser with the admin token the user types in, so
//! the pages need no session of their own.
//!
//! Pages: `/` (services), `/services/{name}` (instances, snapshot history and its trend, the
//! buttons), `/snapshots/{id}` (files and functions), `/snapshots/{id}/source?file=` (a file's
//! annotated source, where the build's sources were uploaded) and `/diff?a=&b=`.

mod diff;
mod page;
mod service;
mod snapshot;

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::App;

pub use page::WebError;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(service::index))
        .route("/services/{name}", get(service::page))
        .route("/snapshots/{id}", get(snapshot::page))
        .route("/snapshots/{id}/source", get(snapshot::source))
        .route("/diff", get(diff::page))
        .route("/assets/livecov.css", get(css))
        .route("/assets/livecov.js", get(js))
        .route("/assets/livecov.svg", get(icon))
        .route("/favicon.ico", get(icon))
}

/// The dashboard's style: the report's, and the dashboard's own.
async fn css() -> impl IntoResponse {
    static CSS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{}\n{}",
            report::html::STYLE,
            include_str!("assets/livecov.css")
        )
    });
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS.as_str(),
    )
}

/// The dashboard's script: the report's table sorting, and the buttons.
async fn js() -> impl IntoResponse {
    static JS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{}\n{}",
            report::html::SCRIPT,
            include_str!("assets/livecov.js")
        )
    });
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        JS.as_str(),
    )
}

/// The dashboard's icon, for browsers that ask for one at `/favicon.ico` too.
async fn icon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        include_str!("assets/livecov.svg"),
    )
}
