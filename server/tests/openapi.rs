//! The OpenAPI document served at `/api/v1/openapi.json` (`server/src/openapi.json`, written
//! by hand) held against the code, so that it cannot drift: its operations are exactly the
//! routes of `api::routes` (what `api::router` is built from), its schemas have exactly the
//! fields `server::types` and the `json` export (`report::ExportJson`) serialize, every
//! `$ref` resolves, and a running server's answers match what it says.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine as _;
use common::*;
use instrumenter::{BuildMeta, Mode};
use report::json::ExportGone;
use report::types::{SourceFile, SourceUpload, Uploaded};
use report::{ExportBlock, ExportFile, ExportFunc, ExportJson};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use server::sim::{Behavior, SimAgent, SimBuild};
use server::types::*;

const DOC: &str = include_str!("../src/openapi.json");
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn doc() -> Value {
    serde_json::from_str(DOC).expect("openapi.json is JSON")
}

// ---- (a) the served document ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_document_is_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("livecov.db").display());
    let server = start(config(&url)).await;
    let resp = client()
        .get(format!("http://{}/api/v1/openapi.json", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let text = resp.text().await.unwrap();
    assert_eq!(text, DOC, "the server serves openapi.json as it is");
    let served: Value = serde_json::from_str(&text).expect("the document is JSON");
    let version = served["openapi"].as_str().expect("an `openapi` version");
    assert!(version.starts_with("3.1."), "OpenAPI {version}, want 3.1.x");
    server.stop().await.unwrap();
}

// ---- (b) the operations are the routes ----

/// The (method, path) pairs of the server's route table, `api::routes`.
fn source_routes() -> BTreeSet<(String, String)> {
    // The dashboard's pages are merged in, and are not the API.
    server::api::routes()
        .into_iter()
        .filter(|r| r.area != server::api::Area::Dashboard)
        .map(|r| (r.method.as_str().to_lowercase(), r.path.to_string()))
        .collect()
}

/// The (method, path) pairs of the document's operations.
fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if METHODS.contains(&method.as_str()) {
                out.insert((method.clone(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn operations_are_the_routes() {
    let doc = doc();
    let routes = source_routes();
    assert!(
        routes.len() >= 13,
        "read only {} routes from api::routes: {routes:?}",
        routes.len()
    );
    let documented = documented_routes(&doc);
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from openapi.json: {undocumented:?}; documented but not routed: {unrouted:?}"
    );
}

#[test]
fn operations_are_complete() {
    let doc = doc();
    let mut ids = BTreeSet::new();
    for (method, path) in documented_routes(&doc) {
        let item = &doc["paths"][&path];
        let op = &item[&method];
        let what = format!("{method} {path}");
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no operationId"));
        assert!(ids.insert(id.to_string()), "operationId {id} twice");
        assert!(op["summary"].is_string(), "{what}: no summary");
        // The path's `{param}`s are exactly its path parameters, each required.
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(String::from)
            .collect();
        let mut declared = BTreeSet::new();
        for list in [&item["parameters"], &op["parameters"]] {
            for p in list.as_array().into_iter().flatten() {
                let p = resolve(&doc, p);
                if p["in"] == "path" {
                    assert_eq!(p["required"], true, "{what}: path parameter {p}");
                    declared.insert(p["name"].as_str().unwrap().to_string());
                }
                assert!(
                    p["schema"].is_object(),
                    "{what}: parameter {p} has no schema"
                );
            }
        }
        assert_eq!(in_path, declared, "{what}: path parameters");
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{what}: no success response"
        );
        for (status, r) in responses {
            let r = resolve(&doc, r);
            assert!(
                r["description"].is_string(),
                "{what} {status}: no description"
            );
            if status.starts_with('4') || status.starts_with('5') || status == "default" {
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{what} {status}: every error is an Error"
                );
            }
        }
        for requirement in op["security"].as_array().into_iter().flatten() {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(
                    doc["components"]["securitySchemes"][scheme].is_object(),
                    "{what}: unknown security scheme {scheme}"
                );
            }
        }
    }
}

// ---- (d) every $ref resolves ----

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{r}: only local references"));
            resolve(
                doc,
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("{r} does not resolve")),
            )
        }
        None => v,
    }
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_ref_resolves_and_every_component_is_used() {
    let doc = doc();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r}: only local references"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    let used: BTreeSet<&str> = all.iter().map(String::as_str).collect();
    for kind in ["schemas", "parameters", "responses", "requestBodies"] {
        for name in doc["components"][kind].as_object().unwrap().keys() {
            let r = format!("#/components/{kind}/{name}");
            assert!(used.contains(r.as_str()), "{r} is never used");
        }
    }
}

// ---- (c) the schemas are the types ----

/// The properties and required names of an object schema, `allOf` merged (`serde(flatten)`);
/// None when the schema does not describe an object's properties.
fn object_view(doc: &Value, schema: &Value) -> Option<(BTreeMap<String, Value>, BTreeSet<String>)> {
    let s = resolve(doc, schema);
    let (mut props, mut required, mut any) = (BTreeMap::new(), BTreeSet::new(), false);
    let mut merge = |p: BTreeMap<String, Value>, r: BTreeSet<String>| {
        for (k, v) in p {
            assert!(
                props.insert(k.clone(), v).is_none(),
                "property {k} twice in an allOf"
            );
        }
        required.extend(r);
    };
    if let Some(p) = s.get("properties").and_then(Value::as_object) {
        any = true;
        let req = s["required"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        merge(p.clone().into_iter().collect(), req);
    }
    for sub in s["allOf"].as_array().into_iter().flatten() {
        if let Some((p, r)) = object_view(doc, sub) {
            any = true;
            merge(p, r);
        }
    }
    any.then_some((props, required))
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => panic!("type {t}"),
    }
}

/// Checks `value` against `schema`: types, enums, constants, date-times, and — the point —
/// an object has no field that is not a property of the schema, and every required one.
/// (Answers have every property but those serde skips: `schemas_are_the_types` holds the
/// schemas to require all others.)
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let s = resolve(doc, schema);
    if let Some(branches) = s["anyOf"].as_array() {
        let fits = |b: &Value| {
            let mut e = Vec::new();
            check(doc, b, value, at, &mut e);
            e
        };
        let tried: Vec<Vec<String>> = branches.iter().map(fits).collect();
        if tried.iter().all(|e| !e.is_empty()) {
            errors.push(format!("{at}: fits no branch of anyOf: {tried:?}"));
        }
    }
    let types: Vec<&str> = match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
        _ if s.get("allOf").is_some() => vec!["object"],
        _ => vec![],
    };
    if !types.is_empty() && !types.iter().any(|t| type_ok(t, value)) {
        errors.push(format!("{at}: {value} is not {types:?}"));
        return;
    }
    if let Some(e) = s["enum"].as_array()
        && !e.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {e:?}"));
    }
    if let Some(c) = s.get("const")
        && c != value
    {
        errors.push(format!("{at}: {value} is not {c}"));
    }
    if let (Some("date-time"), Some(t)) = (s["format"].as_str(), value.as_str())
        && humantime::parse_rfc3339(t).is_err()
    {
        errors.push(format!("{at}: {t:?} is not an RFC 3339 time"));
    }
    if let (Some(obj), Some((props, required))) = (value.as_object(), object_view(doc, s)) {
        let keys: BTreeSet<&String> = obj.keys().collect();
        let names: BTreeSet<&String> = props.keys().collect();
        let extra: Vec<_> = keys.difference(&names).collect();
        if !extra.is_empty() {
            errors.push(format!("{at}: fields not in the schema: {extra:?}"));
        }
        for r in &required {
            if !obj.contains_key(r) {
                errors.push(format!("{at}: required {r} missing"));
            }
        }
        for (k, v) in obj {
            if let Some(p) = props.get(k) {
                check(doc, p, v, &format!("{at}.{k}"), errors);
            }
        }
    }
    // A map (`labels`): every value fits `additionalProperties`, and there are not too many.
    if let (Some(obj), Some(values)) = (
        value.as_object(),
        s.get("additionalProperties").filter(|a| a.is_object()),
    ) {
        for (k, v) in obj {
            if s["properties"].get(k).is_none() {
                check(doc, values, v, &format!("{at}.{k}"), errors);
            }
        }
        if let Some(max) = s["maxProperties"].as_u64()
            && obj.len() as u64 > max
        {
            errors.push(format!("{at}: {} properties, at most {max}", obj.len()));
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            check(doc, items, v, &format!("{at}[{i}]"), errors);
        }
    }
}

fn check_schema(doc: &Value, name: &str, value: &Value) {
    let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
    let mut errors = Vec::new();
    check(doc, &schema, value, name, &mut errors);
    assert!(
        errors.is_empty(),
        "{name} against {value}:\n{}",
        errors.join("\n")
    );
}

