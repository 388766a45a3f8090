//! The dashboard: server-rendered pages over the same modules the API uses, for people with a
//! browser. Pages are plain HTML with one stylesheet and one script, both served from here
//! (`assets/`), so the dashboard works without any other network. It reads only; the snapshot
//! and reset buttons call the API from the browser with the admin token the user types in, so
//! the pages need no session of their own.
//!
//! Pages: `/` (services), `/services/{name}` (instances, snapshot history and its trend, the
//! buttons), `/snapshots/{id}` (files and functions), `/snapshots/{id}/source?file=` (a file's
//! annotated source, where the build's sources were uploaded), `/diff?a=&b=` and
//! `/services/{name}/cycle?from=&to=` (a QA cycle across builds).

mod cycle;
mod diff;
mod page;
mod service;
mod snapshot;

use axum::http::{Method, header};
use axum::response::IntoResponse;

use crate::route::{Area, Endpoint};

pub use page::WebError;

/// The dashboard's routes, for `api`'s route table.
pub fn endpoints() -> Vec<Endpoint> {
    use Area::Dashboard;
    vec![
        Endpoint::new(Dashboard, Method::GET, "/", service::index),
        Endpoint::new(Dashboard, Method::GET, "/services/{name}", service::page),
        Endpoint::new(
            Dashboard,
            Method::GET,
            "/services/{name}/cycle",
            cycle::page,
        ),
        Endpoint::new(Dashboard, Method::GET, "/snapshots/{id}", snapshot::page),
        Endpoint::new(
            Dashboard,
            Method::GET,
            "/snapshots/{id}/source",
            snapshot::source,
        ),
        Endpoint::new(Dashboard, Method::GET, "/diff", diff::page),
        Endpoint::new(Dashboard, Method::GET, "/assets/livecov.css", css),
        Endpoint::new(Dashboard, Method::GET, "/assets/livecov.js", js),
        Endpoint::new(Dashboard, Method::GET, "/assets/livecov.svg", icon),
        Endpoint::new(Dashboard, Method::GET, "/favicon.ico", icon),
    ]
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
