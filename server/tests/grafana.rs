//! Keeps `docs/GRAFANA.md` and `docs/grafana-dashboard.json` true: every query they give runs
//! against a store that a real server filled (two simulated agents, three snapshots, one of
//! them a reset) and answers rows.
//!
//! The queries run on PostgreSQL as written, with Grafana's macros and variables replaced by
//! literals, and on SQLite with the timestamp conversion the doc gives for it. PostgreSQL is
//! tested when `LIVECOV_TEST_POSTGRES` is set (`scripts/test.sh` sets it), as in every server
//! test (`common::databases`).
//!
//! The `sql` blocks that are not `SELECT`s (the read-only role's `CREATE ROLE` and `GRANT`s)
//! are not run: roles belong to the whole PostgreSQL cluster, not to the test's database, and
//! the test role need not be allowed to create them.

mod common;

use std::sync::Arc;

use common::*;
use instrumenter::Mode;
use server::sim::SimBuild;
use sqlx::{Connection, Row};

const DOC: &str = include_str!("../../docs/GRAFANA.md");
const DASHBOARD: &str = include_str!("../../docs/grafana-dashboard.json");

/// Every ```sql block of the doc, trimmed, with where it came from.
fn doc_blocks() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = DOC;
    while let Some(start) = rest.find("```sql\n") {
        let body = &rest[start + "```sql\n".len()..];
        let end = body.find("```").expect("a closed sql block");
        let line = DOC[..DOC.len() - rest.len() + start].lines().count() + 1;
        out.push((
            format!("docs/GRAFANA.md line {line}"),
            body[..end].trim().to_string(),
        ));
        rest = &body[end + 3..];
    }
    out
}

/// Every `rawSql` of the dashboard's panels, and the template variables' queries.
fn dashboard_queries() -> Vec<(String, String)> {
    let d: serde_json::Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            out.push((
                format!("dashboard panel {:?}", p["title"].as_str().unwrap()),
                t["rawSql"].as_str().expect("rawSql").trim().to_string(),
            ));
        }
    }
    for v in d["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"].as_str() {
            out.push((
                format!("dashboard variable {:?}", v["name"].as_str().unwrap()),
                q.trim().to_string(),
            ));
        }
    }
    out
}

/// Replaces every call `name(ARG)` in `sql` (parentheses matched) with `f(ARG)`.
fn replace_calls(sql: &str, name: &str, f: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(at) = rest.find(&format!("{name}(")) {
        out += &rest[..at];
        let args = &rest[at + name.len() + 1..];
        let mut depth = 1;
        let end = args
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| i)
            .unwrap_or_else(|| panic!("unbalanced {name}( in {sql}"));
        out += &f(&args[..end]);
        rest = &args[end + 1..];
    }
    out + rest
}

/// `sql` with Grafana's macros and variables as literals: the whole time range, service `svc`.
fn literal(sql: &str) -> String {
    let mut s = replace_calls(sql, "$__timeFilter", |_| "1 = 1".to_string());
    for (from, to) in [
        ("$__unixEpochFrom()", "0"),
        ("$__unixEpochTo()", "4102444800"),
        ("'${service}'", "'svc'"),
        ("'$service'", "'svc'"),
        ("${service}", "'svc'"),
        ("$service", "'svc'"),
    ] {
        s = s.replace(from, to);
    }
    assert!(!s.contains('$'), "a Grafana macro or variable left in {s}");
    s
}

/// The doc's SQLite form: `datetime(X / 1000, 'unixepoch')` for `to_timestamp(X / 1000.0)`.
fn for_sqlite(sql: &str) -> String {
    replace_calls(sql, "to_timestamp", |arg| {
        let x = arg
            .strip_suffix(" / 1000.0")
            .unwrap_or_else(|| panic!("to_timestamp({arg}): want X / 1000.0"));
        format!("datetime({x} / 1000, 'unixepoch')")
    })
}

fn is_select(sql: &str) -> bool {
    sql.to_ascii_uppercase().starts_with("SELECT")
}

/// The coverage-over-time query: one row per snapshot of the service, percent in `coverage`.
fn is_coverage_over_time(sql: &str) -> bool {
    sql.contains("FROM snapshots\n") && sql.contains("service AS metric")
}