/// Sample values of every type of `server::types` and of the `json` export, with the schema
/// each is, serialized by serde; optional fields both ways (fields serde skips, absent in one
/// sample and present in another: `schemas_are_the_types` holds the samples of each schema to
/// show every property, and a property that one of them lacks not to be required).
fn samples() -> Vec<(&'static str, Value)> {
    let upload = SourceUpload {
        files: vec![SourceFile {
            name: "example.com/m/p.go".into(),
            source: "package p\n".into(),
        }],
    };
    let totals = Totals::new(18, 9, 36, 21);
    let deploy = Totals::new(18, 12, 36, 27);
    let info = |label: Option<&str>| SnapshotInfo {
        id: 3,
        service: "greeter".into(),
        label: label.map(String::from),
        selector: None,
        reset: false,
        kind: "snapshot".into(),
        session: None,
        since: None,
        taken_at: "2026-11-25T20:26:28.698Z".into(),
        duration_ms: 4,
        instances_ok: 2,
        instances_failed: 0,
        totals: totals.clone(),
        deploy: deploy.clone(),
        build: Some("b".repeat(64)),
        build_count: 1,
    };
    // Stored before livecov recorded the build the totals are against.
    let old = SnapshotInfo {
        build: None,
        build_count: 2,
        ..info(None)
    };
    // Taken of the live instances a selector matched.
    let selected = SnapshotInfo {
        selector: Some("env=staging,region=eu".into()),
        ..info(Some("eu"))
    };
    let ended = |kind: &str, session: Option<&str>| SnapshotInfo {
        reset: kind == "reset",
        kind: kind.into(),
        session: session.map(String::from),
        since: Some("2026-11-25T20:20:00.125Z".into()),
        ..info(None)
    };
    let service = |latest: Option<SnapshotInfo>| ServiceInfo {
        name: "greeter".into(),
        first_seen: "2026-11-25T20:26:26.635Z".into(),
        live_instances: 2,
        instances: 3,
        builds: vec!["b".repeat(64)],
        latest_snapshot: latest,
    };
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let where_it_runs = labels(&[
        ("env", "staging"),
        ("k8s.namespace", "shop"),
        ("k8s.pod", "web-1-7d9c"),
        ("vcs.modified", "true"),
        ("vcs.revision", "4f2a9c1e"),
    ]);
    // `live`, `gone` or `exited` (its process ended, its last counters came).
    let instance = |state: &str| InstanceInfo {
        id: "i0".into(),
        state: state.into(),
        build: "b".repeat(64),
        mode: "set".into(),
        // A process that ended before it listened has no address.
        address: if state == "exited" {
            String::new()
        } else {
            "10.0.0.7:38211".into()
        },
        hostname: "web-1".into(),
        pid: 4242,
        start_time: "2026-11-25T20:26:26Z".into(),
        go_version: "go1.26.0".into(),
        registered_at: "2026-11-25T20:26:26.635Z".into(),
        last_seen: "2026-11-25T20:26:56.635Z".into(),
        gone_at: (state == "gone").then(|| "2026-11-25T20:27:26.635Z".into()),
        // A gone instance of an agent without labels: `{}`.
        labels: if state == "gone" {
            BTreeMap::new()
        } else {
            where_it_runs.clone()
        },
        exited_at: (state == "exited").then(|| "2026-11-25T20:26:57.012Z".into()),
        channel: state == "live",
    };
    let part = BuildPart {
        build: "b".repeat(64),
        mode: "count".into(),
        instances: 2,
        totals: totals.clone(),
        deploy: deploy.clone(),
        excluded: Some(report::types::BuildExcluded {
            patterns: vec!["example.com/greeter/mocks/...".into()],
            generated: true,
            files: vec!["example.com/greeter/mocks/m.go".into()],
        }),
    };
    let result = |message: Option<&str>| InstanceResult {
        instance: "i0".into(),
        build: "b".repeat(64),
        address: "127.0.0.1:42059".into(),
        outcome: if message.is_some() { "timeout" } else { "ok" }.into(),
        message: message.map(String::from),
        duration_ms: 1,
    };
    let detail = SnapshotDetail {
        snapshot: info(Some("round 2")),
        builds: vec![part.clone()],
        instance_results: vec![result(None), result(Some("no answer within 10s"))],
    };
    let dt = DiffTotals {
        blocks: 18,
        stmts: 36,
        a_blocks_covered: 8,
        b_blocks_covered: 5,
        a_stmts_covered: 12,
        b_stmts_covered: 9,
        newly_covered: 5,
        no_longer_covered: 8,
        newly_covered_stmts: 9,
        no_longer_covered_stmts: 12,
    };
    let block = BlockRef {
        start_line: 47,
        start_col: 51,
        end_line: 51,
        end_col: 48,
        stmts: 4,
        func: "calc".into(),
    };
    let file = FileDiff {
        file: "example.com/greeter/main.go".into(),
        total: dt.clone(),
        newly_covered: vec![block.clone()],
        no_longer_covered: vec![block.clone()],
    };
    let func_diff = |change: &str, a: (i64, i64), b: (i64, i64)| FuncDiff {
        file: "example.com/greeter/main.go".into(),
        name: "calc".into(),
        change: change.into(),
        a_stmts: a.0,
        a_stmts_covered: a.1,
        b_stmts: b.0,
        b_stmts_covered: b.1,
    };
    let diff = Diff {
        a: 1,
        b: 3,
        build: "b".repeat(64),
        total: dt.clone(),
        files: vec![file.clone()],
        functions: vec![
            func_diff("edited", (6, 4), (7, 2)),
            func_diff("added", (0, 0), (3, 3)),
            func_diff("removed", (5, 5), (0, 0)),
        ],
    };
    let states = StateCounts {
        measured: 3,
        carried: 2,
        changed: 1,
        uncovered: 4,
    };
    let gone_func = |change: &str| GoneFunc {
        file: "example.com/greeter/main.go".into(),
        name: "old".into(),
        change: change.into(),
        build: "a".repeat(64),
        stmts: 5,
        stmts_covered: 3,
    };
    let cycle_file = CycleFile {
        file: "example.com/greeter/main.go".into(),
        totals: totals.clone(),
        stmts_measured: 15,
        stmts_carried: 6,
        functions: states.clone(),
    };
    let cycle = Cycle {
        service: "greeter".into(),
        from: 1,
        to: 3,
        snapshots: 3,
        build: "b".repeat(64),
        builds: vec![
            CycleBuild {
                build: "a".repeat(64),
                first_snapshot: 1,
                last_snapshot: 2,
            },
            CycleBuild {
                build: "b".repeat(64),
                first_snapshot: 2,
                last_snapshot: 3,
            },
        ],
        totals: totals.clone(),
        stmts_measured: 15,
        stmts_carried: 6,
        functions: states.clone(),
        files: vec![cycle_file.clone()],
        gone: vec![gone_func("edited"), gone_func("removed")],
    };
    // The `json` export: `carried` only on blocks carried from another build, `gone` only
    // when some function is only in other builds.
    let export_block = |count: u32, carried: bool| ExportBlock {
        start_line: 47,
        start_col: 51,
        end_line: 51,
        end_col: 48,
        stmts: 4,
        count,
        carried,
    };
    let export_func = ExportFunc {
        name: "calc".into(),
        line: 47,
        count: 3,
        stmts: 12,
        stmts_covered: 8,
        state: "measured".into(),
        change: "edited".into(),
        blocks: vec![
            export_block(3, false),
            export_block(1, true),
            export_block(0, false),
        ],
    };
    let export_file = ExportFile {
        file: "example.com/greeter/main.go".into(),
        stmts: 12,
        stmts_covered: 8,
        functions: vec![export_func.clone()],
    };
    let export_gone = ExportGone {
        file: "example.com/greeter/main.go".into(),
        name: "old".into(),
        change: "removed".into(),
        build: "a".repeat(64),
        stmts: 5,
        stmts_covered: 3,
    };
    // With and without the optional fields.
    let export = |gone: Vec<ExportGone>| ExportJson {
        excluded: (!gone.is_empty()).then(|| report::json::ExportExcluded {
            patterns: vec!["**/*_mock.go".into()],
            files: 1,
        }),
        excluded_when_built: (!gone.is_empty()).then(|| "1 file (generated code)".into()),
        snapshot: 3,
        taken_at: "2026-11-25T20:26:28.698Z".into(),
        stmts: 12,
        stmts_covered: 8,
        files: vec![export_file.clone()],
        gone,
    };
    let patch = PatchCoverage {
        snapshot: 3,
        total: PatchTotals {
            lines: 7,
            covered: 5,
            coverage: 71.43,
        },
        files: vec![PatchFile {
            file: "example.com/greeter/calc/calc.go".into(),
            diff_path: "calc/calc.go".into(),
            lines: 7,
            covered: 5,
            uncovered: "14-15".into(),
            uncovered_lines: vec![14, 15],
        }],
        not_measured: vec!["README.md".into()],
    };
    let registration = Registration {
        service: "greeter".into(),
        instance: "3ef5394d651a2bf934544ff7c6bf2332".into(),
        build: "b".repeat(64),
        hostname: "web-1".into(),
        pid: 4242,
        start_time: "2026-11-25T20:26:26Z".into(),
        mode: "set".into(),
        port: 38211,
        go_version: "go1.26.0".into(),
        secret: Some("5f0c2a9e41d37b86a1e0c4d29b7f3e58".into()),
        labels: where_it_runs.clone(),
    };
    let ended_as = |state: &str, changed: bool| Ended {
        service: "greeter".into(),
        instance: "3ef5394d651a2bf934544ff7c6bf2332".into(),
        build: "b".repeat(64),
        state: state.into(),
        changed,
    };
    let session = |snapshot: Option<i64>| SessionInfo {
        id: 2,
        service: "greeter".into(),
        name: "qa run 7".into(),
        state: if snapshot.is_some() {
            "stopped"
        } else {
            "open"
        }
        .into(),
        started_at: "2026-11-25T20:20:00.125Z".into(),
        stopped_at: snapshot.map(|_| "2026-11-25T20:26:28.698Z".into()),
        snapshot,
    };
    vec![
        ("Totals", v(&totals)),
        ("Registration", v(&registration)),
        (
            "Registration",
            v(&Registration {
                secret: None,
                labels: BTreeMap::new(),
                ..registration.clone()
            }),
        ),
        (
            "Heartbeat",
            v(&Heartbeat {
                secret: registration.secret.clone(),
            }),
        ),
        ("Heartbeat", v(&Heartbeat::default())),
        (
            "FinalDelivery",
            v(&FinalDelivery {
                // A process that ended before it listened.
                registration: Registration {
                    port: 0,
                    ..registration.clone()
                },
                counters: "TENDMUBiYmJi".into(),
            }),
        ),
        ("Ended", v(&ended_as("exited", true))),
        ("Ended", v(&ended_as("live", false))),
        (
            "Registered",
            v(&Registered {
                instance: "i0".into(),
                address: "10.0.0.7:38211".into(),
                instance_ttl_seconds: 30,
                channel: false,
            }),
        ),
        ("Beat", v(&Beat { channel: true })),
        ("Beat", v(&Beat::default())),
        (
            "ChannelRequest",
            v(&server::channel::Request {
                id: "1f".into(),
                method: "GET",
                path: "/livecov/v1/counters".into(),
                authorization: Some("Bearer 0123456789abcdef".into()),
            }),
        ),
        (
            "ChannelRequest",
            v(&server::channel::Request {
                id: "20".into(),
                method: "POST",
                path: "/livecov/v1/boundary?token=t1".into(),
                authorization: None,
            }),
        ),
        (
            "ServiceList",
            v(&ServiceList {
                services: vec![service(Some(info(None))), service(None)],
                next: Some("svc".into()),
            }),
        ),
        ("ServiceInfo", v(&service(Some(info(Some("x")))))),
        ("ServiceInfo", v(&service(None))),
        (
            "ServiceDetail",
            v(&ServiceDetail {
                service: service(Some(info(None))),
                instance_list: vec![instance("live"), instance("gone"), instance("exited")],
            }),
        ),
        ("InstanceInfo", v(&instance("live"))),
        ("InstanceInfo", v(&instance("gone"))),
        ("InstanceInfo", v(&instance("exited"))),
        (
            "SnapshotRequest",
            v(&SnapshotRequest {
                label: Some("round 2".into()),
                selector: Some("env=staging,region=eu".into()),
            }),
        ),
        ("SnapshotRequest", v(&SnapshotRequest::default())),
        ("SnapshotInfo", v(&info(Some("round 2")))),
        ("SnapshotInfo", v(&info(None))),
        ("SnapshotInfo", v(&old)),
        ("SnapshotInfo", v(&selected)),
        ("SnapshotInfo", v(&ended("reset", None))),
        ("SnapshotInfo", v(&ended("session", Some("qa run 7")))),
        (
            "SnapshotList",
            v(&SnapshotList {
                service: "greeter".into(),
                snapshots: vec![info(None), info(Some("scheduled")), selected.clone()],
            }),
        ),
        ("SnapshotDetail", v(&detail)),
        ("BuildPart", v(&part)),
        (
            "BuildPart",
            v(&BuildPart {
                excluded: None,
                ..part.clone()
            }),
        ),
        (
            "SessionRequest",
            v(&SessionRequest {
                name: "qa run 7".into(),
            }),
        ),
        ("SessionInfo", v(&session(None))),
        ("SessionInfo", v(&session(Some(3)))),
        (
            "SessionList",
            v(&SessionList {
                service: "greeter".into(),
                sessions: vec![session(None), session(Some(3))],
            }),
        ),
        ("InstanceResult", v(&result(None))),
        ("InstanceResult", v(&result(Some("refused")))),
        ("BuildExcluded", v(part.excluded.as_ref().unwrap())),
        (
            "ExportExcluded",
            v(export(vec![export_gone.clone()]).excluded.as_ref().unwrap()),
        ),
        ("Diff", v(&diff)),
        ("DiffTotals", v(&dt)),
        ("FileDiff", v(&file)),
        ("BlockRef", v(&block)),
        ("FuncDiff", v(&diff.functions[0])),
        ("Cycle", v(&cycle)),
        ("CycleBuild", v(&cycle.builds[0])),
        ("StateCounts", v(&states)),
        ("CycleFile", v(&cycle_file)),
        ("GoneFunc", v(&gone_func("edited"))),
        ("ExportJson", v(&export(vec![export_gone.clone()]))),
        ("ExportJson", v(&export(Vec::new()))),
        ("ExportFile", v(&export_file)),
        ("ExportFunc", v(&export_func)),
        ("ExportBlock", v(&export_block(1, true))),
        ("ExportBlock", v(&export_block(0, false))),
        ("ExportGone", v(&export_gone)),
        ("PatchCoverage", v(&patch)),
        ("PatchTotals", v(&patch.total)),
        ("PatchFile", v(&patch.files[0])),
        (
            "Uploaded",
            v(&Uploaded {
                build: "b".repeat(64),
                files: 12,
                sources: 12,
                stored: 3,
            }),
        ),
        ("SourceUpload", v(&upload)),
        ("SourceFile", v(&upload.files[0])),
        (
            "Error",
            v(&ErrorBody {
                error: "what went wrong".into(),
            }),
        ),
    ]
}

