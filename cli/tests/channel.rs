//! Instances the server cannot connect to, with real parts: a service built by `livecov
//! build` in count mode runs as two replicas doing the same work. Replica `a` is pulled as
//! usual; replica `b`'s agent listens on 127.0.0.2, so the server, which connects to the
//! address a registration came from (127.0.0.1), is refused. The first snapshot says so; the
//! server then asks `b`'s agent, in its heartbeat answers, to keep a connection to it, and
//! every later snapshot, reset and export reads `b` over that connection: with the same
//! blocks and counts as `a`. A third replica, forced with `LIVECOV_CHANNEL=on`, is read over
//! its connection from its first snapshot on. Strangers without the instance's secret get
//! nothing from the channel's endpoints. The replicas' output is their own throughout. On
//! SQLite, and on PostgreSQL when `LIVECOV_TEST_POSTGRES` is set.

mod common;

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use livecov_testkit::LiveServer;
use serde_json::Value;

const LIVECOV: &str = env!("CARGO_BIN_EXE_livecov");

/// A replica running `work(n)`, labelled `replica=name`, its agent listening on `listen`;
/// returned once it printed its result, which must be its own.
fn replica(
    bin: &Path,
    port: u16,
    name: &str,
    listen: &str,
    n: u32,
    env: &[(&str, &str)],
) -> Service {
    let mut child = Command::new(bin)
        .args([&n.to_string(), "hang"])
        .env("LIVECOV_SERVER", format!("http://127.0.0.1:{port}"))
        .env("LIVECOV_SERVICE", "far")
        .env("LIVECOV_AGENT_ADDR", listen)
        .env("LIVECOV_HEARTBEAT", "100ms")
        .env("LIVECOV_LABELS", format!("replica={name}"))
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let want: u32 = (0..n).map(|i| if i % 2 == 0 { i } else { 1 }).sum();
    assert_eq!(line, format!("{want}\n"), "replica {name}'s output");
    Service(child)
}

