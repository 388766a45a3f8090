//! One service, many builds, with real parts: a small Go service built three times by
//! `livecov build` (v2 edits `beta`, which moves `gamma` down; v3 adds `delta`), replicas
//! registering with a real `livecov server` (SQLite, and PostgreSQL when
//! `LIVECOV_TEST_POSTGRES` is set), a rolling update with v1 and v2 replicas live together,
//! and snapshots before, during and after. Every number is worked out by hand below from
//! what the test runs; `go tool cover -func` and `-html` read every exported profile.
//!
//! The service's `lib.go` (statements per function, Go's `go tool cover` counting):
//!
//! | function | v1 | v2 | v3 | blocks |
//! |---|---|---|---|---|
//! | `alpha` | 3 | 3 | 3 | `if` / `return "many"` / `return "one"` |
//! | `beta` | 1 | 2 (edited) | 2 | one |
//! | `gamma` | 3 | 3 (moved) | 3 | `if` / `return "negative"` / `return "positive"` |
//! | `delta` | - | - | 3 (added) | `if` / `return "zero"` / `return "nonzero"` |
//!
//! `main.go` is the same in every build, so its blocks are counted once whatever the builds.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use livecov_testkit::LiveServer;
use serde_json::Value;

const LIVECOV: &str = env!("CARGO_BIN_EXE_livecov");

const MAIN: &str = r#"package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
)

func main() {
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	http.HandleFunc("/call", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		f, ok := routes[r.URL.Query().Get("f")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, f(n))
	})
	http.ListenAndServe(os.Getenv("ADDR"), nil)
}
"#;

const ALPHA: &str = r#"
func alpha(n int) string {
	if n > 1 {
		return "many"
	}
	return "one"
}
"#;

const BETA_V1: &str = r#"
func beta(n int) string {
	return strconv.Itoa(n)
}
"#;

const BETA_V2: &str = r#"
func beta(n int) string {
	s := strconv.Itoa(n)
	return s + "!"
}
"#;

const GAMMA: &str = r#"
func gamma(n int) string {
	if n < 0 {
		return "negative"
	}
	return "positive"
}
"#;

const DELTA: &str = r#"
func delta(n int) string {
	if n == 0 {
		return "zero"
	}
	return "nonzero"
}
"#;

/// `lib.go` of version `v`.
fn lib(v: u32) -> String {
    let routes = if v >= 3 {
        "\t\"alpha\": alpha,\n\t\"beta\":  beta,\n\t\"gamma\": gamma,\n\t\"delta\": delta,\n"
    } else {
        "\t\"alpha\": alpha,\n\t\"beta\":  beta,\n\t\"gamma\": gamma,\n"
    };
    let mut s = format!(
        "package main\n\nimport \"strconv\"\n\nvar routes = map[string]func(int) string{{\n{routes}}}\n"
    );
    s.push_str(ALPHA);
    s.push_str(if v == 1 { BETA_V1 } else { BETA_V2 });
    s.push_str(GAMMA);
    if v >= 3 {
        s.push_str(DELTA);
    }
    s
}