fn v<T: serde::Serialize>(x: &T) -> Value {
    serde_json::to_value(x).expect("serializes")
}

/// Schemas that no type of `server::types` or the export is: `served_answers_match_the_document`
/// checks them against the server's answers.
const NOT_IN_TYPES: [&str; 1] = ["Health"];

/// The schemas of request bodies, by the document.
fn request_schemas(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (method, path) in documented_routes(doc) {
        let body = &doc["paths"][&path][&method]["requestBody"];
        if body.is_null() {
            continue;
        }
        for (name, media) in resolve(doc, body)["content"].as_object().unwrap() {
            // Raw bodies (a diff, gzip uploads) have no JSON type to check.
            if name != "application/json" {
                continue;
            }
            let r = media["schema"]["$ref"]
                .as_str()
                .expect("a body schema is a $ref");
            out.insert(r.rsplit('/').next().unwrap().to_string());
        }
    }
    out
}

#[test]
fn schemas_are_the_types() {
    let doc = doc();
    let samples = samples();
    for (name, value) in &samples {
        check_schema(&doc, name, value);
    }
    // Every schema is checked: against a type here, or against the server's answers.
    let schemas: BTreeSet<&str> = doc["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let checked: BTreeSet<&str> = samples
        .iter()
        .map(|(n, _)| *n)
        .chain(NOT_IN_TYPES)
        .collect();
    assert_eq!(
        schemas, checked,
        "schemas checked against nothing, or missing"
    );

    // The samples of a schema show every property of it: each is in one of them (and the
    // optional ones, which serde skips, are absent from another: see below).
    let of = |name: &str| -> Vec<&serde_json::Map<String, Value>> {
        samples
            .iter()
            .filter(|(n, _)| *n == name)
            .filter_map(|(_, v)| v.as_object())
            .collect()
    };
    let requests = request_schemas(&doc);
    for name in &schemas {
        let (props, required) = object_view(
            &doc,
            &json!({ "$ref": format!("#/components/schemas/{name}") }),
        )
        .unwrap_or_else(|| panic!("{name} is not an object schema"));
        let mine = of(name);
        if !mine.is_empty() {
            let unshown: Vec<&String> = props
                .keys()
                .filter(|p| !mine.iter().any(|o| o.contains_key(*p)))
                .collect();
            assert!(
                unshown.is_empty(),
                "{name}: properties no sample shows: {unshown:?}"
            );
        }
        if requests.contains(*name) {
            continue;
        }
        // Answers write every field but those serde skips (`skip_serializing_if`), so a
        // property of a response schema is required unless a sample goes without it.
        let always: BTreeSet<String> = props
            .into_keys()
            .filter(|p| mine.iter().all(|o| o.contains_key(p)))
            .collect();
        assert_eq!(
            required, always,
            "{name}: the properties an answer always has are required, and only those"
        );
    }

    // Requests: required is what serde requires (fields without `#[serde(default)]`).
    assert_eq!(
        requests,
        BTreeSet::from(
            [
                "FinalDelivery",
                "Heartbeat",
                "Registration",
                "SessionRequest",
                "SnapshotRequest"
            ]
            .map(String::from)
        ),
        "request bodies: tell this test their Rust types"
    );
    for name in &requests {
        let full = &samples.iter().find(|(n, _)| n == name).unwrap().1;
        let by_serde = match name.as_str() {
            "FinalDelivery" => required_by_serde::<FinalDelivery>(full),
            "Heartbeat" => required_by_serde::<Heartbeat>(full),
            "Registration" => required_by_serde::<Registration>(full),
            "SessionRequest" => required_by_serde::<SessionRequest>(full),
            "SnapshotRequest" => required_by_serde::<SnapshotRequest>(full),
            _ => unreachable!(),
        };
        let (_, required) = object_view(
            &doc,
            &json!({ "$ref": format!("#/components/schemas/{name}") }),
        )
        .unwrap();
        assert_eq!(required, by_serde, "{name}: required fields");
    }
}

/// The limits the document puts on labels are those of `report::types::check_labels`, and a
/// selector's canonical form is as it says (pairs sorted by key).
#[test]
fn label_limits_are_the_code() {
    let doc = doc();
    let labels = &doc["components"]["schemas"]["Registration"]["properties"]["labels"];
    let max = labels["maxProperties"].as_u64().expect("maxProperties") as usize;
    assert_eq!(max, report::types::MAX_LABELS);
    let key_pattern = labels["propertyNames"]["pattern"].as_str().unwrap();
    assert!(key_pattern.ends_with("{1,63}$"), "{key_pattern}");
    let value_max = labels["additionalProperties"]["maxLength"]
        .as_u64()
        .unwrap() as usize;
    let check = |pairs: Vec<(String, String)>| {
        report::types::check_labels(&pairs.into_iter().collect()).is_ok()
    };
    let many = |n: usize| (0..n).map(|i| (format!("k{i}"), "v".to_string())).collect();
    assert!(check(many(max)));
    assert!(!check(many(max + 1)));
    assert!(check(vec![("k".repeat(63), "v".repeat(value_max))]));
    assert!(!check(vec![("k".repeat(64), "v".into())]));
    assert!(!check(vec![("k".into(), "v".repeat(value_max + 1))]));
    assert!(!check(vec![(String::new(), "v".into())]));
    assert!(check(vec![(
        "a.b_c-d/E9".into(),
        "any text: but no comma".into()
    )]));
    for key in ["a b", "a=b", "a,b", "é"] {
        assert!(!check(vec![(key.into(), "v".into())]), "key {key:?}");
    }
    for value in ["a,b", "a\nb", "a\u{7f}b", "a\u{85}b"] {
        assert!(!check(vec![("k".into(), value.into())]), "value {value:?}");
    }
    let canonical = |s: &str| s.parse::<Selector>().map(|s| s.text());
    assert_eq!(
        canonical(" region=eu , env=staging").as_deref(),
        Ok("env=staging,region=eu")
    );
    for bad in ["", " , ", "env", "env=qa,env=prod", "bad key=x", "env=a\tb"] {
        assert!(canonical(bad).is_err(), "selector {bad:?}");
    }
}

/// The fields of `full` (a whole serialized `T`) without which it no longer deserializes.
fn required_by_serde<T: DeserializeOwned>(full: &Value) -> BTreeSet<String> {
    serde_json::from_value::<T>(full.clone()).expect("the whole sample deserializes");
    full.as_object()
        .unwrap()
        .keys()
        .filter(|k| {
            let mut without = full.clone();
            without.as_object_mut().unwrap().remove(*k);
            serde_json::from_value::<T>(without).is_err()
        })
        .cloned()
        .collect()
}

// ---- a running server answers as documented ----

/// Sends requests and checks each answer against the document: the status is documented for
/// the operation (or `default`), the media type is, the body fits the schema, documented
/// headers are there. Records the operations that answered with success.
struct Client {
    doc: Value,
    base: String,
    succeeded: BTreeSet<(String, String)>,
}

struct Answer {
    status: u16,
    json: Value,
}

impl Client {
    /// A request with a JSON body (or none).
    async fn call(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
    ) -> Answer {
        self.send(method, template, path, body, "application/json", token)
            .await
    }

    /// A request with a body of media type `media`.
    async fn send(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Vec<u8>>,
        media: &str,
        token: Option<&str>,
    ) -> Answer {
        self.send_with(method, template, path, body, media, token, &[])
            .await
    }

    /// [`Client::send`] with more headers.
    #[allow(clippy::too_many_arguments)]
    async fn send_with(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Vec<u8>>,
        media: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = client().request(
            method.to_uppercase().parse().unwrap(),
            format!("{}{path}", self.base),
        );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", media).body(b);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let what = format!("{method} {path} ({template}) answered {status} {text:?}");

        let op = &self.doc["paths"][template][method];
        assert!(op.is_object(), "{what}: no such operation documented");
        let responses = &op["responses"];
        let documented = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
            .unwrap_or_else(|| panic!("{what}: status not documented"));
        let documented = resolve(&self.doc, documented);
        for name in documented["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|h| h.0)
        {
            assert!(
                headers.contains_key(name.as_str()),
                "{what}: no {name} header"
            );
        }
        let mut json = Value::Null;
        if let Some(content) = documented["content"].as_object() {
            let got = headers
                .get("content-type")
                .unwrap_or_else(|| panic!("{what}: no Content-Type"))
                .to_str()
                .unwrap();
            let (media, schema) = content
                .iter()
                .find(|(m, _)| got.starts_with(m.as_str()))
                .unwrap_or_else(|| panic!("{what}: Content-Type {got} not documented"));
            if media == "application/json" {
                json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
                let mut errors = Vec::new();
                check(&self.doc, &schema["schema"], &json, template, &mut errors);
                assert!(errors.is_empty(), "{what}:\n{}", errors.join("\n"));
            }
        }
        if (200..300).contains(&status) {
            self.succeeded
                .insert((method.to_string(), template.to_string()));
        }
        Answer { status, json }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_answers_match_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("livecov.db").display());
    let mut cfg = config(&url);
    cfg.admin_token = Some("admin-secret".into());
    cfg.agent_token = Some("agent-secret".into());
    // svc, svc2 and svc3: a fourth service is refused (429).
    cfg.max_services = 3;
    // Polls of agents' channels answer soon when nothing is asked.
    cfg.channel_wait = std::time::Duration::from_millis(200);
    let server = start(cfg).await;
    let mut c = Client {
        doc: doc(),
        base: format!("http://{}", server.addr),
        succeeded: BTreeSet::new(),
    };
    let (admin, agent_token) = (Some("admin-secret"), Some("agent-secret"));
    let body = |v: Value| Some(v.to_string().into_bytes());

    let health = c.call("get", "/healthz", "/healthz", None, None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json["pending_boundaries"], 0);
    assert_eq!(
        c.call("get", "/metrics", "/metrics", None, None)
            .await
            .status,
        200
    );
    let oa = "/api/v1/openapi.json";
    assert_eq!(c.call("get", oa, oa, None, None).await.status, 200);

    // Registration and heartbeats.
    let build = Arc::new(SimBuild::synthetic(Mode::Set, 3, 4, "openapi"));
    let agent = SimAgent::start(build.clone(), Some("agent-secret".into())).await;
    let reg = "/api/v1/agents/register";
    // Where it runs, as the agent tells it (`LIVECOV_LABELS` and what it learns itself).
    let mut r = agent.registration("svc", "i0");
    r["labels"] = json!({"env": "staging", "region": "eu", "vcs.revision": "4f2a9c1e"});
    assert_eq!(
        c.call("post", reg, reg, body(r.clone()), None).await.status,
        401
    );
    let bad = json!({"service": "svc"});
    assert_eq!(
        c.call("post", reg, reg, body(bad), agent_token)
            .await
            .status,
        400
    );
    let huge = Some(vec![b' '; 70 << 10]);
    assert_eq!(
        c.call("post", reg, reg, huge, agent_token).await.status,
        413
    );
    let mut short = r.clone();
    short["secret"] = json!("short");
    assert_eq!(
        c.call("post", reg, reg, body(short), agent_token)
            .await
            .status,
        400
    );
    let too_many: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("k{i}"), json!("v"))).collect();
    for labels in [
        json!({"env": "a,b"}),
        json!({"bad key": "x"}),
        json!({"env": 5}),
        Value::Object(too_many),
    ] {
        let mut wrong = r.clone();
        wrong["labels"] = labels.clone();
        assert_eq!(
            c.call("post", reg, reg, body(wrong), agent_token)
                .await
                .status,
            400,
            "labels {labels}"
        );
    }
    assert_eq!(
        c.call("post", reg, reg, body(r.clone()), agent_token)
            .await
            .status,
        200
    );
    // The instance id is now the agent's: another process's registration is refused.
    let mut impostor = r;
    impostor["secret"] = json!("0123456789abcdef0123456789abcdef");
    assert_eq!(
        c.call("post", reg, reg, body(impostor), agent_token)
            .await
            .status,
        403
    );
    let hb = "/api/v1/agents/{instance}/heartbeat";
    let i0 = "/api/v1/agents/i0/heartbeat";
    let beat = || body(json!({"secret": agent.secret()}));
    assert_eq!(c.call("post", hb, i0, beat(), None).await.status, 401);
    assert_eq!(
        c.call("post", hb, i0, beat(), agent_token).await.status,
        200
    );
    assert_eq!(c.call("post", hb, i0, None, agent_token).await.status, 403);
    let garbled = Some(b"{".to_vec());
    assert_eq!(
        c.call("post", hb, i0, garbled, agent_token).await.status,
        400
    );
    let nobody = "/api/v1/agents/nobody/heartbeat";
    assert_eq!(
        c.call("post", hb, nobody, None, agent_token).await.status,
        404
    );

    // Snapshots.
    let snaps = "/api/v1/services/{service}/snapshots";
    let svc_snaps = "/api/v1/services/svc/snapshots";
    let label = json!({"label": "round 1"});
    assert_eq!(
        c.call("post", snaps, svc_snaps, body(label.clone()), None)
            .await
            .status,
        401
    );
    let bad = json!({"label": 5});
    assert_eq!(
        c.call("post", snaps, svc_snaps, body(bad), admin)
            .await
            .status,
        400
    );
    agent.hit(0, 1);
    let first = c.call("post", snaps, svc_snaps, body(label), admin).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.json["kind"], "snapshot");
    agent.hit(5, 1);
    let reset_q = "/api/v1/services/svc/snapshots?reset=true";
    let second = c.call("post", snaps, reset_q, None, admin).await;
    assert_eq!(second.status, 201);
    assert_eq!(second.json["reset"], true);
    assert_eq!(second.json["kind"], "reset");
    let reset = "/api/v1/services/{service}/reset";
    let svc_reset = "/api/v1/services/svc/reset";
    let third = c
        .call("post", reset, svc_reset, Some(Vec::new()), admin)
        .await;
    assert_eq!(third.status, 201);
    assert_eq!(third.json["kind"], "reset");
    assert!(
        third.json["since"].is_string(),
        "the round began at a reset"
    );
    let nope = "/api/v1/services/nope/snapshots";
    assert_eq!(c.call("post", snaps, nope, None, admin).await.status, 404);

    // A snapshot of the live instances whose labels match a selector, kept canonical.
    let eu = || body(json!({"label": "eu", "selector": " region=eu, env=staging"}));
    let picked = c.call("post", snaps, svc_snaps, eu(), admin).await;
    assert_eq!(picked.status, 201);
    assert_eq!(picked.json["selector"], "env=staging,region=eu");
    assert_eq!(picked.json["kind"], "snapshot");
    assert_eq!(picked.json["instances_ok"], 1);
    assert_eq!(first.json["selector"], Value::Null);
    let qa_only = body(json!({"selector": "env=qa"}));
    let unmatched = c.call("post", snaps, svc_snaps, qa_only, admin).await;
    assert_eq!(unmatched.status, 409);
    assert_eq!(
        unmatched.json["error"],
        "no live instance of service \"svc\" has the labels env=qa"
    );
    for selector in ["env", "env=qa,env=prod", "", " , ", "bad key=x", "env=a,b"] {
        let bad = body(json!({"selector": selector}));
        assert_eq!(
            c.call("post", snaps, svc_snaps, bad, admin).await.status,
            400,
            "selector {selector:?}"
        );
    }
    // A reset ends every instance's round: it takes no selector.
    assert_eq!(
        c.call("post", snaps, reset_q, eu(), admin).await.status,
        400
    );
    let picked_id = picked.json["id"].as_i64().unwrap();
    let by_selector = |q: &str| format!("/api/v1/services/svc/snapshots?selector={q}");
    // Compared in canonical form: any order of the pairs lists the same snapshots.
    for q in ["env%3Dstaging%2Cregion%3Deu", "region%3Deu%2Cenv%3Dstaging"] {
        let listed = c.call("get", snaps, &by_selector(q), None, None).await;
        assert_eq!(listed.status, 200);
        let ids: Vec<i64> = listed.json["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [picked_id], "{q}");
    }
    let none = c
        .call("get", snaps, &by_selector("env%3Dqa"), None, None)
        .await;
    assert_eq!(none.status, 200);
    assert_eq!(none.json["snapshots"], json!([]));
    let garbled = by_selector("env");
    assert_eq!(c.call("get", snaps, &garbled, None, None).await.status, 400);
    let (a, b) = (
        first.json["id"].as_i64().unwrap(),
        second.json["id"].as_i64().unwrap(),
    );

    // Sessions.
    let sessions = "/api/v1/services/{service}/sessions";
    let svc_sessions = "/api/v1/services/svc/sessions";
    let qa = || body(json!({"name": "qa run"}));
    assert_eq!(
        c.call("post", sessions, svc_sessions, qa(), None)
            .await
            .status,
        401
    );
    let unnamed = body(json!({"name": ""}));
    assert_eq!(
        c.call("post", sessions, svc_sessions, unnamed, admin)
            .await
            .status,
        400
    );
    let nope_sessions = "/api/v1/services/nope/sessions";
    assert_eq!(
        c.call("post", sessions, nope_sessions, qa(), admin)
            .await
            .status,
        404
    );
    let started = c.call("post", sessions, svc_sessions, qa(), admin).await;
    assert_eq!(started.status, 201);
    assert_eq!(started.json["state"], "open");
    let again = c.call("post", sessions, svc_sessions, qa(), admin).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json["id"], started.json["id"]);
    agent.hit(7, 1);
    let open = c.call("get", sessions, svc_sessions, None, None).await;
    assert_eq!(open.status, 200);
    assert_eq!(open.json["sessions"][0]["name"], "qa run");
    assert_eq!(
        c.call("get", sessions, nope_sessions, None, None)
            .await
            .status,
        404
    );
    let stop = "/api/v1/services/{service}/sessions/{name}/stop";
    let svc_stop = "/api/v1/services/svc/sessions/qa%20run/stop";
    assert_eq!(c.call("post", stop, svc_stop, None, None).await.status, 401);
    let qa_label = || body(json!({"label": "qa done"}));
    let stopped = c.call("post", stop, svc_stop, qa_label(), admin).await;
    assert_eq!(stopped.status, 201);
    assert_eq!(stopped.json["kind"], "session");
    assert_eq!(stopped.json["session"], "qa run");
    assert_eq!(stopped.json["label"], "qa done");
    // The session holds the one block run while it was open; the deploy, all three.
    assert_eq!(stopped.json["totals"]["blocks_covered"], 1);
    assert_eq!(stopped.json["deploy"]["blocks_covered"], 3);
    assert_eq!(
        c.call("post", stop, svc_stop, qa_label(), admin)
            .await
            .status,
        404
    );
    let listed = c.call("get", sessions, svc_sessions, None, None).await;
    assert_eq!(listed.json["sessions"][0]["state"], "stopped");
    assert_eq!(listed.json["sessions"][0]["snapshot"], stopped.json["id"]);

    // Services.
    let list = "/api/v1/services";
    assert_eq!(c.call("get", list, list, None, None).await.status, 200);
    let one = "/api/v1/services/{service}";
    let svc = c.call("get", one, "/api/v1/services/svc", None, None).await;
    assert_eq!(svc.status, 200);
    assert_eq!(
        svc.json["instance_list"][0]["labels"],
        json!({"env": "staging", "region": "eu", "vcs.revision": "4f2a9c1e"})
    );
    assert_eq!(
        c.call("get", one, "/api/v1/services/nope", None, None)
            .await
            .status,
        404
    );

    // Reading snapshots.
    let listed = c
        .call(
            "get",
            snaps,
            "/api/v1/services/svc/snapshots?limit=2",
            None,
            None,
        )
        .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json["snapshots"].as_array().unwrap().len(), 2);
    let bad_limit = "/api/v1/services/svc/snapshots?limit=many";
    assert_eq!(
        c.call("get", snaps, bad_limit, None, None).await.status,
        400
    );
    assert_eq!(c.call("get", snaps, nope, None, None).await.status, 404);
    let detail = "/api/v1/snapshots/{id}";
    assert_eq!(
        c.call("get", detail, &format!("/api/v1/snapshots/{a}"), None, None)
            .await
            .status,
        200
    );
    assert_eq!(
        c.call("get", detail, "/api/v1/snapshots/0", None, None)
            .await
            .status,
        400
    );
    assert_eq!(
        c.call("get", detail, "/api/v1/snapshots/999", None, None)
            .await
            .status,
        404
    );
    let profile = "/api/v1/snapshots/{id}/profile";
    let p = format!("/api/v1/snapshots/{a}/profile");
    assert_eq!(c.call("get", profile, &p, None, None).await.status, 200);
    let pdf = format!("{p}?format=pdf");
    assert_eq!(c.call("get", profile, &pdf, None, None).await.status, 400);
    for view in ["window", "deploy"] {
        let q = format!("{p}?view={view}&format=json");
        assert_eq!(c.call("get", profile, &q, None, None).await.status, 200);
    }
    let everything = format!("{p}?view=everything");
    assert_eq!(
        c.call("get", profile, &everything, None, None).await.status,
        400
    );
    for format in ["go", "lcov", "cobertura", "json", "html"] {
        let q = format!("{p}?format={format}&strip=example.com/&source=src");
        assert_eq!(c.call("get", profile, &q, None, None).await.status, 200);
        let q = format!("{p}?format={format}&exclude=**/*_mock.go&exclude=example.com/x/...");
        assert_eq!(c.call("get", profile, &q, None, None).await.status, 200);
    }
    let bad = format!("{p}?exclude=./mocks/...");
    assert_eq!(c.call("get", profile, &bad, None, None).await.status, 400);
    let exported = c
        .call("get", profile, &format!("{p}?format=json"), None, None)
        .await;
    assert!(
        !exported.json["files"][0]["functions"][0]["blocks"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let diff = "/api/v1/snapshots/{a}/diff/{b}";
    let d = format!("/api/v1/snapshots/{a}/diff/{b}");
    let full = c.call("get", diff, &d, None, None).await;
    assert_eq!(full.status, 200);
    assert!(!full.json["files"].as_array().unwrap().is_empty());
    // Both ran the one build: no function differs.
    assert_eq!(full.json["functions"], json!([]));
    let small = format!("{d}?blocks=false");
    assert_eq!(c.call("get", diff, &small, None, None).await.status, 200);
    let missing = format!("/api/v1/snapshots/{a}/diff/999");
    assert_eq!(c.call("get", diff, &missing, None, None).await.status, 404);
    let patch = "/api/v1/snapshots/{id}/patch";
    let pa = format!("/api/v1/snapshots/{a}/patch?module=example.com/openapi");
    let change = b"--- a/pkg0/file0.go\n+++ b/pkg0/file0.go\n@@ -10 +10 @@\n-a\n+b\n";
    let measured = c
        .call("post", patch, &pa, Some(change.to_vec()), None)
        .await;
    assert_eq!(measured.status, 200);
    assert_eq!(measured.json["total"]["lines"], 1);
    let garbled = Some(b"@@ -1 +1 @@\n".to_vec());
    assert_eq!(c.call("post", patch, &pa, garbled, None).await.status, 400);
    let p999 = "/api/v1/snapshots/999/patch";
    let same = Some(change.to_vec());
    assert_eq!(c.call("post", patch, p999, same, None).await.status, 404);
    let too_big = Some(vec![b' '; (8 << 20) + 1]);
    assert_eq!(c.call("post", patch, &pa, too_big, None).await.status, 413);

    // Builds and their sources.
    let src = "package p\n\nfunc F(x int) int {\n\tif x > 0 {\n\t\treturn 1\n\t}\n\treturn 0\n}\n";
    let name = "example.com/up/p.go";
    let file = instrumenter::analyze(name, src.as_bytes(), instrumenter::Rules::Go120).unwrap();
    let up = SimBuild::new(BuildMeta {
        mode: Mode::Set,
        files: vec![file],
    });
    let pb = "/api/v1/builds/{build}";
    let this = format!("/api/v1/builds/{}", up.id);
    let meta = || Some(up.gz.clone());
    assert_eq!(c.call("put", pb, &this, meta(), None).await.status, 401);
    let not_id = "/api/v1/builds/not-a-build";
    assert_eq!(
        c.call("put", pb, not_id, meta(), agent_token).await.status,
        400
    );
    assert_eq!(
        c.call("put", pb, &this, meta(), agent_token).await.status,
        201
    );
    assert_eq!(c.call("put", pb, &this, meta(), admin).await.status, 200);
    let ps = "/api/v1/builds/{build}/sources";
    let sources = format!("{this}/sources");
    let upload = |text: &str| {
        let files = vec![SourceFile {
            name: name.into(),
            source: text.into(),
        }];
        let json = serde_json::to_vec(&SourceUpload { files }).unwrap();
        Some(report::gzip::gzip(&json))
    };
    let edited = upload(&src.replace("return 1", "return 2"));
    assert_eq!(c.call("put", ps, &sources, edited, admin).await.status, 400);
    let unknown = format!("/api/v1/builds/{}/sources", "0".repeat(64));
    assert_eq!(
        c.call("put", ps, &unknown, upload(src), admin).await.status,
        404
    );
    let stored = c.call("put", ps, &sources, upload(src), admin).await;
    assert_eq!(stored.status, 200);
    assert_eq!(stored.json["stored"], 1);

    // A rolling update: a second build of svc, with the function of its first file edited,
    // its second file the same, its third file gone and a file added. The snapshot is seen
    // against the new build, with what the old one measured carried into the same function.
    let mut meta = build.meta.clone();
    meta.files[0].funcs[0].hash = [9; 32];
    meta.files.pop();
    let mut added = meta.files[1].clone();
    added.name = "example.com/openapi/pkg0/file9.go".into();
    meta.files.push(added);
    let next = Arc::new(SimBuild::new(BuildMeta {
        mode: Mode::Set,
        files: meta.files,
    }));
    let agent2 = SimAgent::start(next.clone(), Some("agent-secret".into())).await;
    let r = agent2.registration("svc", "i1");
    assert_eq!(
        c.call("post", reg, reg, body(r), agent_token).await.status,
        200
    );
    agent.hit(4, 1); // the second file's function, on the old build only: carried
    agent2.hit(0, 1); // the edited function, on the new build: measured
    let rolled = c.call("post", snaps, svc_snaps, None, admin).await;
    assert_eq!(rolled.status, 201);
    assert_eq!(rolled.json["build"], next.id.as_str());
    let rolled = rolled.json["id"].as_i64().unwrap();
    let newest = c
        .call(
            "get",
            snaps,
            "/api/v1/services/svc/snapshots?limit=1",
            None,
            None,
        )
        .await;
    assert_eq!(newest.json["snapshots"][0]["id"], rolled);
    assert_eq!(newest.json["snapshots"][0]["build_count"], 2);
    let names = |v: &Value, key: &str| -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x[key].as_str().unwrap().to_string())
            .collect()
    };
    let set =
        |names: &[&str]| -> BTreeSet<String> { names.iter().map(|n| n.to_string()).collect() };
    // The `json` export shows the carried blocks, the states, and the functions gone.
    let exported_across = |json: &Value| {
        let funcs: Vec<&Value> = json["files"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["functions"].as_array().unwrap())
            .collect();
        let blocks: Vec<&Value> = funcs
            .iter()
            .flat_map(|f| f["blocks"].as_array().unwrap())
            .collect();
        assert!(blocks.iter().any(|b| b["carried"] == true), "{json}");
        assert!(blocks.iter().any(|b| b.get("carried").is_none()), "{json}");
        let states: BTreeSet<String> = funcs
            .iter()
            .map(|f| {
                format!(
                    "{}/{}",
                    f["state"].as_str().unwrap(),
                    f["change"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            states,
            set(&["measured/edited", "carried/same", "changed/added"]),
            "{json}"
        );
        assert_eq!(names(&json["gone"], "change"), set(&["edited", "removed"]));
    };
    let rp = format!("/api/v1/snapshots/{rolled}/profile");
    let across = c
        .call("get", profile, &format!("{rp}?format=json"), None, None)
        .await;
    assert_eq!(across.status, 200);
    exported_across(&across.json);
    let zeros = "0".repeat(64);
    for (query, status) in [
        (format!("build={}&format=json", build.id), 200),
        (format!("build={}&view=deploy", next.id), 200),
        (format!("build={zeros}"), 404),
        ("build=abc".to_string(), 400),
    ] {
        let q = format!("{rp}?{query}");
        assert_eq!(
            c.call("get", profile, &q, None, None).await.status,
            status,
            "{q}"
        );
    }
    // A diff from the old build to the new lists the functions that changed.
    let rd = format!("/api/v1/snapshots/{a}/diff/{rolled}");
    let changed = c.call("get", diff, &rd, None, None).await;
    assert_eq!(changed.status, 200);
    assert_eq!(changed.json["build"], next.id.as_str());
    assert_eq!(
        names(&changed.json["functions"], "change"),
        set(&["added", "edited", "removed"])
    );
    let old = c
        .call("get", diff, &format!("{rd}?build={}", build.id), None, None)
        .await;
    assert_eq!(old.status, 200);
    assert_eq!(old.json["build"], build.id.as_str());
    assert_eq!(old.json["functions"], json!([]));
    let unknown_build = format!("{rd}?build={zeros}");
    assert_eq!(
        c.call("get", diff, &unknown_build, None, None).await.status,
        404
    );
    let not_build = format!("{rd}?build=abc");
    assert_eq!(
        c.call("get", diff, &not_build, None, None).await.status,
        400
    );

    // The QA cycle from the first snapshot: both builds, against the new one.
    let cycle = "/api/v1/services/{service}/cycle";
    let svc_cycle = "/api/v1/services/svc/cycle";
    let whole = c
        .call("get", cycle, &format!("{svc_cycle}?from={a}"), None, None)
        .await;
    assert_eq!(whole.status, 200);
    assert_eq!(
        (whole.json["from"].as_i64(), whole.json["to"].as_i64()),
        (Some(a), Some(rolled))
    );
    assert_eq!(whole.json["build"], next.id.as_str());
    assert_eq!(
        names(&whole.json["builds"], "build"),
        set(&[&build.id, &next.id])
    );
    assert!(whole.json["stmts_carried"].as_i64().unwrap() > 0);
    assert!(whole.json["stmts_measured"].as_i64().unwrap() > 0);
    assert_eq!(
        names(&whole.json["gone"], "change"),
        set(&["edited", "removed"])
    );
    let early = c
        .call(
            "get",
            cycle,
            &format!("{svc_cycle}?from={a}&to={b}"),
            None,
            None,
        )
        .await;
    assert_eq!(early.status, 200);
    assert_eq!(early.json["to"], b);
    assert_eq!(names(&early.json["builds"], "build"), set(&[&build.id]));
    assert_eq!(early.json["gone"], json!([]));
    for (query, status) in [
        (format!("from={a}&view=deploy&build={}", build.id), 200),
        (format!("from={a}&build={zeros}"), 404),
        (format!("from={a}&build=abc"), 400),
        (format!("from={a}&view=everything"), 400),
        (format!("from={rolled}&to={a}"), 400),
        ("to=1".to_string(), 400),
        ("from=first".to_string(), 400),
        ("from=999".to_string(), 404),
    ] {
        let q = format!("{svc_cycle}?{query}");
        assert_eq!(
            c.call("get", cycle, &q, None, None).await.status,
            status,
            "{q}"
        );
    }
    let nope_cycle = format!("/api/v1/services/nope/cycle?from={a}");
    assert_eq!(
        c.call("get", cycle, &nope_cycle, None, None).await.status,
        404
    );
    let cycle_profile = "/api/v1/services/{service}/cycle/profile";
    let cp = format!("/api/v1/services/svc/cycle/profile?from={a}");
    for format in ["go", "lcov", "cobertura", "json", "html"] {
        let q = format!("{cp}&format={format}&strip=example.com/&source=src");
        assert_eq!(
            c.call("get", cycle_profile, &q, None, None).await.status,
            200
        );
    }
    let cycle_json = c
        .call(
            "get",
            cycle_profile,
            &format!("{cp}&format=json"),
            None,
            None,
        )
        .await;
    assert_eq!(cycle_json.json["snapshot"], rolled);
    exported_across(&cycle_json.json);
    let filtered = format!("{cp}&format=json&exclude=**/*.go");
    let filtered = c.call("get", cycle_profile, &filtered, None, None).await;
    assert_eq!(filtered.status, 200);
    assert_eq!(filtered.json["stmts"], 0, "every file excluded");
    let cycle_bad = format!("{cp}&exclude=a/**b/c.go");
    assert_eq!(
        c.call("get", cycle_profile, &cycle_bad, None, None)
            .await
            .status,
        400
    );
    let cycle_pdf = format!("{cp}&format=pdf");
    assert_eq!(
        c.call("get", cycle_profile, &cycle_pdf, None, None)
            .await
            .status,
        400
    );
    let cycle_unknown = format!("{cp}&build={zeros}");
    assert_eq!(
        c.call("get", cycle_profile, &cycle_unknown, None, None)
            .await
            .status,
        404
    );
    let nope_cp = format!("/api/v1/services/nope/cycle/profile?from={a}");
    assert_eq!(
        c.call("get", cycle_profile, &nope_cp, None, None)
            .await
            .status,
        404
    );

    // In the rolling update, a selector reads only the labelled instance, of the old build;
    // the new instance registered without labels.
    let staging = body(json!({"selector": "env=staging"}));
    let old_only = c.call("post", snaps, svc_snaps, staging, admin).await;
    assert_eq!(old_only.status, 201);
    assert_eq!(old_only.json["selector"], "env=staging");
    assert_eq!(old_only.json["instances_ok"], 1);
    assert_eq!(old_only.json["build"], build.id.as_str());
    assert_eq!(old_only.json["build_count"], 1);
    let both = c.call("get", one, "/api/v1/services/svc", None, None).await;
    let labels: BTreeMap<&str, &Value> = both.json["instance_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap(), &i["labels"]))
        .collect();
    assert_eq!(labels["i1"], &json!({}));
    assert_eq!(labels["i0"]["env"], "staging");

    // Another service of another build: compared against its build (every function added or
    // removed); no answer (502).
    let other = SimAgent::start(
        Arc::new(SimBuild::synthetic(Mode::Count, 2, 3, "other")),
        Some("agent-secret".into()),
    )
    .await;
    let r = other.registration("svc2", "j0");
    assert_eq!(
        c.call("post", reg, reg, body(r), agent_token).await.status,
        200
    );
    let svc2 = "/api/v1/services/svc2/snapshots";
    let fourth = c.call("post", snaps, svc2, None, admin).await;
    assert_eq!(fourth.status, 201);
    let unrelated = format!("/api/v1/snapshots/{a}/diff/{}", fourth.json["id"]);
    let apart = c.call("get", diff, &unrelated, None, None).await;
    assert_eq!(apart.status, 200);
    assert_eq!(
        names(&apart.json["functions"], "change"),
        set(&["added", "removed"])
    );
    // A cycle is of one service's snapshots.
    let foreign = format!("{svc_cycle}?from={}", fourth.json["id"]);
    assert_eq!(c.call("get", cycle, &foreign, None, None).await.status, 400);
    let svc2_sessions = "/api/v1/services/svc2/sessions";
    let night = body(json!({"name": "night"}));
    assert_eq!(
        c.call("post", sessions, svc2_sessions, night, admin)
            .await
            .status,
        201
    );
    other.set_behavior(Behavior::Status(500));
    assert_eq!(c.call("post", snaps, svc2, None, admin).await.status, 502);
    // A stop no instance answers changes nothing: the session stays open.
    let svc2_stop = "/api/v1/services/svc2/sessions/night/stop";
    assert_eq!(
        c.call("post", stop, svc2_stop, None, admin).await.status,
        502
    );
    let still = c.call("get", sessions, svc2_sessions, None, None).await;
    assert_eq!(still.json["sessions"][0]["state"], "open");
    // Processes that end, of svc3: their last counters, delivered by their agents or
    // collected from the files the agents kept, of a build the server has not read yet.
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let ending = Arc::new(SimBuild::synthetic(Mode::Count, 2, 4, "ended"));
    let counted = |hits: &[usize], mode: Mode| {
        let mut values = vec![0u32; ending.num_blocks()];
        for &h in hits {
            values[h] += 1;
        }
        server::lcc::encode(&ending.id, mode, &ending.shape, &values)
    };
    let last = SimAgent::start(ending.clone(), Some("agent-secret".into())).await;
    // It never listened: port 0.
    let delivery = |instance: &str, counters: &[u8]| {
        let mut r = last.registration("svc3", instance);
        r["port"] = json!(0);
        json!({"registration": r, "counters": b64(counters)})
    };
    let fin = "/api/v1/agents/{instance}/final";
    let k0 = "/api/v1/agents/k0/final";
    let hits = counted(&[0, 5], Mode::Count);
    let deliver = || body(delivery("k0", &hits));
    // The server wants the build's metadata first; the agent sends it and delivers again.
    let unstored = c.call("post", fin, k0, deliver(), agent_token).await;
    assert_eq!(unstored.status, 409);
    let ending_meta = format!("/api/v1/builds/{}", ending.id);
    let gz = Some(ending.gz.clone());
    assert_eq!(
        c.call("put", pb, &ending_meta, gz, agent_token)
            .await
            .status,
        201
    );
    assert_eq!(c.call("post", fin, k0, deliver(), None).await.status, 401);
    let elsewhere = "/api/v1/agents/k9/final";
    assert_eq!(
        c.call("post", fin, elsewhere, deliver(), agent_token)
            .await
            .status,
        400
    );
    let mut not_base64 = delivery("k0", &hits);
    not_base64["counters"] = json!("%%%");
    let other_mode = delivery("k0", &counted(&[0], Mode::Set));
    let mut no_build = delivery("k0", &hits);
    no_build["registration"]["build"] = json!("abc");
    for wrong in [not_base64, other_mode, no_build] {
        assert_eq!(
            c.call("post", fin, k0, body(wrong.clone()), agent_token)
                .await
                .status,
            400,
            "{wrong}"
        );
    }
    let huge = Some(vec![b' '; (16 << 20) + 1]);
    assert_eq!(c.call("post", fin, k0, huge, agent_token).await.status, 413);
    let delivered = c.call("post", fin, k0, deliver(), agent_token).await;
    assert_eq!(delivered.status, 200);
    assert_eq!(delivered.json["state"], "exited");
    assert_eq!(delivered.json["build"], ending.id.as_str());
    assert_eq!(delivered.json["changed"], true);
    let again = c.call("post", fin, k0, deliver(), agent_token).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json["changed"], false);
    let mut stolen = delivery("k0", &hits);
    stolen["registration"]["secret"] = json!("0123456789abcdef0123456789abcdef");
    assert_eq!(
        c.call("post", fin, k0, body(stolen), agent_token)
            .await
            .status,
        403
    );
    // svc, svc2 and svc3 are all the services the server keeps (`max_services`).
    let mut crowded = delivery("k5", &hits);
    crowded["registration"]["service"] = json!("svc4");
    let k5 = "/api/v1/agents/k5/final";
    assert_eq!(
        c.call("post", fin, k5, body(crowded), agent_token)
            .await
            .status,
        429
    );

    let collect = "/api/v1/services/{service}/collect";
    let octets = "application/octet-stream";
    let k1 = "/api/v1/services/svc3/collect?instance=k1";
    let file = || Some(counted(&[2], Mode::Count));
    let post_file = async |c: &mut Client, path: &str, bytes: Option<Vec<u8>>, token| {
        c.send("post", collect, path, bytes, octets, token).await
    };
    assert_eq!(post_file(&mut c, k1, file(), None).await.status, 401);
    let collected = post_file(&mut c, k1, file(), admin).await;
    assert_eq!(collected.status, 200);
    assert_eq!(collected.json["state"], "exited");
    assert_eq!(collected.json["changed"], true);
    let again = post_file(&mut c, k1, file(), admin).await;
    assert_eq!(again.json["changed"], false);
    let of_svc = server::lcc::encode(
        &build.id,
        Mode::Set,
        &build.shape,
        &vec![0; build.num_blocks()],
    );
    let never_read = SimBuild::synthetic(Mode::Count, 1, 3, "never-read");
    let unread = server::lcc::encode(&never_read.id, Mode::Count, &never_read.shape, &[1, 0, 0]);
    for (path, bytes, status) in [
        ("/api/v1/services/svc3/collect", file(), 400),
        (k1, Some(b"LCC1 nonsense".to_vec()), 400),
        // k1 is of svc3, and runs the build `ending`.
        ("/api/v1/services/svc/collect?instance=k1", file(), 400),
        (k1, Some(of_svc), 400),
        (
            "/api/v1/services/svc3/collect?instance=k7",
            Some(unread),
            409,
        ),
        (k1, Some(vec![0; (16 << 20) + 1]), 413),
        ("/api/v1/services/svc4/collect?instance=k8", file(), 429),
    ] {
        let answer = post_file(&mut c, path, bytes, admin).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.json);
    }
    let svc3 = c
        .call("get", one, "/api/v1/services/svc3", None, None)
        .await;
    assert_eq!(svc3.status, 200);
    for i in svc3.json["instance_list"].as_array().unwrap() {
        assert_eq!(i["state"], "exited", "{i}");
        assert!(i["exited_at"].is_string(), "{i}");
    }
    // No instance of svc3 is live, but two processes ended in its round: they are read.
    let svc3_snaps = "/api/v1/services/svc3/snapshots";
    let of_ended = c.call("post", snaps, svc3_snaps, None, admin).await;
    assert_eq!(of_ended.status, 201);
    assert_eq!(of_ended.json["instances_ok"], 2);
    assert_eq!(of_ended.json["totals"]["blocks_covered"], 3);
    for r in of_ended.json["instance_results"].as_array().unwrap() {
        assert_eq!(r["outcome"], "ok", "{r}");
        assert!(
            r["message"].as_str().unwrap().starts_with("ended at"),
            "{r}"
        );
    }
    // A live instance's counters file: it stays live, and is pulled as well.
    let r = last.registration("svc3", "k2");
    assert_eq!(
        c.call("post", reg, reg, body(r), agent_token).await.status,
        200
    );
    let k2 = "/api/v1/services/svc3/collect?instance=k2";
    let live = post_file(&mut c, k2, file(), admin).await;
    assert_eq!(live.status, 200);
    assert_eq!(live.json["state"], "live");
    let with_live = c.call("post", snaps, svc3_snaps, None, admin).await;
    assert_eq!(with_live.status, 201);
    assert_eq!(with_live.json["instances_ok"], 3);
    last.stop();

    // An agent the server cannot connect to: i0 polls, and the server reads it over that.
    let poll = "/api/v1/agents/{instance}/channel";
    let i0_poll = "/api/v1/agents/i0/channel";
    let json = "application/json";
    let secret = agent.secret().to_string();
    let mine = [("Livecov-Secret", secret.as_str())];
    for (token, headers, status) in [
        (None, &mine[..], 401),
        (agent_token, &[][..], 403),
        (agent_token, &[("Livecov-Secret", "guess")][..], 403),
        // Nothing asked within --channel-wait.
        (agent_token, &mine[..], 204),
    ] {
        let answer = c
            .send_with("post", poll, i0_poll, None, json, token, headers)
            .await;
        assert_eq!(answer.status, status, "{headers:?}: {}", answer.json);
    }
    let nobody_poll = "/api/v1/agents/nobody/channel";
    let answer = c
        .send_with("post", poll, nobody_poll, None, json, agent_token, &mine)
        .await;
    assert_eq!(answer.status, 404);
    // i0 polled a moment ago: a snapshot now asks it over its channel.
    let base = c.base.clone();
    let snapshot = tokio::spawn(async move {
        client()
            .post(format!("{base}/api/v1/services/svc/snapshots"))
            .bearer_auth("admin-secret")
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    let asked = c
        .send_with("post", poll, i0_poll, None, json, agent_token, &mine)
        .await;
    assert_eq!(asked.status, 200);
    let id = asked.json["id"].as_str().unwrap().to_string();
    assert_eq!(asked.json["path"], "/livecov/v1/counters");
    // The agent serves it as its port does.
    let served = client()
        .get(format!("http://{}/livecov/v1/counters", agent.addr))
        .header(
            "Authorization",
            asked.json["authorization"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    let status = served.status().as_u16().to_string();
    let header = |n: &str| served.headers()[n].to_str().unwrap().to_string();
    let (build_id, epoch) = (header("Livecov-Build"), header("Livecov-Epoch"));
    let counters = served.bytes().await.unwrap().to_vec();
    let answer_t = "/api/v1/agents/{instance}/channel/{id}";
    let octets = "application/octet-stream";
    let reply = |status: &'static str| {
        let mut h = mine.to_vec();
        h.push(("Livecov-Status", status));
        h
    };
    let cases = [
        (
            format!("/api/v1/agents/i0/channel/{id}"),
            None,
            reply("200"),
            401,
        ),
        (
            format!("/api/v1/agents/i0/channel/{id}"),
            agent_token,
            reply("two hundred"),
            400,
        ),
        (
            "/api/v1/agents/i0/channel/nope".into(),
            agent_token,
            reply("200"),
            404,
        ),
        (
            format!("/api/v1/agents/i0/channel/{id}"),
            agent_token,
            mine.to_vec(),
            400,
        ),
    ];
    for (path, token, headers, status) in cases {
        let answer = c
            .send_with(
                "post",
                answer_t,
                &path,
                Some(counters.clone()),
                octets,
                token,
                &headers,
            )
            .await;
        assert_eq!(answer.status, status, "{path} {headers:?}: {}", answer.json);
    }
    let mut headers = mine.to_vec();
    headers.push(("Livecov-Status", &status));
    headers.push(("Livecov-Build", &build_id));
    headers.push(("Livecov-Epoch", &epoch));
    let answered = c
        .send_with(
            "post",
            answer_t,
            &format!("/api/v1/agents/i0/channel/{id}"),
            Some(counters),
            octets,
            agent_token,
            &headers,
        )
        .await;
    assert_eq!(answered.status, 204, "{}", answered.json);
    let snapshot = snapshot.await.unwrap();
    let i0 = snapshot["instance_results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["instance"] == "i0")
        .unwrap_or_else(|| panic!("{snapshot}"));
    assert_eq!(i0["outcome"], "ok", "{snapshot}");
    let svc = c.call("get", one, "/api/v1/services/svc", None, None).await;
    let listed = svc.json["instance_list"].as_array().unwrap();
    let i0 = listed.iter().find(|i| i["id"] == "i0").unwrap();
    assert_eq!(i0["channel"], true, "{i0}");

    let health = c.call("get", "/healthz", "/healthz", None, None).await;
    assert_eq!(health.json["pending_boundaries"], 0);

    // Every operation answered with success at least once, as documented.
    assert_eq!(
        c.succeeded,
        documented_routes(&c.doc),
        "operations not exercised"
    );
    agent.stop();
    agent2.stop();
    other.stop();
    server.stop().await.unwrap();
}
