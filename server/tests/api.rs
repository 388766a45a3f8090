//! The server's HTTP API against simulated agents, on SQLite and on PostgreSQL: registry,
//! snapshots and their merge, reset, diff, export, metrics, and every fault the API promises
//! to survive. (Real Go binaries are in `cli/tests/server.rs`.)

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use instrumenter::Mode;
use server::sim::{Behavior, SimAgent, SimBuild};

on_every_db!(
    snapshot_merges_instances_per_build,
    count_mode_adds_and_saturates,
    registration_is_checked,
    heartbeats_and_expiry,
    failing_instances_never_fail_the_snapshot,
    nothing_stored_when_no_instance_answers,
    reset_stores_what_it_takes,
    diff_names_the_blocks,
    snapshot_exports_every_format,
    errors_are_json,
    admin_and_agent_tokens,
    restart_keeps_registry_and_snapshots,
    database_away_mid_snapshot,
    metrics_and_health,
    scheduled_snapshots,
    services_list_their_live_builds,
    cross_site_requests_are_refused,
    refused_agents_are_seen,
    a_snapshot_takes_at_most_two_pull_timeouts,
    quotas_bound_what_registrations_keep,
    services_come_a_page_at_a_time,
    labels_choose_the_instances_a_snapshot_reads,
    ended_processes_count_in_their_round_once,
);

mod cases {
    use super::*;

    fn set_build(seed: &str) -> Arc<SimBuild> {
        Arc::new(SimBuild::synthetic(Mode::Set, 3, 4, seed))
    }

