//! Processes that end, with real parts: a short-lived program built by `livecov build` in
//! count mode, run 20 times between two snapshots of a round. Nineteen runs return from main
//! (their agents deliver their last counters as they end); one is killed with SIGKILL after
//! its agent wrote its counters to `LIVECOV_DIR`, and `livecov collect` sends them. The
//! round's snapshot holds exactly the sum of the 20 runs' counts, once, however often they
//! are collected; every run's exit status and output are its own. On SQLite, and on
//! PostgreSQL when `LIVECOV_TEST_POSTGRES` is set.
//!
//! And a run of the program, which has no signal handler, ended by SIGTERM: its agent
//! delivers its counters, and it dies of the signal with the output of `go build`'s binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use livecov_testkit::LiveServer;

const LIVECOV: &str = env!("CARGO_BIN_EXE_livecov");

fn build(dir: &Path) -> PathBuf {
    build_with(dir, &[])
}

/// Builds the work program with `extra` files beside it, in count mode.
fn build_with(dir: &Path, extra: &[(&str, &str)]) -> PathBuf {
    build_work(dir, "count", extra)
}

/// The program with `args`, its agent pointed at the server on `port` and its counters kept
/// in `dir`.
fn program(bin: &Path, port: u16, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("LIVECOV_SERVER", format!("http://127.0.0.1:{port}"))
        .env("LIVECOV_SERVICE", "short")
        .env("LIVECOV_AGENT_ADDR", "127.0.0.1:0")
        .env("LIVECOV_HEARTBEAT", "200ms")
        .env("LIVECOV_DIR", dir)
        .env("LIVECOV_FLUSH", "50ms");
    cmd
}

/// Entry counts of `work`, `step` and `main`, and the count of `step`'s even branch, in
/// snapshot `id`'s JSON export.
fn counts(port: u16, id: i64) -> [u64; 4] {
    let e = get_json(port, &format!("/api/v1/snapshots/{id}/profile?format=json"));
    let funcs = e["files"][0]["functions"].as_array().unwrap();
    let f = |name: &str| {
        funcs
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {e}"))
            .clone()
    };
    let step = f("step");
    [
        f("work")["count"].as_u64().unwrap(),
        step["count"].as_u64().unwrap(),
        f("main")["count"].as_u64().unwrap(),
        step["blocks"][1]["count"].as_u64().unwrap(),
    ]
}

#[test]
fn short_lived_and_killed_processes_count_once() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = build(tmp.path());
    let stores = stores(tmp.path());
    for (kind, url) in stores {
        eprintln!("== on {kind}");
        flow(&bin, &url, &tmp.path().join(kind));
    }
}

