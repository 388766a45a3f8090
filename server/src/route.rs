//! The route table's entries: a [`Route`] (area, method, path template) with its handler.
//! `api` and `web` each list theirs; `api::router` builds the server's router from those
//! lists alone, and `api::routes` lists the same routes for tests and tools.

use std::sync::Arc;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};

use crate::App;

/// The part of the server a route belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    /// Registration and heartbeats.
    Agents,
    /// Services, taking and listing snapshots, resets.
    Snapshots,
    /// A stored snapshot read back: exports, diffs, patch coverage.
    Exports,
    /// Builds' metadata and sources, uploaded.
    Builds,
    /// The dashboard's pages and assets (not part of the API's OpenAPI document).
    Dashboard,
    /// Health, metrics and the OpenAPI document.
    Ops,
}

/// One route of the server: the method and path template axum matches.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub area: Area,
    pub method: Method,
    pub path: &'static str,
}

/// A route with its handler (and the handler's layers).
pub struct Endpoint {
    pub route: Route,
    pub handler: MethodRouter<Arc<App>>,
}

impl Endpoint {
    /// `handler` answers `method` on `path`, nothing else.
    pub fn new<H, T>(area: Area, method: Method, path: &'static str, handler: H) -> Endpoint
    where
        H: Handler<T, Arc<App>>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum routes");
        Endpoint {
            route: Route { area, method, path },
            handler: axum::routing::on(filter, handler),
        }
    }

    /// The same route, its handler wrapped in `map` (a layer).
    pub fn map(
        self,
        map: impl FnOnce(MethodRouter<Arc<App>>) -> MethodRouter<Arc<App>>,
    ) -> Endpoint {
        Endpoint {
            route: self.route,
            handler: map(self.handler),
        }
    }
}