enum Conn {
    Pg(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Conn {
    async fn open(db: &Db) -> Conn {
        match db.kind {
            "postgres" => Conn::Pg(sqlx::PgConnection::connect(&db.url).await.unwrap()),
            _ => Conn::Sqlite(
                sqlx::SqliteConnection::connect(&format!("{}?mode=ro", db.url))
                    .await
                    .unwrap(),
            ),
        }
    }

    /// How many rows `sql` answers.
    async fn run(&mut self, sql: &str) -> Result<usize, sqlx::Error> {
        Ok(match self {
            Conn::Pg(c) => sqlx::query(sql).fetch_all(&mut *c).await?.len(),
            Conn::Sqlite(c) => sqlx::query(sql).fetch_all(&mut *c).await?.len(),
        })
    }

    /// The first column of each row, as a float.
    async fn floats(&mut self, sql: &str) -> Result<Vec<Option<f64>>, sqlx::Error> {
        Ok(match self {
            Conn::Pg(c) => sqlx::query(sql)
                .fetch_all(&mut *c)
                .await?
                .iter()
                .map(|r| r.get::<Option<f64>, _>(0))
                .collect(),
            Conn::Sqlite(c) => sqlx::query(sql)
                .fetch_all(&mut *c)
                .await?
                .iter()
                .map(|r| r.get::<Option<f64>, _>(0))
                .collect(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_queries_answer() {
    let queries: Vec<(String, String)> = doc_blocks()
        .into_iter()
        .chain(dashboard_queries())
        .collect();
    let selects: Vec<&(String, String)> = queries.iter().filter(|(_, q)| is_select(q)).collect();
    // The doc's six SELECTs and the dashboard's five panels and one variable.
    assert!(selects.len() >= 12, "{selects:#?}");
    assert_eq!(
        queries
            .iter()
            .filter(|(_, q)| is_coverage_over_time(q))
            .count(),
        2,
        "the coverage-over-time query, in the doc and in the dashboard"
    );

    for db in databases().await {
        eprintln!("== the Grafana queries on {}", db.kind);
        let server = start(config(&db.url)).await;
        let build = Arc::new(SimBuild::synthetic(Mode::Set, 3, 4, "grafana"));
        let a = agents(&server, &build, "svc", 2).await;
        a[0].hit(0, 1);
        a[1].hit(5, 1);
        snapshot(&server, "svc", "").await;
        a[0].hit(11, 1);
        snapshot(&server, "svc", "?reset=true").await;
        a[1].hit(2, 1);
        snapshot(&server, "svc", "").await;

        let mut conn = Conn::open(&db).await;
        for (from, sql) in &selects {
            let mut sql = literal(sql);
            if db.kind == "sqlite" {
                sql = for_sqlite(&sql);
            }
            let rows = conn
                .run(&sql)
                .await
                .unwrap_or_else(|e| panic!("{from} on {}: {e}\n{sql}", db.kind));
            assert!(rows >= 1, "{from} on {}: no rows\n{sql}", db.kind);
            if is_coverage_over_time(&sql) {
                let wrapped =
                    format!("SELECT CAST(coverage AS DOUBLE PRECISION) FROM ({sql}) AS q");
                let values = conn.floats(&wrapped).await.unwrap();
                assert_eq!(values.len(), 3, "{from} on {}: {values:?}", db.kind);
                for v in &values {
                    let v = v.unwrap_or_else(|| panic!("{from}: a NULL coverage"));
                    assert!(v > 0.0 && v <= 100.0, "{from} on {}: {values:?}", db.kind);
                }
                // The reset's snapshot holds blocks 0, 5, 11; the round after it only block 2.
                assert!(values[2] < values[1], "{from} on {}: {values:?}", db.kind);
            }
        }
        server.stop().await.unwrap();
    }
}

#[test]
fn dashboard_has_its_panels_and_input() {
    let d: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    assert_eq!(
        d["__inputs"][0]["pluginId"],
        "grafana-postgresql-datasource"
    );
    let input = format!("${{{}}}", d["__inputs"][0]["name"].as_str().unwrap());
    let panels = d["panels"].as_array().unwrap();
    for kind in ["timeseries", "table", "stat"] {
        assert!(panels.iter().any(|p| p["type"] == kind), "no {kind} panel");
    }
    for p in panels {
        assert_eq!(p["datasource"]["uid"], input.as_str(), "{}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], input.as_str(), "{}", p["title"]);
        }
    }
    let vars = d["templating"]["list"].as_array().unwrap();
    assert!(vars.iter().any(|v| v["name"] == "service"));
}