    pub async fn snapshot_merges_instances_per_build(db: &Db) {
        let server = start(config(&db.url)).await;
        let b1 = set_build("one");
        let b2 = set_build("two");
        let a = agents(&server, &b1, "svc", 2).await;
        let other = SimAgent::start(b2.clone(), None).await;
        register(&server, &other, "svc", "other").await;
        // b1: instance 0 covers blocks 0 and 5, instance 1 covers 5 and 11; b2: block 1.
        a[0].hit(0, 1);
        a[0].hit(5, 1);
        a[1].hit(5, 1);
        a[1].hit(11, 1);
        other.hit(1, 1);

        let snap = snapshot(&server, "svc", "").await;
        assert_eq!(snap["instances_ok"], 3);
        assert_eq!(snap["instances_failed"], 0);
        // Its totals are against the build that came last, b2 (1 of its 12 blocks, two
        // statements each): b1 shares no function with it, so none of b1's is carried.
        assert_eq!(snap["build"], b2.id.as_str());
        assert_eq!(snap["build_count"], 2);
        assert_eq!(snap["totals"]["blocks"], 12);
        assert_eq!(snap["totals"]["blocks_covered"], 1);
        assert_eq!(snap["totals"]["stmts_covered"], 2);
        let builds = snap["builds"].as_array().unwrap();
        assert_eq!(builds.len(), 2);
        let part = |id: &str| builds.iter().find(|b| b["build"] == id).unwrap().clone();
        assert_eq!(part(&b1.id)["instances"], 2);
        assert_eq!(part(&b1.id)["totals"]["blocks_covered"], 3);
        assert_eq!(part(&b2.id)["totals"]["blocks_covered"], 1);

        // The Go profile: b2's blocks, its block 1 covered; against b1 (`build=`), b1's
        // blocks 0, 5 and 11.
        let id = snap["id"].as_i64().unwrap();
        let covered = |build: &str| {
            let server = &server;
            let path = format!("/api/v1/snapshots/{id}/profile?format=go{build}");
            async move {
                let profile = get(server, &path).await;
                assert_eq!(profile.status, 200, "{}", profile.text);
                let lines: Vec<String> = profile.text.lines().map(String::from).collect();
                assert_eq!(lines[0], "mode: set");
                assert_eq!(lines.len(), 1 + 12);
                lines[1..]
                    .iter()
                    .filter(|l| l.ends_with(" 1"))
                    .cloned()
                    .collect::<Vec<String>>()
            }
        };
        assert_eq!(
            covered("").await,
            ["example.com/two/pkg0/file0.go:13.2,15.3 2 1"]
        );
        assert_eq!(
            covered(&format!("&build={}", b1.id)).await,
            [
                "example.com/one/pkg0/file0.go:10.2,12.3 2 1",
                "example.com/one/pkg0/file1.go:13.2,15.3 2 1",
                "example.com/one/pkg0/file2.go:19.2,21.3 2 1",
            ]
        );
        // A build the server does not have, or not a build id.
        let unknown = get(
            &server,
            &format!("/api/v1/snapshots/{id}/profile?build={}", "0".repeat(64)),
        )
        .await;
        assert_eq!(unknown.status, 404, "{}", unknown.text);
        let bad = get(
            &server,
            &format!("/api/v1/snapshots/{id}/profile?build=xyz"),
        )
        .await;
        assert_eq!(bad.status, 400, "{}", bad.text);
        let bad = get(
            &server,
            &format!("/api/v1/snapshots/{id}/profile?format=xml"),
        )
        .await;
        assert_eq!(bad.status, 400, "{}", bad.text);

        // Listed newest first, in the service's summary too.
        snapshot(&server, "svc", "").await;
        let list = get(&server, "/api/v1/services/svc/snapshots").await;
        let ids: Vec<i64> = list.json["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [id + 1, id]);
        let services = get(&server, "/api/v1/services").await;
        assert_eq!(services.json["services"][0]["name"], "svc");
        assert_eq!(services.json["services"][0]["live_instances"], 3);
        assert_eq!(
            services.json["services"][0]["latest_snapshot"]["id"],
            id + 1
        );
        let one = get(&server, "/api/v1/services/svc").await;
        assert_eq!(one.json["instance_list"].as_array().unwrap().len(), 3);
        server.stop().await.unwrap();
    }

    /// The services list: each service once, by name, with the distinct builds of its live
    /// instances (sorted) and its latest snapshot, if any.
    pub async fn services_list_their_live_builds(db: &Db) {
        let server = start(config(&db.url)).await;
        let (b1, b2) = (set_build("list-a"), set_build("list-b"));
        let mut running = agents(&server, &b1, "two", 2).await;
        let other = SimAgent::start(b2.clone(), None).await;
        register(&server, &other, "two", "x").await;
        running.push(other);
        let lone = SimAgent::start(b1.clone(), None).await;
        register(&server, &lone, "one", "y").await;
        running.push(lone);
        snapshot(&server, "two", "").await;
        let latest = snapshot(&server, "two", "").await["id"].clone();

        let list = get(&server, "/api/v1/services").await;
        let services = list.json["services"].as_array().unwrap();
        assert_eq!(services.len(), 2, "{}", list.text);
        assert_eq!(services[0]["name"], "one");
        assert_eq!(services[0]["builds"], serde_json::json!([b1.id]));
        assert!(services[0]["latest_snapshot"].is_null());
        assert_eq!(services[0]["live_instances"], 1);
        let mut both = vec![b1.id.clone(), b2.id.clone()];
        both.sort();
        assert_eq!(services[1]["name"], "two");
        assert_eq!(services[1]["builds"], serde_json::json!(both));
        assert_eq!(services[1]["latest_snapshot"]["id"], latest);
        assert_eq!(services[1]["live_instances"], 3);
        assert_eq!(services[1]["instances"], 3);
        let one = get(&server, "/api/v1/services/two").await;
        assert_eq!(one.json["builds"], serde_json::json!(both));
        for a in running {
            a.stop();
        }
        server.stop().await.unwrap();
    }

    pub async fn snapshot_exports_every_format(db: &Db) {
        let server = start(config(&db.url)).await;
        // Two files of 12 blocks (lines 10+3i to 12+3i), F0 holds blocks 0-9, F1 10-11.
        let b = Arc::new(SimBuild::synthetic(Mode::Count, 2, 12, "export"));
        let a = agents(&server, &b, "svc", 1).await;
        let mut counts = vec![0u32; 24];
        counts[0] = 4;
        counts[10] = 2;
        a[0].set_counters(counts);
        let snap = snapshot(&server, "svc", "").await;
        let id = snap["id"].as_i64().unwrap();
        let fetch = |query: String| {
            let url = format!(
                "http://{}/api/v1/snapshots/{id}/profile{query}",
                server.addr
            );
            async move {
                let resp = client().get(url).send().await.unwrap();
                let status = resp.status().as_u16();
                let header = |name: &str| {
                    resp.headers()
                        .get(name)
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default()
                };
                let (ctype, disposition) = (header("content-type"), header("content-disposition"));
                (status, ctype, disposition, resp.text().await.unwrap())
            }
        };
        for (format, ctype, ext) in [
            ("go", "text/plain; charset=utf-8", "cov"),
            ("lcov", "text/plain; charset=utf-8", "info"),
            ("cobertura", "application/xml", "xml"),
            ("json", "application/json", "json"),
            ("html", "text/html; charset=utf-8", "html"),
        ] {
            let (status, got, disposition, text) = fetch(format!("?format={format}")).await;
            assert_eq!(status, 200, "{format}: {text}");
            assert_eq!(got, ctype, "{format}");
            assert_eq!(
                disposition,
                format!("attachment; filename=\"snapshot-{id}.{ext}\""),
                "{format}"
            );
        }

        // lcov, names relative to the module: F0 entered 4 times, F1 twice.
        let (_, _, _, lcov) = fetch("?format=lcov&strip=example.com/export/".into()).await;
        let records: Vec<&str> = lcov.split_inclusive("end_of_record\n").collect();
        assert_eq!(records.len(), 2, "{lcov}");
        let mut want = String::from("TN:\nSF:pkg0/file0.go\nFN:10,F0\nFN:40,F1\n");
        want.push_str("FNDA:4,F0\nFNDA:2,F1\nFNF:2\nFNH:2\n");
        for line in 10..=45 {
            let count = match line {
                10..=12 => 4,
                40..=42 => 2,
                _ => 0,
            };
            want.push_str(&format!("DA:{line},{count}\n"));
        }
        want.push_str("LF:36\nLH:6\nend_of_record\n");
        assert_eq!(records[0], want);
        assert!(records[1].starts_with("TN:\nSF:pkg0/file1.go\n"), "{lcov}");
        assert!(records[1].contains("\nFNH:0\n"), "{lcov}");

        // Cobertura: the totals, the snapshot's time, the source asked for.
        let (_, _, _, xml) = fetch("?format=cobertura&source=/src/export".into()).await;
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE coverage"));
        assert!(
            xml.contains("lines-covered=\"6\" lines-valid=\"72\""),
            "{xml}"
        );
        let taken = humantime::parse_rfc3339(snap["taken_at"].as_str().unwrap()).unwrap();
        let ms = taken
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        assert!(xml.contains(&format!("timestamp=\"{ms}\"")), "{xml}");
        assert!(xml.contains("<source>/src/export</source>"), "{xml}");
        assert!(
            xml.contains("<package name=\"example.com/export/pkg0\""),
            "{xml}"
        );
        assert!(
            xml.contains("filename=\"example.com/export/pkg0/file0.go\""),
            "{xml}"
        );
        assert_eq!(xml.matches("<method ").count(), 4, "{xml}");

        // JSON: per file and function.
        let (_, _, _, json) = fetch("?format=json".into()).await;
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["snapshot"], id);
        assert_eq!(v["taken_at"], snap["taken_at"]);
        assert_eq!(
            (v["stmts"].as_u64(), v["stmts_covered"].as_u64()),
            (Some(48), Some(4))
        );
        let f0 = &v["files"][0]["functions"][0];
        assert_eq!(f0["name"], "F0");
        assert_eq!(
            (f0["line"].as_u64(), f0["count"].as_u64()),
            (Some(10), Some(4))
        );
        assert_eq!(f0["blocks"].as_array().unwrap().len(), 10);
        assert_eq!(
            f0["blocks"][0],
            serde_json::json!({"start_line": 10, "start_col": 2, "end_line": 12, "end_col": 3,
                "stmts": 2, "count": 4})
        );

        // HTML: one page with the files and the total (4 of 48 statements), which parses.
        let (_, _, _, html) = fetch("?format=html&strip=example.com/export/".into()).await;
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        for file in ["pkg0/file0.go", "pkg0/file1.go"] {
            assert!(html.contains(&format!(">{file}</a>")), "{file}: {html}");
        }
        assert!(html.contains("4 of 48 covered (8.3%)"), "{html}");
        assert!(html.contains(&format!("<dd>{id}</dd>")), "{html}");
        assert!(
            html.contains(&format!("<dd>{}</dd>", snap["taken_at"].as_str().unwrap())),
            "{html}"
        );
        match std::process::Command::new("xmllint")
            .args(["--html", "--noout", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        {
            Err(e) => eprintln!("xmllint is not on PATH ({e}): not checking that the HTML parses"),
            Ok(mut child) => {
                use std::io::Write as _;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(html.as_bytes())
                    .unwrap();
                let out = child.wait_with_output().unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(
                    out.status.success() && stderr.trim().is_empty(),
                    "xmllint: {stderr}"
                );
            }
        }

        // Unknown format: 400, naming the supported ones; unknown snapshot: 404.
        let (status, _, _, text) = fetch("?format=pdf".into()).await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("go, lcov, cobertura, json, html"), "{text}");
        let missing = get(&server, "/api/v1/snapshots/9999/profile?format=lcov").await;
        assert_eq!(missing.status, 404, "{}", missing.text);
        server.stop().await.unwrap();
    }

    pub async fn count_mode_adds_and_saturates(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = Arc::new(SimBuild::synthetic(Mode::Count, 1, 3, "count"));
        let a = agents(&server, &b, "svc", 2).await;
        a[0].set_counters(vec![u32::MAX - 1, 3, 0]);
        a[1].set_counters(vec![5, 4, 0]);
        let snap = snapshot(&server, "svc", "").await;
        let id = snap["id"].as_i64().unwrap();
        let profile = get(&server, &format!("/api/v1/snapshots/{id}/profile")).await;
        assert_eq!(
            profile.text,
            format!(
                "mode: count\nexample.com/count/pkg0/file0.go:10.2,12.3 2 {}\n\
                 example.com/count/pkg0/file0.go:13.2,15.3 2 7\n\
                 example.com/count/pkg0/file0.go:16.2,18.3 2 0\n",
                u32::MAX
            )
        );
        server.stop().await.unwrap();
    }

    pub async fn registration_is_checked(db: &Db) {
        let mut cfg = config(&db.url);
        cfg.max_body = 4096;
        let server = start(cfg).await;
        let b = set_build("reg");
        let agent = SimAgent::start(b.clone(), None).await;
        let good = agent.registration("svc", "i0");
        let with = |k: &str, v: serde_json::Value| {
            let mut r = good.clone();
            r[k] = v;
            r
        };
        let url = format!("http://{}/api/v1/agents/register", server.addr);
        for (body, status, want) in [
            (b"{not json".to_vec(), 400, "request body"),
            (b"".to_vec(), 400, "request body"),
            (vec![b' '; 5000], 413, "too large"),
            (
                with("build", "xyz".into()).to_string().into_bytes(),
                400,
                "build",
            ),
            (
                with("mode", "often".into()).to_string().into_bytes(),
                400,
                "mode",
            ),
            (with("port", 0.into()).to_string().into_bytes(), 400, "port"),
            (
                with("port", 70000.into()).to_string().into_bytes(),
                400,
                "request body",
            ),
            (
                with("instance", "a/b".into()).to_string().into_bytes(),
                400,
                "instance",
            ),
            (
                with("service", "".into()).to_string().into_bytes(),
                400,
                "service",
            ),
            (
                with("service", "a\nb".into()).to_string().into_bytes(),
                400,
                "service",
            ),
        ] {
            let a = call("POST", url.clone(), Some(body), None).await;
            assert_eq!(a.status, status, "{}", a.text);
            assert!(
                a.json["error"].as_str().unwrap().contains(want),
                "{}",
                a.text
            );
        }
        // Nothing of that was stored.
        let list = get(&server, "/api/v1/services").await;
        assert_eq!(list.json["services"], serde_json::json!([]));

        // The address is the peer's IP with the given port, whatever else the body says.
        let mut spoof = good.clone();
        spoof["address"] = "10.9.9.9:1".into();
        let a = post(&server, "/api/v1/agents/register", spoof).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            a.json["address"],
            format!("127.0.0.1:{}", agent.addr.port())
        );
        server.stop().await.unwrap();
    }