/// The module of version `v` in `dir/v{v}`, built by `livecov build` into `dir/bin{v}`.
fn build(dir: &Path, v: u32) -> (PathBuf, PathBuf) {
    let src = dir.join(format!("v{v}"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("go.mod"), "module example.com/multi\n\ngo 1.22\n").unwrap();
    std::fs::write(src.join("main.go"), MAIN).unwrap();
    std::fs::write(src.join("lib.go"), lib(v)).unwrap();
    let bin = dir.join(format!("bin{v}"));
    run_ok(
        Command::new(LIVECOV)
            .args(["build", "--mode", "set", "--cache-dir"])
            .arg(dir.join("cache"))
            .args(["--", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(&src),
    );
    (src, bin)
}

struct Api {
    port: u16,
}

impl Api {
    fn get(&self, path: &str) -> String {
        let (status, body) = http("GET", self.port, path).unwrap();
        let body = String::from_utf8(body).unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    fn json(&self, path: &str) -> Value {
        serde_json::from_str(&self.get(path)).unwrap()
    }

    /// A snapshot of the service; its id.
    fn snapshot(&self, label: &str) -> i64 {
        let out = run_ok(Command::new(LIVECOV).args([
            "snapshot",
            "greeter",
            "--label",
            label,
            "--json",
            "--server",
            &format!("http://127.0.0.1:{}", self.port),
        ]));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["instances_failed"], 0, "{v}");
        v["id"].as_i64().unwrap()
    }

    fn wait_live(&self, n: i64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let list = self.json("/api/v1/services/greeter");
            let live = list["live_instances"].as_i64().unwrap();
            if live == n {
                return;
            }
            assert!(Instant::now() < deadline, "never {n} live: {list}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn call(port: u16, f: &str, n: i32) {
    let (status, _) = http("GET", port, &format!("/call?f={f}&n={n}")).unwrap();
    assert_eq!(status, 200, "{f}({n})");
}

/// The JSON export's view of `lib.go`: per function (state, change, stmts, covered).
type Funcs = BTreeMap<String, (String, String, u64, u64)>;

fn lib_funcs(export: &Value) -> (Funcs, (u64, u64)) {
    let file = export["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "example.com/multi/lib.go")
        .unwrap_or_else(|| panic!("lib.go in {export}"));
    let funcs = file["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                (
                    f["state"].as_str().unwrap().to_string(),
                    f["change"].as_str().unwrap().to_string(),
                    f["stmts"].as_u64().unwrap(),
                    f["stmts_covered"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    (
        funcs,
        (
            file["stmts"].as_u64().unwrap(),
            file["stmts_covered"].as_u64().unwrap(),
        ),
    )
}

fn f(state: &str, change: &str, stmts: u64, covered: u64) -> (String, String, u64, u64) {
    (state.into(), change.into(), stmts, covered)
}

/// `main.go`'s statements and covered statements in an export.
fn main_file(export: &Value) -> (u64, u64) {
    let file = export["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "example.com/multi/main.go")
        .unwrap();
    (
        file["stmts"].as_u64().unwrap(),
        file["stmts_covered"].as_u64().unwrap(),
    )
}

/// `profile` (a coverprofile) read by `go tool cover -func` and `-html` in `module`: both
/// accept it, and no two of its blocks in a file overlap. Answers -func's percentage per
/// function of lib.go.
fn cover_tools(profile: &str, module: &Path, tmp: &Path, name: &str) -> BTreeMap<String, String> {
    let file = tmp.join(format!("{name}.cov"));
    std::fs::write(&file, profile).unwrap();
    type Range = ((u32, u32), (u32, u32));
    let mut blocks: BTreeMap<&str, Vec<Range>> = BTreeMap::new();
    for line in profile.lines().skip(1) {
        let (name, rest) = line.split_once(':').unwrap();
        let range = rest.split(' ').next().unwrap();
        let (a, b) = range.split_once(',').unwrap();
        let pos = |p: &str| {
            let (l, c) = p.split_once('.').unwrap();
            (l.parse().unwrap(), c.parse().unwrap())
        };
        blocks.entry(name).or_default().push((pos(a), pos(b)));
    }
    for (name, list) in &mut blocks {
        list.sort();
        for w in list.windows(2) {
            assert!(w[0].1 <= w[1].0, "{name}: {:?} overlaps {:?}", w[0], w[1]);
        }
    }
    let func = run_ok(
        Command::new("go")
            .args(["tool", "cover", "-func"])
            .arg(&file)
            .current_dir(module),
    );
    let html = tmp.join(format!("{name}.html"));
    run_ok(
        Command::new("go")
            .args(["tool", "cover"])
            .arg(format!("-html={}", file.display()))
            .arg("-o")
            .arg(&html)
            .current_dir(module),
    );
    assert!(std::fs::read_to_string(&html).unwrap().contains("lib.go"));
    func.lines()
        .filter(|l| l.starts_with("example.com/multi/lib.go:"))
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            (parts[1].to_string(), parts[2].to_string())
        })
        .collect()
}

fn pct(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn three_builds_and_a_rolling_update() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (v1, bin1) = build(dir, 1);
    let (v2, bin2) = build(dir, 2);
    let (v3, bin3) = build(dir, 3);
    let stores = stores(dir);
    for (kind, url) in stores {
        eprintln!("== on {kind}");
        flow(&url, dir, [(&v1, &bin1), (&v2, &bin2), (&v3, &bin3)]);
    }
}

fn flow(url: &str, dir: &Path, versions: [(&PathBuf, &PathBuf); 3]) {
    let [(v1, bin1), (v2, bin2), (v3, bin3)] = versions;
    let port = free_port();
    let args = ["--database-url", url, "--instance-ttl", "5s"];
    let _server = LiveServer::start_on(
        port,
        Path::new(LIVECOV),
        &args,
        &[],
        &dir.join("server.log"),
    )
    .unwrap();
    let api = Api { port };

    // v1 on two replicas: alpha(5) and beta(1) on the first.
    let (r1a, p1a) = start_replica(bin1, port);
    let (r1b, _p1b) = start_replica(bin1, port);
    api.wait_live(2);
    call(p1a, "alpha", 5);
    call(p1a, "beta", 1);
    let s1 = api.snapshot("v1");

    // The rolling update: a v2 replica joins the two of v1. gamma(-1) runs on v2, alpha(0)
    // on v1: the snapshot holds both builds.
    let (r2, p2) = start_replica(bin2, port);
    api.wait_live(3);
    call(p2, "gamma", -1);
    call(p1a, "alpha", 0);
    let s2 = api.snapshot("rolling");

    // The update done: only v2. beta(2) runs on v2.
    drop((r1a, r1b));
    api.wait_live(1);
    call(p2, "beta", 2);
    let s3 = api.snapshot("v2");

    // v3 replaces v2; nothing of it has run yet, then delta(0).
    let (_r3, p3) = start_replica(bin3, port);
    api.wait_live(2);
    drop(r2);
    api.wait_live(1);
    let s4 = api.snapshot("v3");
    call(p3, "delta", 0);
    let s5 = api.snapshot("v3 delta");

    let export = |id: i64| api.json(&format!("/api/v1/snapshots/{id}/profile?format=json"));
    let profile = |id: i64| api.get(&format!("/api/v1/snapshots/{id}/profile?format=go"));

    // S1, v1 alone: alpha 2 of 3 (the if and "many"), beta 1 of 1, gamma 0 of 3.
    let e1 = export(s1);
    let (funcs, lib1) = lib_funcs(&e1);
    assert_eq!(lib1, (7, 3), "{e1}");
    assert_eq!(
        funcs,
        Funcs::from([
            ("alpha".into(), f("measured", "same", 3, 2)),
            ("beta".into(), f("measured", "same", 1, 1)),
            ("gamma".into(), f("uncovered", "same", 3, 0)),
        ])
    );
    let main1 = main_file(&e1);
    assert_eq!(
        cover_tools(&profile(s1), v1, dir, "s1"),
        pct(&[("alpha", "66.7%"), ("beta", "100.0%"), ("gamma", "0.0%")])
    );

    // S2, v1 and v2 live together: counted once, against v2. alpha all 3 carried from v1
    // (v2 ran none of it), beta changed (v1's run of its old version is not claimed), gamma
    // 2 of 3 measured on v2 (moved down a line, the same function). lib.go: 5 of 8; main.go
    // once, as in S1.
    let e2 = export(s2);
    let (funcs, lib2) = lib_funcs(&e2);
    assert_eq!(lib2, (8, 5), "{e2}");
    assert_eq!(
        funcs,
        Funcs::from([
            ("alpha".into(), f("carried", "same", 3, 3)),
            ("beta".into(), f("changed", "edited", 2, 0)),
            ("gamma".into(), f("measured", "same", 3, 2)),
        ])
    );
    assert_eq!(main_file(&e2), main1, "main.go counted once");
    assert_eq!(
        e2["gone"],
        serde_json::json!([{
            "file": "example.com/multi/lib.go", "name": "beta", "change": "edited",
            "build": e2["gone"][0]["build"], "stmts": 1, "stmts_covered": 1
        }])
    );
    let info2 = api.json(&format!("/api/v1/snapshots/{s2}"));
    assert_eq!(info2["builds"].as_array().unwrap().len(), 2, "{info2}");
    assert_eq!(
        info2["totals"]["stmts"].as_u64().unwrap(),
        8 + main1.0,
        "{info2}"
    );
    assert_eq!(
        info2["totals"]["stmts_covered"].as_u64().unwrap(),
        5 + main1.1,
        "{info2}"
    );
    let v2_id = info2["build"].as_str().unwrap().to_string();
    assert!(
        info2["builds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["build"] == v2_id.as_str() && b["instances"] == 1),
        "the target is the build that came last: {info2}"
    );
    assert_eq!(
        cover_tools(&profile(s2), v2, dir, "s2"),
        pct(&[("alpha", "100.0%"), ("beta", "0.0%"), ("gamma", "66.7%")])
    );

    // S3, v2 alone: alpha 0 (no live v1), beta 2 of 2, gamma 2 of 3.
    let (funcs, lib3) = lib_funcs(&export(s3));
    assert_eq!(lib3, (8, 4));
    assert_eq!(funcs["alpha"], f("uncovered", "same", 3, 0));
    cover_tools(&profile(s3), v2, dir, "s3");

    // S4, v3 alone, nothing run: 0 of 11. S5: delta's if and "zero".
    let (_, lib4) = lib_funcs(&export(s4));
    assert_eq!(lib4, (11, 0));
    let (funcs, lib5) = lib_funcs(&export(s5));
    assert_eq!(lib5, (11, 2));
    assert_eq!(funcs["delta"], f("measured", "same", 3, 2));
    cover_tools(&profile(s4), v3, dir, "s4");
    cover_tools(&profile(s5), v3, dir, "s5");

    // A diff across builds never refuses. S1 → S3, against v2: alpha's if and "many" no
    // longer covered (2 blocks, 2 statements); beta (new version, 1 block of 2 statements)
    // and gamma's if and "negative" (2 blocks, 2 statements) newly covered; beta edited.
    let d = api.json(&format!("/api/v1/snapshots/{s1}/diff/{s3}"));
    assert_eq!(d["build"], v2_id.as_str());
    let t = &d["total"];
    assert_eq!(
        (&t["newly_covered"], &t["newly_covered_stmts"]),
        (&Value::from(3), &Value::from(4)),
        "{d}"
    );
    assert_eq!(
        (&t["no_longer_covered"], &t["no_longer_covered_stmts"]),
        (&Value::from(2), &Value::from(2)),
        "{d}"
    );
    assert_eq!(
        d["functions"],
        serde_json::json!([{
            "file": "example.com/multi/lib.go", "name": "beta", "change": "edited",
            "a_stmts": 1, "a_stmts_covered": 1, "b_stmts": 2, "b_stmts_covered": 2
        }])
    );
    // S3 → S5, against v3: delta added (2 of 3); beta (1 block, 2 statements) and gamma (2
    // blocks, 2 statements) no longer covered, since v3 ran only delta.
    let d = api.json(&format!("/api/v1/snapshots/{s3}/diff/{s5}"));
    let t = &d["total"];
    assert_eq!(
        (&t["newly_covered"], &t["newly_covered_stmts"]),
        (&Value::from(2), &Value::from(2)),
        "{d}"
    );
    assert_eq!(
        (&t["no_longer_covered"], &t["no_longer_covered_stmts"]),
        (&Value::from(3), &Value::from(4)),
        "{d}"
    );
    assert_eq!(
        d["functions"],
        serde_json::json!([{
            "file": "example.com/multi/lib.go", "name": "delta", "change": "added",
            "a_stmts": 0, "a_stmts_covered": 0, "b_stmts": 3, "b_stmts_covered": 2
        }])
    );
    // The CLI says the same.
    let text = run_ok(Command::new(LIVECOV).args([
        "diff",
        &s1.to_string(),
        &s3.to_string(),
        "--server",
        &format!("http://127.0.0.1:{port}"),
    ]));
    assert!(
        text.contains("\nedited function example.com/multi/lib.go beta: 1/1 statements covered in"),
        "{text}"
    );

    // The cycle S1 → S4 against v3: alpha (v1), beta (v2's version, the same in v3) and
    // gamma (v2) carried, delta added and not covered yet: 3 + 2 + 2 of 11.
    let c = api.json(&format!("/api/v1/services/greeter/cycle?from={s1}&to={s4}"));
    let lib = c["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "example.com/multi/lib.go")
        .unwrap();
    assert_eq!(lib["totals"]["stmts"], 11, "{c}");
    assert_eq!(lib["totals"]["stmts_covered"], 7, "{c}");
    assert_eq!(
        (&lib["stmts_measured"], &lib["stmts_carried"]),
        (&Value::from(0), &Value::from(7))
    );
    assert_eq!(
        lib["functions"],
        serde_json::json!({"measured": 0, "carried": 3, "changed": 1, "uncovered": 0})
    );
    assert_eq!(c["snapshots"], 4);
    assert_eq!(c["builds"].as_array().unwrap().len(), 3, "{c}");
    // v1's beta, edited since.
    let gone: Vec<(&str, &str)> = c["gone"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["name"].as_str().unwrap(), g["change"].as_str().unwrap()))
        .collect();
    assert_eq!(gone, [("beta", "edited")]);
    // To S5: delta measured on v3.
    let c = api.json(&format!("/api/v1/services/greeter/cycle?from={s1}"));
    assert_eq!(c["to"], s5);
    let cycle_export = api.json(&format!(
        "/api/v1/services/greeter/cycle/profile?from={s1}&format=json"
    ));
    let (funcs, lib_c) = lib_funcs(&cycle_export);
    assert_eq!(lib_c, (11, 9));
    assert_eq!(
        funcs,
        Funcs::from([
            ("alpha".into(), f("carried", "same", 3, 3)),
            ("beta".into(), f("carried", "same", 2, 2)),
            ("gamma".into(), f("carried", "same", 3, 2)),
            ("delta".into(), f("measured", "added", 3, 2)),
        ])
    );
    let cycle_profile = api.get(&format!(
        "/api/v1/services/greeter/cycle/profile?from={s1}&format=go"
    ));
    assert_eq!(
        cover_tools(&cycle_profile, v3, dir, "cycle"),
        pct(&[
            ("alpha", "100.0%"),
            ("beta", "100.0%"),
            ("gamma", "66.7%"),
            ("delta", "66.7%")
        ])
    );
    // The cycle S1 → S2 against v2: beta changed and not covered.
    let c = api.json(&format!("/api/v1/services/greeter/cycle?from={s1}&to={s2}"));
    assert_eq!(c["functions"]["changed"], 1, "{c}");
    let text = run_ok(Command::new(LIVECOV).args([
        "cycle",
        "greeter",
        "--from",
        &s1.to_string(),
        "--server",
        &format!("http://127.0.0.1:{port}"),
    ]));
    assert!(text.contains("5 snapshots #"), "{text}");
    assert!(
        text.contains("functions: 2 measured, 3 carried, 0 changed and not covered yet"),
        "{text}"
    );

    // The dashboard: the trend marks the build changes, the table has a build column, the
    // rolling snapshot's page shows the carried function and the old beta.
    let page = api.get("/services/greeter");
    assert_eq!(page.matches("<line class=\"build\"").count(), 2, "{page}");
    assert!(page.contains("+1 older"), "{page}");
    let page = api.get(&format!("/snapshots/{s2}"));
    assert!(page.contains("st-carried\">carried"), "{page}");
    assert!(page.contains("changed (edited)"), "{page}");
    assert!(page.contains("Only in other builds"), "{page}");
    let page = api.get(&format!("/services/greeter/cycle?from={s1}"));
    // main (main.go, run on v3) and delta measured.
    assert!(page.contains("2 measured, 3 carried, 0 changed"), "{page}");
}