fn flow(bin: &Path, url: &str, tmp: &Path) {
    std::fs::create_dir_all(tmp).unwrap();
    let dir = tmp.join("livecov");
    let port = free_port();
    let args = ["--database-url", url, "--instance-ttl", "2s"];
    let _server = LiveServer::start_on(
        port,
        Path::new(LIVECOV),
        &args,
        &[],
        &tmp.join("server.log"),
    )
    .unwrap();
    let live = || get_json(port, "/api/v1/services/short")["live_instances"].as_i64();

    // A long-running instance, so that the round can begin before the short runs.
    let anchor = program(bin, port, &dir, &["0", "hang"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _anchor = Service(anchor);
    wait_until("the anchor registered", || {
        http("GET", port, "/api/v1/services/short").is_ok_and(|(s, _)| s == 200)
            && live() == Some(1)
    });
    let reset = client_json(port, &["reset", "short"]);
    assert_eq!(reset["instances_ok"], 1, "{reset}");

    // Nineteen runs that return from main, n = 1 to 19: exit 0, their own output.
    for n in 1..=19 {
        let out = program(bin, port, &dir, &[&n.to_string()])
            .output()
            .unwrap();
        let want: i64 = (0..n).map(|i| if i % 2 == 0 { i } else { 1 }).sum();
        assert_eq!(out.status.code(), Some(0), "run {n}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{want}\n"));
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    }
    // One more, n = 20, killed once its agent wrote its counters (its output is out first).
    let mut killed = Service(
        program(bin, port, &dir, &["20", "hang"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(killed.0.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "100\n");
    std::thread::sleep(Duration::from_millis(300)); // a few LIVECOV_FLUSH periods
    killed.0.kill().unwrap();
    let status = killed.0.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );

    // Its instance goes (no heartbeat); the 19 others are exited, not pulled.
    wait_until("only the anchor live", || live() == Some(1));
    let collected = client_json(port, &["collect", dir.to_str().unwrap()]);
    let instances = collected["instances"].as_array().unwrap();
    // The anchor's file too (it is live: it stays live), and the 19 runs' (already in): new
    // are the killed run's counts and the anchor's.
    assert_eq!(instances.len(), 21, "{collected}");
    let mut new: Vec<&str> = instances
        .iter()
        .filter(|i| i["changed"] == true)
        .map(|i| i["state"].as_str().unwrap())
        .collect();
    new.sort();
    assert_eq!(new, ["exited", "live"], "{collected}");
    assert_eq!(
        instances.iter().filter(|i| i["state"] == "live").count(),
        1,
        "{collected}"
    );

    // The round: the anchor ran nothing since the reset; the 20 runs ran work 20 times,
    // step 1 + 2 + … + 20 = 210 times, 110 of them even (ceil(n/2) summed), main 20 times.
    let s1 = client_json(port, &["snapshot", "short"]);
    assert_eq!(s1["instances_failed"], 0, "{s1}");
    assert_eq!(s1["instances_ok"], 21, "{s1}");
    let id1 = s1["id"].as_i64().unwrap();
    assert_eq!(counts(port, id1), [20, 210, 20, 110]);
    let svc = get_json(port, "/api/v1/services/short");
    let states: Vec<&str> = svc["instance_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == "exited").count(),
        20,
        "{svc}"
    );

    // Once only: collecting again, and a later snapshot of the round, change nothing.
    let again = client_json(port, &["collect", dir.to_str().unwrap()]);
    assert!(
        again["instances"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["changed"] == false),
        "{again}"
    );
    let id2 = client_json(port, &["snapshot", "short"])["id"]
        .as_i64()
        .unwrap();
    assert_eq!(counts(port, id2), [20, 210, 20, 110]);

    // A new round holds none of them: they ended in the last one.
    let r = client_json(port, &["reset", "short"]);
    assert_eq!(counts(port, r["id"].as_i64().unwrap()), [20, 210, 20, 110]);
    let id3 = client_json(port, &["snapshot", "short"])["id"]
        .as_i64()
        .unwrap();
    assert_eq!(counts(port, id3), [0, 0, 0, 0]);
}

/// The generated `zz_build.go` of the one build in the cache `dir/cache`, checked to be as
/// `gofmt` formats it.
fn build_info(dir: &Path) -> String {
    let builds: Vec<PathBuf> = std::fs::read_dir(dir.join("cache").join("builds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(builds.len(), 1, "{builds:?}");
    let file = builds[0].join("agent").join("zz_build.go");
    let unformatted = run_ok(Command::new("gofmt").arg("-l").arg(&file));
    assert_eq!(unformatted, "", "gofmt would change {}", file.display());
    std::fs::read_to_string(file).unwrap()
}

#[test]
fn the_build_says_whether_the_host_can_handle_signals() {
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path());
    let info = build_info(tmp.path());
    assert!(info.contains("\tHostSignals: false,\n"), "{info}");

    let tmp = tempfile::tempdir().unwrap();
    let handler = "package main\n\nimport (\n\t\"os\"\n\t\"os/signal\"\n)\n\nfunc init() { signal.Notify(make(chan os.Signal, 1), os.Interrupt) }\n";
    build_with(tmp.path(), &[("handler.go", handler)]);
    let info = build_info(tmp.path());
    assert!(info.contains("\tHostSignals: true,\n"), "{info}");
}

/// Runs `cmd` (which prints a line, then hangs) until it printed its line, sends it SIGTERM,
/// and returns the signal that ended it, its output and its standard error.
fn end_by_sigterm(cmd: &mut Command) -> (Option<i32>, String, String) {
    use std::io::Read;
    let mut child = Service(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let mut out = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut out).unwrap();
    run_ok(Command::new("kill").args(["-TERM", &child.0.id().to_string()]));
    let mut status = None;
    wait_until("the process ended", || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    stdout.read_to_string(&mut out).unwrap();
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let signal = std::os::unix::process::ExitStatusExt::signal(&status.unwrap());
    (signal, out, err)
}

#[test]
fn a_process_ended_by_sigterm_delivers_its_counters() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = build(tmp.path());
    let plain = tmp.path().join("short-plain");
    run_ok(
        Command::new("go")
            .args(["build", "-o"])
            .arg(&plain)
            .arg(".")
            .current_dir(tmp.path().join("short")),
    );
    let port = free_port();
    let url = format!("sqlite://{}", tmp.path().join("livecov.db").display());
    let _server = LiveServer::start_on(
        port,
        Path::new(LIVECOV),
        &["--database-url", &url],
        &[],
        &tmp.path().join("server.log"),
    )
    .unwrap();
    let dir = tmp.path().join("livecov");
    let anchor = program(&bin, port, &dir, &["0", "hang"])
        .env_remove("LIVECOV_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _anchor = Service(anchor);
    wait_until("the anchor registered", || {
        http("GET", port, "/api/v1/services/short").is_ok_and(|(s, _)| s == 200)
    });
    client_json(port, &["reset", "short"]);

    let without = end_by_sigterm(Command::new(&plain).args(["20", "hang"]));
    assert_eq!(without, (Some(15), "100\n".to_string(), String::new()));
    // No LIVECOV_DIR: what the server gets, it gets from the agent as the process ends.
    let with = end_by_sigterm(program(&bin, port, &dir, &["20", "hang"]).env_remove("LIVECOV_DIR"));
    assert_eq!(with, without);
    let s = client_json(port, &["snapshot", "short"]);
    assert_eq!(counts(port, s["id"].as_i64().unwrap()), [1, 20, 1, 10]);
    assert!(!dir.exists());
}
