//! The route table (`api::routes`) against a running server: every listed route is routed,
//! that is, answers something other than 404 (no such endpoint) or 405 (no such method) once
//! its path parameters name things that exist.

mod common;

use std::sync::Arc;

use common::*;
use instrumenter::Mode;
use server::sim::SimBuild;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("livecov.db").display());
    let server = start(config(&url)).await;
    let build = Arc::new(SimBuild::synthetic(Mode::Set, 2, 3, "routes"));
    let agents = agents(&server, &build, "svc", 1).await;
    agents[0].hit(0, 1);
    let id = snapshot(&server, "svc", "").await["id"].as_i64().unwrap();
    // An open session, so that its stop route finds it.
    let started = post(
        &server,
        "/api/v1/services/svc/sessions",
        serde_json::json!({"name": "svc"}),
    )
    .await;
    assert_eq!(started.status, 201, "{}", started.text);

    let routes = server::api::routes();
    assert!(routes.len() >= 20, "{routes:?}");
    for route in routes {
        let path = route
            .path
            .replace("{instance}", "i0")
            .replace("{service}", "svc")
            .replace("{name}", "svc")
            .replace("{id}", &id.to_string())
            .replace("{a}", &id.to_string())
            .replace("{b}", &id.to_string())
            .replace("{build}", &build.id);
        assert!(!path.contains('{'), "{}: a parameter left", route.path);
        let a = call(
            route.method.as_str(),
            format!("http://{}{path}", server.addr),
            None,
            None,
        )
        .await;
        assert!(
            a.status != 404 && a.status != 405,
            "{} {path} ({:?}) answered {}: {}",
            route.method,
            route.area,
            a.status,
            a.text
        );
    }
    for a in agents {
        a.stop();
    }
    server.stop().await.unwrap();
}