/// The instances of the service, by their `replica` label.
fn instances(port: u16) -> Vec<(String, Value)> {
    let svc = get_json(port, "/api/v1/services/far");
    let mut out: Vec<(String, Value)> = svc["instance_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["labels"]["replica"].as_str().unwrap().to_string(),
                i.clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A block of the JSON export: its function, its index there, where it is, its statements,
/// its count.
type Block = (String, u64, String, u64, u64);

/// Snapshot `id`'s blocks as the JSON export lists them.
fn blocks(port: u16, id: i64) -> Vec<Block> {
    let e = get_json(port, &format!("/api/v1/snapshots/{id}/profile?format=json"));
    let mut out = Vec::new();
    for file in e["files"].as_array().unwrap() {
        for f in file["functions"].as_array().unwrap() {
            for (n, b) in f["blocks"].as_array().unwrap().iter().enumerate() {
                out.push((
                    f["name"].as_str().unwrap().to_string(),
                    n as u64,
                    format!(
                        "{}.{},{}.{}",
                        b["start_line"], b["start_col"], b["end_line"], b["end_col"]
                    ),
                    b["stmts"].as_u64().unwrap(),
                    b["count"].as_u64().unwrap(),
                ));
            }
        }
    }
    out
}

fn snapshot(port: u16, selector: Option<&str>) -> Value {
    let mut args = vec!["snapshot", "far"];
    if let Some(s) = selector {
        args.extend(["--selector", s]);
    }
    client_json(port, &args)
}

#[test]
fn unreachable_agents_are_read_over_their_own_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = build_work(tmp.path(), "count", &[]);
    let set_bin = build_work(tmp.path(), "set", &[]);
    let stores = stores(tmp.path());
    for (kind, url) in stores {
        eprintln!("== on {kind}");
        flow(&bin, &set_bin, &url, &tmp.path().join(kind));
    }
}

fn flow(bin: &Path, set_bin: &Path, url: &str, tmp: &Path) {
    std::fs::create_dir_all(tmp).unwrap();
    let port = free_port();
    let args = [
        "--database-url",
        url,
        "--pull-timeout",
        "3s",
        "--channel-wait",
        "1s",
    ];
    let _server = LiveServer::start_on(
        port,
        Path::new(LIVECOV),
        &args,
        &[],
        &tmp.join("server.log"),
    )
    .unwrap();

    let _a = replica(bin, port, "a", "127.0.0.1:0", 7, &[]);
    let _b = replica(bin, port, "b", "127.0.0.2:0", 7, &[]);
    wait_until("both registered", || {
        http("GET", port, "/api/v1/services/far").is_ok_and(|(s, _)| s == 200)
            && get_json(port, "/api/v1/services/far")["live_instances"] == 2
    });

    // The first snapshot cannot connect to b.
    let s1 = snapshot(port, None);
    assert_eq!(s1["instances_ok"], 1, "{s1}");
    assert_eq!(s1["instances_failed"], 1, "{s1}");
    // b's next heartbeat asks it to connect; its agent polls from then on.
    wait_until("b keeps a connection", || {
        let i = instances(port);
        i[1].1["channel"] == true && i[0].1["channel"] == false
    });

    // Read over its connection, b has exactly a's blocks and counts (both ran work(7)).
    let sa = snapshot(port, Some("replica=a"));
    let sb = snapshot(port, Some("replica=b"));
    assert_eq!(sb["instances_ok"], 1, "{sb}");
    assert_eq!(sb["instances_failed"], 0, "{sb}");
    let (ba, bb) = (
        blocks(port, sa["id"].as_i64().unwrap()),
        blocks(port, sb["id"].as_i64().unwrap()),
    );
    assert_eq!(ba, bb);
    // work once, step 7 times (4 even), main once.
    let count = |b: &[Block], f: &str, n: u64| b.iter().find(|x| x.0 == f && x.1 == n).unwrap().4;
    assert_eq!(
        [
            count(&bb, "work", 0),
            count(&bb, "step", 0),
            count(&bb, "step", 1),
            count(&bb, "main", 0)
        ],
        [1, 7, 4, 1]
    );

    // Both together: the sum. A reset is applied over the connection too.
    let s2 = snapshot(port, None);
    assert_eq!(s2["instances_ok"], 2, "{s2}");
    let b2 = blocks(port, s2["id"].as_i64().unwrap());
    assert_eq!(count(&b2, "step", 0), 14);
    let r = client_json(port, &["reset", "far"]);
    assert_eq!(r["instances_ok"], 2, "{r}");
    assert_eq!(r["instances_failed"], 0, "{r}");
    let s3 = snapshot(port, None);
    assert_eq!(s3["instances_ok"], 2, "{s3}");
    assert_eq!(
        count(&blocks(port, s3["id"].as_i64().unwrap()), "step", 0),
        0
    );

    // Forced: c connects from the start, and its first snapshot reads it.
    let _c = replica(
        bin,
        port,
        "c",
        "127.0.0.2:0",
        3,
        &[("LIVECOV_CHANNEL", "on")],
    );
    wait_until("c keeps a connection", || {
        let i = instances(port);
        i.len() == 3 && i[2].1["channel"] == true
    });
    let sc = snapshot(port, Some("replica=c"));
    assert_eq!(sc["instances_ok"], 1, "{sc}");
    assert_eq!(
        count(&blocks(port, sc["id"].as_i64().unwrap()), "step", 0),
        3
    );

    // The dashboard marks the two read over their connection.
    let (status, page) = http("GET", port, "/services/far").unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8_lossy(&page)
            .matches("via its connection</span>")
            .count(),
        2
    );
    let metrics = String::from_utf8(http("GET", port, "/metrics").unwrap().1).unwrap();
    assert!(
        metrics.contains("\nlivecov_agent_channels 2\n"),
        "{metrics}"
    );

    // Strangers: a poll or an answer without b's secret gets nothing and changes nothing.
    let b = &instances(port)[1].1;
    let id = b["id"].as_str().unwrap();
    for (path, headers) in [
        (format!("/api/v1/agents/{id}/channel"), vec![]),
        (
            format!("/api/v1/agents/{id}/channel"),
            vec!["Livecov-Secret: guess"],
        ),
        (
            format!("/api/v1/agents/{id}/channel/1"),
            vec!["Livecov-Secret: guess", "Livecov-Status: 200"],
        ),
    ] {
        let (status, body) = http_with("POST", port, &path, &headers).unwrap();
        assert_eq!(status, 403, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let (status, _) = http_with(
        "POST",
        port,
        "/api/v1/agents/0123456789abcdef0123456789abcdef/channel",
        &["Livecov-Secret: guess"],
    )
    .unwrap();
    assert_eq!(status, 404);
    let s4 = snapshot(port, None);
    assert_eq!(s4["instances_ok"], 3, "{s4}");
    assert_eq!(s4["instances_failed"], 0, "{s4}");

    // A second server on the same database reads b and c through the server they poll, a
    // directly: the same blocks and counts as the first server reads.
    let port2 = free_port();
    let _server2 = LiveServer::start_on(
        port2,
        Path::new(LIVECOV),
        &args,
        &[],
        &tmp.join("server2.log"),
    )
    .unwrap();
    let s5 = snapshot(port2, None);
    assert_eq!(s5["instances_ok"], 3, "{s5}");
    assert_eq!(s5["instances_failed"], 0, "{s5}");
    let s6 = snapshot(port, None);
    assert_eq!(
        blocks(port2, s5["id"].as_i64().unwrap()),
        blocks(port, s6["id"].as_i64().unwrap())
    );
    let on2: Vec<Value> = instances(port2)
        .into_iter()
        .map(|i| i.1["channel"].clone())
        .collect();
    assert_eq!(on2, [false, true, true]);

    // A build that only instances behind NAT run: its metadata comes over the channel too.
    let only_far = [("LIVECOV_CHANNEL", "on"), ("LIVECOV_SERVICE", "far-set")];
    let _d = replica(set_bin, port, "d", "127.0.0.2:0", 5, &only_far);
    let set_snapshot = || {
        let out = run_ok(Command::new(LIVECOV).args([
            "snapshot",
            "far-set",
            "--json",
            "--server",
            &format!("http://127.0.0.1:{port}"),
        ]));
        serde_json::from_str::<Value>(&out).unwrap()
    };
    wait_until("d keeps a connection", || {
        http("GET", port, "/api/v1/services/far-set").is_ok_and(|(s, _)| s == 200)
            && get_json(port, "/api/v1/services/far-set")["instance_list"][0]["channel"] == true
    });
    let sd = set_snapshot();
    assert_eq!(sd["instances_ok"], 1, "{sd}");
    let bd = blocks(port, sd["id"].as_i64().unwrap());
    assert_eq!(
        [
            count(&bd, "work", 0),
            count(&bd, "step", 1),
            count(&bd, "main", 0)
        ],
        [1, 1, 1],
        "set mode: reached once or more is 1"
    );
}