    pub async fn heartbeats_and_expiry(db: &Db) {
        let mut cfg = config(&db.url);
        cfg.instance_ttl = Duration::from_millis(600);
        let server = start(cfg).await;
        let b = set_build("hb");
        let a = agents(&server, &b, "svc", 1).await;
        let secret = a[0].secret().to_string();
        let beat = |id: &'static str| {
            let server = &server;
            let body = serde_json::json!({ "secret": secret });
            async move { post(server, &format!("/api/v1/agents/{id}/heartbeat"), body).await }
        };
        assert_eq!(beat("i0").await.status, 200);
        assert_eq!(beat("nobody").await.status, 404);
        // Only the process that registered the instance keeps it alive.
        for body in [
            serde_json::json!({}),
            serde_json::json!({"secret": "0123456789abcdef"}),
        ] {
            let hb = post(&server, "/api/v1/agents/i0/heartbeat", body).await;
            assert_eq!(hb.status, 403, "{}", hb.text);
        }
        // No heartbeat for longer than the TTL: gone, kept, and told to register again.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let svc = get(&server, "/api/v1/services/svc").await;
        assert_eq!(svc.json["live_instances"], 0);
        assert_eq!(svc.json["instance_list"][0]["state"], "gone");
        assert!(svc.json["instance_list"][0]["gone_at"].is_string());
        let hb = beat("i0").await;
        assert_eq!(hb.status, 404);
        assert!(
            hb.json["error"]
                .as_str()
                .unwrap()
                .contains("register again")
        );
        let none = post(
            &server,
            "/api/v1/services/svc/snapshots",
            serde_json::json!({}),
        )
        .await;
        assert_eq!(none.status, 409, "{}", none.text);
        register(&server, &a[0], "svc", "i0").await;
        assert_eq!(beat("i0").await.status, 200);
        let svc = get(&server, "/api/v1/services/svc").await;
        assert_eq!(svc.json["live_instances"], 1);
        server.stop().await.unwrap();
    }

    pub async fn failing_instances_never_fail_the_snapshot(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = set_build("faults");
        let a = agents(&server, &b, "svc", 7).await;
        for agent in &a {
            agent.hit(2, 1);
        }
        a[0].hit(7, 1);
        a[1].set_behavior(Behavior::Hang);
        a[2].set_behavior(Behavior::Garbage);
        a[3].set_behavior(Behavior::CloseMidway);
        a[4].set_behavior(Behavior::WrongLength);
        a[5].set_behavior(Behavior::Status(500));
        // i6 is gone without a word: its port refuses connections.
        let dead = a.into_iter().collect::<Vec<_>>();
        let mut dead = dead;
        let gone = dead.pop().unwrap();
        gone.stop();
        tokio::time::sleep(Duration::from_millis(50)).await;

        let snap = snapshot(&server, "svc", "").await;
        let got = outcomes(&snap);
        let want = [
            ("i0", "ok"),
            ("i1", "timeout"),
            ("i2", "rejected"),
            ("i3", "error"),
            ("i4", "rejected"),
            ("i5", "error"),
            ("i6", "refused"),
        ];
        assert_eq!(
            got,
            want.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>(),
            "{snap:#}"
        );
        // Only i0 counted: blocks 2 and 7.
        assert_eq!(snap["totals"]["blocks_covered"], 2);
        assert_eq!(snap["instances_ok"], 1);
        assert_eq!(snap["instances_failed"], 6);
        let msg = |i: usize| {
            snap["instance_results"][i]["message"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert!(msg(2).contains("bad magic"), "{}", msg(2));
        assert!(
            msg(4).contains("file 0 has 3 counters, the build has 4"),
            "{}",
            msg(4)
        );
        assert!(msg(5).contains("500"), "{}", msg(5));
        // The hanging instance cost one pull timeout, not more.
        assert!(snap["duration_ms"].as_i64().unwrap() < 3000, "{snap}");
        server.stop().await.unwrap();
    }

    pub async fn nothing_stored_when_no_instance_answers(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = set_build("none");
        let a = agents(&server, &b, "svc", 2).await;
        a[0].set_behavior(Behavior::Garbage);
        a[1].set_behavior(Behavior::Status(503));
        a[0].hit(1, 1);
        let r = post(
            &server,
            "/api/v1/services/svc/snapshots?reset=true",
            serde_json::json!({}),
        )
        .await;
        assert_eq!(r.status, 502, "{}", r.text);
        assert!(r.json["error"].as_str().unwrap().contains("nothing stored"));
        let list = get(&server, "/api/v1/services/svc/snapshots").await;
        assert_eq!(list.json["snapshots"], serde_json::json!([]));
        // The counters were not reset by that.
        assert_eq!(a[0].counters()[1], 1);
        server.stop().await.unwrap();
    }

    pub async fn reset_stores_what_it_takes(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = Arc::new(SimBuild::synthetic(Mode::Count, 2, 3, "reset"));
        let a = agents(&server, &b, "svc", 2).await;
        a[0].hit(0, 3);
        a[1].hit(4, 2);
        let r = post(
            &server,
            "/api/v1/services/svc/reset",
            serde_json::json!({"label": "round 1"}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json["reset"], true);
        assert_eq!(r.json["label"], "round 1");
        assert_eq!(r.json["totals"]["blocks_covered"], 2);
        // The agents keep every count; the next round starts at the reset.
        assert_eq!(a[0].ever()[0], 3);
        assert_eq!(a[1].ever()[4], 2);
        let id = r.json["id"].as_i64().unwrap();
        let profile = get(&server, &format!("/api/v1/snapshots/{id}/profile")).await;
        assert!(
            profile.text.contains("file0.go:10.2,12.3 2 3\n"),
            "{}",
            profile.text
        );
        assert!(
            profile.text.contains("file1.go:13.2,15.3 2 2\n"),
            "{}",
            profile.text
        );

        // ?reset=true on a snapshot is the same step.
        a[1].hit(5, 1);
        let s = snapshot(&server, "svc", "?reset=true").await;
        assert_eq!(s["reset"], true);
        assert_eq!(s["totals"]["blocks_covered"], 1);
        assert_eq!(a[1].ever()[5], 1);
        let plain = snapshot(&server, "svc", "").await;
        assert_eq!(plain["reset"], false);
        assert_eq!(plain["totals"]["blocks_covered"], 0);
        assert_eq!(plain["deploy"]["blocks_covered"], 3);
        let bad = post(
            &server,
            "/api/v1/services/svc/snapshots?reset=maybe",
            serde_json::json!({}),
        )
        .await;
        assert_eq!(bad.status, 400, "{}", bad.text);
        server.stop().await.unwrap();
    }

    pub async fn diff_names_the_blocks(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = set_build("diff");
        let a = agents(&server, &b, "svc", 1).await;
        a[0].hit(0, 1);
        a[0].hit(5, 1);
        let s1 = snapshot(&server, "svc", "?reset=true").await["id"]
            .as_i64()
            .unwrap();
        a[0].hit(5, 1);
        a[0].hit(9, 1);
        let s2 = snapshot(&server, "svc", "").await["id"].as_i64().unwrap();
        let d = get(&server, &format!("/api/v1/snapshots/{s1}/diff/{s2}")).await;
        assert_eq!(d.status, 200, "{}", d.text);
        let t = &d.json["total"];
        assert_eq!(
            (t["newly_covered"].as_i64(), t["no_longer_covered"].as_i64()),
            (Some(1), Some(1))
        );
        assert_eq!(
            (
                t["a_blocks_covered"].as_i64(),
                t["b_blocks_covered"].as_i64()
            ),
            (Some(2), Some(2))
        );
        let files = d.json["files"].as_array().unwrap();
        assert_eq!(d.json["build"], b.id.as_str());
        assert_eq!(d.json["functions"], serde_json::json!([]));
        // Block 0 is file0's first; block 9 is file2's second (4 blocks a file).
        assert_eq!(files.len(), 2);
        assert_eq!(files[0]["file"], "example.com/diff/pkg0/file0.go");
        assert_eq!(files[0]["no_longer_covered"][0]["start_line"], 10);
        assert_eq!(files[0]["no_longer_covered"][0]["func"], "F0");
        assert_eq!(files[1]["file"], "example.com/diff/pkg0/file2.go");
        assert_eq!(files[1]["newly_covered"][0]["start_line"], 13);
        // Without the block lists: the same totals, the files, no blocks.
        let short = get(
            &server,
            &format!("/api/v1/snapshots/{s1}/diff/{s2}?blocks=false"),
        )
        .await;
        assert_eq!(short.json["total"], d.json["total"]);
        let files = short.json["files"].as_array().unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[1]["total"]["newly_covered"], 1);
        assert_eq!(files[1]["newly_covered"], serde_json::json!([]));
        // The reverse is the mirror image; a snapshot against itself is empty.
        let r = get(&server, &format!("/api/v1/snapshots/{s2}/diff/{s1}")).await;
        assert_eq!(r.json["total"]["newly_covered"], 1);
        let same = get(&server, &format!("/api/v1/snapshots/{s1}/diff/{s1}")).await;
        assert_eq!(same.json["files"], serde_json::json!([]));

        // Builds that share no function: compared all the same, against the second's build,
        // every function of the first removed and every one of the second added.
        let elsewhere = set_build("elsewhere");
        let other = SimAgent::start(elsewhere.clone(), None).await;
        register(&server, &other, "svc2", "x").await;
        other.hit(2, 1);
        let s3 = snapshot(&server, "svc2", "").await["id"].as_i64().unwrap();
        let c = get(&server, &format!("/api/v1/snapshots/{s1}/diff/{s3}")).await;
        assert_eq!(c.status, 200, "{}", c.text);
        assert_eq!(c.json["build"], elsewhere.id.as_str());
        let t = &c.json["total"];
        assert_eq!(
            (&t["a_blocks_covered"], &t["b_blocks_covered"]),
            (&0.into(), &1.into())
        );
        let changes: Vec<&str> = c.json["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["change"].as_str().unwrap())
            .collect();
        // Three files of one function each, on each side.
        assert_eq!(
            changes.iter().filter(|c| **c == "removed").count(),
            3,
            "{}",
            c.text
        );
        assert_eq!(
            changes.iter().filter(|c| **c == "added").count(),
            3,
            "{}",
            c.text
        );
        server.stop().await.unwrap();
    }

    pub async fn labels_choose_the_instances_a_snapshot_reads(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = set_build("labels");
        let labelled = |agent: &SimAgent, instance: &str, labels: serde_json::Value| {
            let mut r = agent.registration("svc", instance);
            r["labels"] = labels;
            r
        };
        let staging = SimAgent::start(b.clone(), None).await;
        let prod = SimAgent::start(b.clone(), None).await;
        let bare = SimAgent::start(b.clone(), None).await;
        for (agent, id, labels) in [
            (
                &staging,
                "s1",
                serde_json::json!({"env": "staging", "vcs.revision": "abc123"}),
            ),
            (
                &prod,
                "p1",
                serde_json::json!({"env": "prod", "region": "eu"}),
            ),
            (&bare, "x1", serde_json::json!({})),
        ] {
            let a = post(
                &server,
                "/api/v1/agents/register",
                labelled(agent, id, labels),
            )
            .await;
            assert_eq!(a.status, 200, "{}", a.text);
        }
        staging.hit(0, 1);
        prod.hit(1, 1);
        bare.hit(2, 1);

        // Labels are checked as registrations are.
        for bad in [
            serde_json::json!({"bad key": "x"}),
            serde_json::json!({"env": "a,b"}),
            serde_json::json!({"": "x"}),
            serde_json::json!({"k": "x".repeat(257)}),
        ] {
            let a = post(
                &server,
                "/api/v1/agents/register",
                labelled(&bare, "x2", bad),
            )
            .await;
            assert_eq!(a.status, 400, "{}", a.text);
        }
        let many: serde_json::Map<String, serde_json::Value> =
            (0..33).map(|i| (format!("k{i}"), "v".into())).collect();
        let a = post(
            &server,
            "/api/v1/agents/register",
            labelled(&bare, "x2", many.into()),
        )
        .await;
        assert_eq!(a.status, 400, "{}", a.text);

        // The service lists each instance's labels.
        let svc = get(&server, "/api/v1/services/svc").await;
        let labels_of = |id: &str| {
            svc.json["instance_list"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["id"] == id)
                .unwrap()["labels"]
                .clone()
        };
        assert_eq!(
            labels_of("p1"),
            serde_json::json!({"env": "prod", "region": "eu"})
        );
        assert_eq!(labels_of("x1"), serde_json::json!({}));

        // A snapshot of env=staging reads that instance alone, and keeps its selector.
        let s = post(
            &server,
            "/api/v1/services/svc/snapshots",
            serde_json::json!({"selector": "env=staging"}),
        )
        .await;
        assert_eq!(s.status, 201, "{}", s.text);
        assert_eq!(s.json["selector"], "env=staging");
        assert_eq!(s.json["instances_ok"], 1, "{}", s.text);
        assert_eq!(s.json["instance_results"][0]["instance"], "s1");
        assert_eq!(s.json["totals"]["blocks_covered"], 1);
        // Pairs in any order and spacing are one selector.
        let s2 = post(
            &server,
            "/api/v1/services/svc/snapshots",
            serde_json::json!({"selector": " region=eu , env=prod"}),
        )
        .await;
        assert_eq!(s2.status, 201, "{}", s2.text);
        assert_eq!(s2.json["selector"], "env=prod,region=eu");
        assert_eq!(s2.json["instance_results"][0]["instance"], "p1");
        let all = snapshot(&server, "svc", "").await;
        assert_eq!(all["selector"], serde_json::Value::Null);
        assert_eq!(all["instances_ok"], 3);
        assert_eq!(all["totals"]["blocks_covered"], 3);

        // The list filters by selector.
        let ids = |path: &str| {
            let server = &server;
            let path = path.to_string();
            async move {
                let l = get(server, &path).await;
                assert_eq!(l.status, 200, "{}", l.text);
                l.json["snapshots"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["id"].as_i64().unwrap())
                    .collect::<Vec<i64>>()
            }
        };
        let id = s.json["id"].as_i64().unwrap();
        assert_eq!(
            ids("/api/v1/services/svc/snapshots?selector=env%3Dstaging").await,
            [id]
        );
        assert_eq!(ids("/api/v1/services/svc/snapshots").await.len(), 3);

        // No match, a bad selector, a reset with a selector.
        for (body, query, status) in [
            (serde_json::json!({"selector": "env=qa"}), "", 409),
            (serde_json::json!({"selector": "env"}), "", 400),
            (serde_json::json!({"selector": "env=a,env=b"}), "", 400),
            (
                serde_json::json!({"selector": "env=staging"}),
                "?reset=true",
                400,
            ),
        ] {
            let a = post(
                &server,
                &format!("/api/v1/services/svc/snapshots{query}"),
                body,
            )
            .await;
            assert_eq!(a.status, status, "{}", a.text);
        }
        let bad = get(&server, "/api/v1/services/svc/snapshots?selector=nope").await;
        assert_eq!(bad.status, 400, "{}", bad.text);
        // Where every instance is read, a selector is refused, never ignored.
        let r = post(
            &server,
            "/api/v1/services/svc/reset",
            serde_json::json!({"selector": "env=staging"}),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.text);
        let started = post(
            &server,
            "/api/v1/services/svc/sessions",
            serde_json::json!({"name": "qa"}),
        )
        .await;
        assert_eq!(started.status, 201, "{}", started.text);
        let r = post(
            &server,
            "/api/v1/services/svc/sessions/qa/stop",
            serde_json::json!({"selector": "env=staging"}),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.text);

        // The dashboard: the labels, each a link to the instances that have it; the page of
        // env=staging lists that instance and the snapshot taken of it.
        let page = get(&server, "/services/svc").await;
        assert!(
            page.text.contains(
                "<a class=\"label\" href=\"/services/svc?selector=env%3Dprod\">env=prod</a>"
            ),
            "{}",
            page.text
        );
        let page = get(&server, "/services/svc?selector=env%3Dstaging").await;
        assert_eq!(page.status, 200);
        assert!(page.text.contains("<code>s1</code>"), "{}", page.text);
        assert!(!page.text.contains("<code>p1</code>"), "{}", page.text);
        assert_eq!(
            page.text
                .matches("<code class=\"selector\">env=staging</code>")
                .count(),
            1
        );
        assert!(page.text.contains("value=\"env=staging\""), "{}", page.text);
        let bad = get(&server, "/services/svc?selector=nope").await;
        assert_eq!(bad.status, 400);
        server.stop().await.unwrap();
    }

    pub async fn ended_processes_count_in_their_round_once(db: &Db) {
        use base64::Engine as _;
        let server = start(config(&db.url)).await;
        let b = set_build("ended");
        let a = agents(&server, &b, "svc", 1).await;
        a[0].hit(0, 1);
        // The build is stored once an instance of it was read.
        snapshot(&server, "svc", "").await;
        let counters = |hit: usize| {
            let mut v = vec![0u32; b.meta.num_blocks()];
            v[hit] = 1;
            server::lcc::encode(&b.id, Mode::Set, &b.shape, &v)
        };
        let delivery = |instance: &str, hit: usize| {
            let mut r = a[0].registration("svc", instance);
            r["port"] = 0.into();
            r["secret"] = format!("s3cret{instance}xxxxxxxxxxxxxx").into();
            serde_json::json!({
                "registration": r,
                "counters": base64::engine::general_purpose::STANDARD.encode(counters(hit)),
            })
        };
        let d = post(&server, "/api/v1/agents/e1/final", delivery("e1", 5)).await;
        assert_eq!(d.status, 200, "{}", d.text);
        assert_eq!(
            (&d.json["state"], &d.json["changed"]),
            (&"exited".into(), &true.into())
        );
        let again = post(&server, "/api/v1/agents/e1/final", delivery("e1", 5)).await;
        assert_eq!(again.json["changed"], false, "{}", again.text);

        // Refused, changing nothing.
        let mut other_build = delivery("e2", 1);
        other_build["registration"]["build"] = "ab".repeat(32).into();
        let mut not_base64 = delivery("e2", 1);
        not_base64["counters"] = "%%%".into();
        let mut garbage = delivery("e2", 1);
        garbage["counters"] = base64::engine::general_purpose::STANDARD
            .encode(b"LCC1 nonsense")
            .into();
        let mut stolen = delivery("i0", 1);
        stolen["registration"]["secret"] = "y".repeat(32).into();
        for (path, body, status) in [
            ("/api/v1/agents/e3/final", delivery("e2", 1), 400),
            ("/api/v1/agents/e2/final", not_base64, 400),
            ("/api/v1/agents/e2/final", garbage, 400),
            ("/api/v1/agents/e2/final", other_build, 409),
            ("/api/v1/agents/i0/final", stolen, 403),
        ] {
            let r = post(&server, path, body).await;
            assert_eq!(r.status, status, "{path}: {}", r.text);
        }

        // A counters file collected from disk, of a process the server never heard of.
        let url = |q: &str| format!("http://{}/api/v1/services/svc/collect{q}", server.addr);
        let c = call("POST", url("?instance=k1"), Some(counters(9)), None).await;
        assert_eq!(c.status, 200, "{}", c.text);
        assert_eq!(c.json["state"], "exited");
        for (u, body, status) in [
            (url(""), counters(9), 400),
            (url("?instance=k2"), b"LCC1 nonsense".to_vec(), 400),
            (
                url("?instance=k2"),
                server::lcc::encode(
                    "not-a-build",
                    Mode::Set,
                    &b.shape,
                    &vec![0; b.meta.num_blocks()],
                ),
                400,
            ),
            (
                format!(
                    "http://{}/api/v1/services/other/collect?instance=i0",
                    server.addr
                ),
                counters(9),
                400,
            ),
        ] {
            let r = call("POST", u.clone(), Some(body), None).await;
            assert_eq!(r.status, status, "{u}: {}", r.text);
        }

        // The round holds the live instance and both ended ones, each once.
        let s = snapshot(&server, "svc", "").await;
        assert_eq!(s["instances_ok"], 3, "{s}");
        assert_eq!(s["totals"]["blocks_covered"], 3, "{s}");
        let ended = s["instance_results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("ended at"))
            })
            .count();
        assert_eq!(ended, 2, "{s}");
        let svc = get(&server, "/api/v1/services/svc").await;
        let exited: Vec<&serde_json::Value> = svc.json["instance_list"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["state"] == "exited")
            .collect();
        assert_eq!(exited.len(), 2, "{}", svc.text);
        assert!(exited.iter().all(|i| i["exited_at"].is_string()));

        // The next round does not: they ended in this one.
        snapshot(&server, "svc", "?reset=true").await;
        let next = snapshot(&server, "svc", "").await;
        assert_eq!(next["instances_ok"], 1, "{next}");
        assert_eq!(next["totals"]["blocks_covered"], 0, "{next}");
        server.stop().await.unwrap();
    }

    pub async fn errors_are_json(db: &Db) {
        let server = start(config(&db.url)).await;
        for (method, path, status) in [
            ("GET", "/api/v1/services/nope", 404),
            ("GET", "/api/v1/services/nope/snapshots", 404),
            ("POST", "/api/v1/services/nope/snapshots", 404),
            ("POST", "/api/v1/services/nope/reset", 404),
            ("GET", "/api/v1/snapshots/99", 404),
            ("GET", "/api/v1/snapshots/99/profile", 404),
            ("GET", "/api/v1/snapshots/1/diff/2", 404),
            ("GET", "/api/v1/snapshots/abc", 400),
            ("GET", "/api/v1/snapshots/-1", 400),
            ("GET", "/api/v1/nothing", 404),
            ("GET", "/api/v1/services/%FF", 400),
            ("GET", "/api/v1/services/x/snapshots?limit=many", 400),
            ("DELETE", "/api/v1/services", 405),
            ("GET", "/api/v1/agents/register", 405),
        ] {
            let a = call(method, format!("http://{}{path}", server.addr), None, None).await;
            assert_eq!(a.status, status, "{method} {path}: {}", a.text);
            assert!(a.json["error"].is_string(), "{method} {path}: {}", a.text);
            // One line, ended: `curl` leaves the prompt on a line of its own.
            assert!(a.text.ends_with("}\n"), "{method} {path}: {:?}", a.text);
        }
        let ok = get(&server, "/api/v1/services").await;
        assert_eq!(ok.text, "{\"services\":[],\"next\":null}\n");
        let bad = post(
            &server,
            "/api/v1/services/x/snapshots",
            serde_json::json!({"label": 5}),
        )
        .await;
        assert_eq!(bad.status, 400, "{}", bad.text);
        server.stop().await.unwrap();
    }

    pub async fn admin_and_agent_tokens(db: &Db) {
        let mut cfg = config(&db.url);
        cfg.admin_token = Some("admin-secret".into());
        cfg.agent_token = Some("agent-secret".into());
        let server = start(cfg).await;
        let b = set_build("tokens");
        let agent = SimAgent::start(b.clone(), Some("agent-secret".into())).await;
        let body = agent.registration("svc", "i0").to_string().into_bytes();
        let url = format!("http://{}/api/v1/agents/register", server.addr);
        for token in [None, Some("admin-secret"), Some("wrong")] {
            let a = call("POST", url.clone(), Some(body.clone()), token).await;
            assert_eq!(a.status, 401, "{token:?}: {}", a.text);
        }
        let a = call("POST", url, Some(body), Some("agent-secret")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let hb = format!("http://{}/api/v1/agents/i0/heartbeat", server.addr);
        let beat = serde_json::json!({ "secret": agent.secret() })
            .to_string()
            .into_bytes();
        assert_eq!(
            call("POST", hb.clone(), Some(beat.clone()), None)
                .await
                .status,
            401
        );
        assert_eq!(
            call("POST", hb, Some(beat), Some("agent-secret"))
                .await
                .status,
            200
        );

        agent.hit(1, 1);
        let snap = format!("http://{}/api/v1/services/svc/snapshots", server.addr);
        let reset = format!("http://{}/api/v1/services/svc/reset", server.addr);
        for url in [&snap, &reset] {
            for token in [None, Some("agent-secret")] {
                let a = call("POST", url.clone(), None, token).await;
                assert_eq!(a.status, 401, "{url} {token:?}: {}", a.text);
            }
        }
        assert_eq!(
            agent.counters()[1],
            1,
            "an unauthorized reset changed nothing"
        );
        // The server pulls with the agent token (the simulated agent requires it).
        let a = call("POST", snap, None, Some("admin-secret")).await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert_eq!(a.json["totals"]["blocks_covered"], 1);
        // Reading needs no token.
        assert_eq!(get(&server, "/api/v1/services").await.status, 200);
        server.stop().await.unwrap();
    }

    pub async fn restart_keeps_registry_and_snapshots(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = set_build("restart");
        let a = agents(&server, &b, "svc", 1).await;
        a[0].hit(3, 1);
        let id = snapshot(&server, "svc", "").await["id"].as_i64().unwrap();
        let before = get(&server, &format!("/api/v1/snapshots/{id}/profile"))
            .await
            .text;
        server.stop().await.unwrap();

        let server = start(config(&db.url)).await;
        let svc = get(&server, "/api/v1/services/svc").await;
        assert_eq!(svc.json["live_instances"], 1, "{}", svc.text);
        assert_eq!(
            get(&server, &format!("/api/v1/snapshots/{id}/profile"))
                .await
                .text,
            before
        );
        // The known instance's heartbeat is accepted, and it can be pulled again: the build's
        // metadata comes from the store, not from the agent.
        let hb = post(
            &server,
            "/api/v1/agents/i0/heartbeat",
            serde_json::json!({ "secret": a[0].secret() }),
        )
        .await;
        assert_eq!(hb.status, 200, "{}", hb.text);
        a[0].hit(4, 1);
        let snap = snapshot(&server, "svc", "").await;
        assert_eq!(snap["id"], id + 1);
        assert_eq!(snap["totals"]["blocks_covered"], 2);
        server.stop().await.unwrap();
    }

    pub async fn database_away_mid_snapshot(db: &Db) {
        if db.kind != "postgres" {
            return sqlite_locked(db).await;
        }
        // The server reaches PostgreSQL through a proxy that the test cuts.
        let url = reqwest::Url::parse(&db.url).unwrap();
        let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
        let proxy = Proxy::start(target).await;
        let mut via = url.clone();
        via.set_port(Some(proxy.port)).unwrap();
        let server = start(config(via.as_str())).await;
        let b = set_build("away");
        let a = agents(&server, &b, "svc", 2).await;
        a[0].hit(1, 1);
        a[1].hit(2, 1);
        snapshot(&server, "svc", "").await;

        // A plain snapshot: the database goes away while the instances answer.
        a[0].set_behavior(Behavior::Delay(Duration::from_millis(300)));
        let r = cut_during(
            &proxy,
            post(
                &server,
                "/api/v1/services/svc/snapshots",
                serde_json::json!({}),
            ),
        )
        .await;
        assert_eq!(r.status, 503, "{}", r.text);
        let h = get(&server, "/healthz").await;
        assert_eq!(h.status, 503, "{}", h.text);
        // While it is away, nothing is taken: a reset resets nothing.
        a[0].set_behavior(Behavior::Normal);
        let r = post(&server, "/api/v1/services/svc/reset", serde_json::json!({})).await;
        assert_eq!(r.status, 503, "{}", r.text);
        assert_eq!(a[0].counters()[1], 1);

        // Back: only the first snapshot is stored; the next one works.
        proxy.restore();
        let list = get(&server, "/api/v1/services/svc/snapshots").await;
        assert_eq!(list.status, 200, "{}", list.text);
        assert_eq!(list.json["snapshots"].as_array().unwrap().len(), 1);
        snapshot(&server, "svc", "").await;

        // A reset whose storing fails loses nothing: the agents keep their counts, and the
        // server finishes the reset when the database is back.
        a[0].set_behavior(Behavior::Delay(Duration::from_millis(300)));
        let r = cut_during(
            &proxy,
            post(
                &server,
                "/api/v1/services/svc/reset",
                serde_json::json!({"label": "held"}),
            ),
        )
        .await;
        assert_eq!(r.status, 503, "{}", r.text);
        assert!(
            r.json["error"]
                .as_str()
                .unwrap()
                .contains("no count is lost"),
            "{}",
            r.text
        );
        assert_eq!(a[0].ever()[1], 1);
        proxy.restore();
        let mut stored = None;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let list = get(&server, "/api/v1/services/svc/snapshots").await;
            if list.status == 200 && list.json["snapshots"][0]["label"] == "held" {
                stored = Some(list.json["snapshots"][0].clone());
                break;
            }
        }
        let stored = stored.expect("the reset is finished once the database is back");
        assert_eq!(stored["reset"], true);
        assert_eq!(stored["totals"]["blocks_covered"], 2);
        server.stop().await.unwrap();
    }

    /// Runs `request`, cutting the database 100 ms into it (while a delayed instance answers).
    async fn cut_during(
        proxy: &Proxy,
        request: impl std::future::Future<Output = Answer>,
    ) -> Answer {
        let cutter = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            proxy.cut();
        };
        tokio::join!(request, cutter).0
    }

    /// SQLite cannot go away, but it can be locked by another writer for longer than the
    /// server waits: the snapshot fails whole with 503 and the next one works.
    async fn sqlite_locked(db: &Db) {
        use sqlx::Connection;
        let server = start(config(&db.url)).await;
        let b = set_build("locked");
        let a = agents(&server, &b, "svc", 1).await;
        a[0].hit(1, 1);
        let mut other = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut other)
            .await
            .unwrap();
        let r = post(
            &server,
            "/api/v1/services/svc/snapshots",
            serde_json::json!({}),
        )
        .await;
        assert_eq!(r.status, 503, "{}", r.text);
        sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
        drop(other);
        let list = get(&server, "/api/v1/services/svc/snapshots").await;
        assert_eq!(list.json["snapshots"], serde_json::json!([]));
        snapshot(&server, "svc", "").await;
        server.stop().await.unwrap();
    }

    pub async fn metrics_and_health(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = set_build("metrics");
        let a = agents(&server, &b, "svc", 2).await;
        a[0].hit(0, 1);
        a[1].set_behavior(Behavior::Garbage);
        snapshot(&server, "svc", "").await;
        let h = get(&server, "/healthz").await;
        assert_eq!(h.status, 200);
        assert_eq!(h.json["store"], "up");
        let m = get(&server, "/metrics").await.text;
        for want in [
            "livecov_pulls_total{outcome=\"ok\"} 1\n",
            "livecov_pulls_total{outcome=\"rejected\"} 1\n",
            "livecov_pull_duration_seconds_count 2\n",
            "livecov_snapshots_total{result=\"stored\"} 1\n",
            "livecov_registrations_total 2\n",
            "livecov_live_instances{service=\"svc\"} 2\n",
            // 1 block of 2 statements out of 12 blocks.
            "livecov_coverage_ratio{service=\"svc\"} 0.08333333333333333\n",
            "livecov_store_up 1\n",
        ] {
            assert!(m.contains(want), "{want:?} not in\n{m}");
        }
        server.stop().await.unwrap();
    }

    pub async fn scheduled_snapshots(db: &Db) {
        let mut cfg = config(&db.url);
        cfg.snapshot_every = Some(Duration::from_millis(300));
        let server = start(cfg).await;
        let a = agents(&server, &set_build("sched"), "svc", 1).await;
        a[0].hit(1, 1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let list = get(&server, "/api/v1/services/svc/snapshots").await;
        let snaps = list.json["snapshots"].as_array().unwrap();
        assert!(snaps.len() >= 2, "{}", list.text);
        assert!(
            snaps
                .iter()
                .all(|s| s["label"] == "scheduled" && s["reset"] == false)
        );
        assert_eq!(snaps[0]["totals"]["blocks_covered"], 1);
        server.stop().await.unwrap();
    }

    /// A page of another site makes the visitor's browser post to the server (no admin token
    /// is configured, the default): refused, and nothing changes.
    pub async fn cross_site_requests_are_refused(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = set_build("csrf");
        let a = agents(&server, &b, "svc", 1).await;
        a[0].hit(1, 1);
        let send = |path: &str, headers: Vec<(&'static str, String)>| {
            let url = format!("http://{}{path}", server.addr);
            async move {
                let mut req = client()
                    .post(url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body("label=x");
                for (k, v) in headers {
                    req = req.header(k, v);
                }
                req.send().await.unwrap().status().as_u16()
            }
        };
        let evil = || vec![("Origin", "http://evil.example".to_string())];
        for path in [
            "/api/v1/services/svc/snapshots",
            "/api/v1/services/svc/snapshots?reset=true",
            "/api/v1/services/svc/reset",
            "/api/v1/services/svc/sessions",
            "/api/v1/agents/register",
        ] {
            assert_eq!(send(path, evil()).await, 403, "{path}");
            let fetch = vec![("Sec-Fetch-Site", "cross-site".to_string())];
            assert_eq!(send(path, fetch).await, 403, "{path}");
        }
        let list = get(&server, "/api/v1/services/svc/snapshots").await;
        assert_eq!(
            list.json["snapshots"],
            serde_json::json!([]),
            "nothing was taken"
        );
        let sessions = get(&server, "/api/v1/services/svc/sessions").await;
        assert_eq!(sessions.json["sessions"], serde_json::json!([]));
        // The dashboard's own requests come from the same origin: they pass.
        let url = format!("http://{}/api/v1/services/svc/snapshots", server.addr);
        let same = client()
            .post(url)
            .header("Origin", format!("http://{}", server.addr))
            .header("Sec-Fetch-Site", "same-origin")
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(same.status().as_u16(), 201);
        // Reading is not changed by it.
        let read = client()
            .get(format!("http://{}/api/v1/services", server.addr))
            .header("Origin", "http://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(read.status().as_u16(), 200);
        server.stop().await.unwrap();
    }

    /// An agent with the wrong token: refused, and the server says so in its metrics and on
    /// its dashboard, where before nothing did.
    pub async fn refused_agents_are_seen(db: &Db) {
        let mut cfg = config(&db.url);
        cfg.agent_token = Some("right".into());
        let server = start(cfg).await;
        let b = set_build("refused");
        let agent = SimAgent::start(b.clone(), None).await;
        let body = agent.registration("svc", "i0").to_string().into_bytes();
        let url = format!("http://{}/api/v1/agents/register", server.addr);
        for _ in 0..3 {
            let a = call("POST", url.clone(), Some(body.clone()), Some("wrong")).await;
            assert_eq!(a.status, 401, "{}", a.text);
        }
        let mut bad = agent.registration("svc", "i1");
        bad["port"] = 0.into();
        let a = call(
            "POST",
            url,
            Some(bad.to_string().into_bytes()),
            Some("right"),
        )
        .await;
        assert_eq!(a.status, 400, "{}", a.text);
        let metrics = get(&server, "/metrics").await.text;
        assert!(
            metrics.contains("livecov_agent_refusals_total{reason=\"token\"} 3\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("livecov_agent_refusals_total{reason=\"invalid\"} 1\n"),
            "{metrics}"
        );
        let page = get(&server, "/").await;
        assert_eq!(page.status, 200);
        assert!(
            page.text.contains("No service has registered yet"),
            "{}",
            page.text
        );
        assert!(
            page.text.contains("<h2>Refused agents</h2>"),
            "{}",
            page.text
        );
        assert!(
            page.text.contains("POST /api/v1/agents/register"),
            "{}",
            page.text
        );
        assert!(page.text.contains("needs the agent token"), "{}", page.text);
        assert!(page.text.contains("port: want 1 to 65535"), "{}", page.text);
        assert!(page.text.contains("127.0.0.1"), "{}", page.text);
        server.stop().await.unwrap();
    }

    /// Six new builds whose instances answer slowly, and more slow instances than are pulled
    /// at once: the snapshot still ends within twice the pull timeout (one for the builds'
    /// metadata, fetched at once, one for the pulls).
    pub async fn a_snapshot_takes_at_most_two_pull_timeouts(db: &Db) {
        let mut cfg = config(&db.url);
        cfg.pull_timeout = Duration::from_millis(700);
        cfg.pull_concurrency = 2;
        let server = start(cfg).await;
        let mut agents = Vec::new();
        for i in 0..6 {
            let b = Arc::new(SimBuild::synthetic(Mode::Set, 1, 4, &format!("slow{i}")));
            let a = SimAgent::start(b, None).await;
            a.set_behavior(Behavior::Delay(Duration::from_millis(500)));
            a.hit(0, 1);
            register(&server, &a, "svc", &format!("i{i}")).await;
            agents.push(a);
        }
        let start = std::time::Instant::now();
        let s = snapshot(&server, "svc", "").await;
        let took = start.elapsed();
        assert!(took < Duration::from_millis(2 * 700 + 400), "took {took:?}");
        // Two at a time, half a second each: the first two answer, the rest are cut at the
        // deadline and say why.
        let ok = s["instances_ok"].as_i64().unwrap();
        assert!((2..6).contains(&ok), "{s}");
        let detail = get(&server, &format!("/api/v1/snapshots/{}", s["id"])).await;
        let late = detail.json["instance_results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["outcome"] == "timeout")
            .count();
        assert_eq!(late as i64, 6 - ok, "{}", detail.text);
        server.stop().await.unwrap();
    }

    /// A flood of registrations of new services or instances, or from one address: refused
    /// past the quotas (429), counted, and nothing of it kept.
    pub async fn quotas_bound_what_registrations_keep(db: &Db) {
        let mut cfg = config(&db.url);
        cfg.max_services = 3;
        cfg.max_instances = 2;
        cfg.registrations_per_minute = 9;
        let server = start(cfg).await;
        let b = set_build("quota");
        let agent = SimAgent::start(b.clone(), None).await;
        let reg = |service: &str, instance: &str| agent.registration(service, instance);
        for s in ["s0", "s1", "s2"] {
            let a = post(
                &server,
                "/api/v1/agents/register",
                reg(s, &format!("{s}-i0")),
            )
            .await;
            assert_eq!(a.status, 200, "{}", a.text);
        }
        let a = post(&server, "/api/v1/agents/register", reg("s3", "s3-i0")).await;
        assert_eq!(a.status, 429, "{}", a.text);
        assert!(a.text.contains("--max-services"), "{}", a.text);
        let a = post(&server, "/api/v1/agents/register", reg("s0", "s0-i1")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let a = post(&server, "/api/v1/agents/register", reg("s0", "s0-i2")).await;
        assert_eq!(a.status, 429, "{}", a.text);
        assert!(a.text.contains("--max-instances"), "{}", a.text);
        // An instance registering again is not a new one.
        let a = post(&server, "/api/v1/agents/register", reg("s0", "s0-i1")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        // That was the 7th registration from this address this minute (refused ones count
        // too): the 8th and 9th pass, the 10th is refused.
        for _ in 0..2 {
            let a = post(&server, "/api/v1/agents/register", reg("s1", "s1-i0")).await;
            assert_eq!(a.status, 200, "{}", a.text);
        }
        let a = post(&server, "/api/v1/agents/register", reg("s1", "s1-i0")).await;
        assert_eq!(a.status, 429, "{}", a.text);
        assert!(a.text.contains("--registrations-per-minute"), "{}", a.text);
        let list = get(&server, "/api/v1/services").await;
        let names: Vec<_> = list.json["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["s0", "s1", "s2"]);
        let s0 = get(&server, "/api/v1/services/s0").await;
        assert_eq!(s0.json["live_instances"], 2);
        let metrics = get(&server, "/metrics").await.text;
        assert!(
            metrics.contains("livecov_agent_refusals_total{reason=\"quota\"} 3\n"),
            "{metrics}"
        );
        server.stop().await.unwrap();
    }

    pub async fn services_come_a_page_at_a_time(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = set_build("pages");
        let agent = SimAgent::start(b.clone(), None).await;
        for s in ["e", "a", "d", "c", "b"] {
            let r = post(&server, "/api/v1/agents/register", agent.registration(s, s)).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        let mut seen = Vec::new();
        let mut after = String::new();
        loop {
            let page = get(&server, &format!("/api/v1/services?limit=2&after={after}")).await;
            assert_eq!(page.status, 200, "{}", page.text);
            let names = page.json["services"].as_array().unwrap();
            assert!(names.len() <= 2, "{}", page.text);
            seen.extend(
                names
                    .iter()
                    .map(|s| s["name"].as_str().unwrap().to_string()),
            );
            match page.json["next"].as_str() {
                Some(next) => after = next.to_string(),
                None => break,
            }
        }
        assert_eq!(seen, ["a", "b", "c", "d", "e"]);
        let all = get(&server, "/api/v1/services").await;
        assert_eq!(all.json["services"].as_array().unwrap().len(), 5);
        assert!(all.json["next"].is_null());
        assert_eq!(get(&server, "/api/v1/services?limit=x").await.status, 400);
        // The dashboard's front page follows the same pages.
        let front = get(&server, "/?after=c").await;
        assert!(
            front.text.contains("href=\"/services/d\""),
            "{}",
            front.text
        );
        assert!(
            !front.text.contains("href=\"/services/a\""),
            "{}",
            front.text
        );
        server.stop().await.unwrap();
    }
}

/// SQLite on a full disk (a 4 MiB tmpfs this test mounts; root is needed): writes are refused
/// with 503 and the health check and the metrics say the store is down; once space is freed,
/// writes are stored, every read sees them, and nothing refused was kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_told_and_recovered_from() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("tmpfs");
    std::fs::create_dir(&mount).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mount)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        // SAFETY: geteuid has no preconditions.
        assert_ne!(
            unsafe { libc_geteuid() },
            0,
            "root, and yet tmpfs did not mount"
        );
        eprintln!("not root: no tmpfs, the full-disk test does not run here");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let url = format!("sqlite://{}", mount.join("livecov.db").display());
    let server = start(config(&url)).await;
    let b = Arc::new(SimBuild::synthetic(Mode::Set, 1, 4, "full"));
    let agent = SimAgent::start(b.clone(), None).await;
    let reg = |instance: &str| agent.registration("svc", instance);
    assert_eq!(
        post(&server, "/api/v1/agents/register", reg("i1"))
            .await
            .status,
        200
    );

    let fill = mount.join("fill");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", fill.display()))
        .stderr(std::process::Stdio::null())
        .status();
    for i in ["i2", "i3"] {
        let a = post(&server, "/api/v1/agents/register", reg(i)).await;
        assert_eq!(a.status, 503, "{}", a.text);
    }
    let h = get(&server, "/healthz").await;
    assert_eq!(h.status, 503, "{}", h.text);
    let m = get(&server, "/metrics").await;
    assert!(m.text.contains("livecov_store_up 0\n"), "{}", m.text);

    std::fs::remove_file(&fill).unwrap();
    // The store is told up again as soon as a write succeeds (the agents' next heartbeat or
    // registration).
    for i in ["i4", "i5", "i6"] {
        let a = post(&server, "/api/v1/agents/register", reg(i)).await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    // Every read, whichever pooled connection serves it, sees the same instances.
    for _ in 0..8 {
        let s = get(&server, "/api/v1/services/svc").await;
        let mut ids: Vec<String> = s.json["instance_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        assert_eq!(ids, ["i1", "i4", "i5", "i6"], "{}", s.text);
        assert_eq!(s.json["instances"], 4, "{}", s.text);
    }
    assert_eq!(get(&server, "/healthz").await.status, 200);
    server.stop().await.unwrap();
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
