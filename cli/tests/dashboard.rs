//! The dashboard in a real browser: the example service built by `livecov build`, one replica
//! registered with a real `livecov server` (SQLite, with an admin token), and
//! `web-tests/dashboard.mjs` clicking through the pages in Debian's headless Chromium: the
//! services list, a wrong and a right token on the snapshot button, a snapshot's sortable
//! tables, the annotated source the build uploaded, the snapshot's Exclude filter, the compare
//! form's diff, and snapshot-and-reset on the trend. Screenshots of every
//! page go to `target/screenshots/dashboard-*.png`.
//!
//! Needs node, Chromium (`/usr/bin/chromium`, or `CHROMIUM`) and `web-tests/node_modules`:
//! scripts/test.sh installs them. Without them the test fails under CI (`CI` set) and is
//! skipped, loudly, elsewhere.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use livecov_testkit::LiveServer;

const LIVECOV: &str = env!("CARGO_BIN_EXE_livecov");
const TOKEN: &str = "dashboard-admin-token";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What the browser test needs and is missing, if anything.
fn missing_tools() -> Vec<String> {
    let mut missing = Vec::new();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).is_file() {
        missing.push(format!(
            "{chromium} (scripts/apt-install.sh chromium, or set CHROMIUM)"
        ));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node {
        missing.push("node on PATH".into());
    }
    let modules = root().join("web-tests/node_modules/playwright-core");
    if !modules.is_dir() {
        missing.push(format!("{} (cd web-tests && npm ci)", modules.display()));
    }
    missing
}

/// Waits until the server lists `greeter` with `n` live instances.
fn wait_live(port: u16, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http("GET", port, "/api/v1/services").unwrap();
        let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if status == 200 && list["services"][0]["live_instances"] == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never {n} live instances: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dashboard_in_headless_chromium() {
    let missing = missing_tools();
    if !missing.is_empty() {
        let msg = format!(
            "the dashboard's browser test needs {}: run scripts/test.sh, which installs them",
            missing.join(", ")
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        // Past the test harness's capture, so that the skip shows without --nocapture.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!! SKIPPED dashboard_in_headless_chromium: {msg} !!!!!!!!\n"
        );
        return;
    }

    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("greeter");

    let log_path = tmp.path().join("server.log");
    let db = format!("sqlite://{}", tmp.path().join("livecov.db").display());
    let server = LiveServer::start(
        Path::new(LIVECOV),
        &["--database-url", &db, "--admin-token", TOKEN],
        &[],
        &log_path,
    )
    .unwrap();
    let port = server.port();
    // Built with its sources uploaded, for the annotated source page.
    run_ok(
        Command::new(LIVECOV)
            .args(["build", "--cache-dir"])
            .arg(tmp.path().join("cache"))
            .args([
                "--upload-sources",
                "--server",
                &format!("http://127.0.0.1:{port}"),
            ])
            .args(["--token", TOKEN])
            .args(["--", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(EXAMPLE),
    );

    let (_greeter, greeter_port) = start_replica(&bin, port);
    wait_live(port, 1);
    let (status, body) = http("GET", greeter_port, "/hello?name=browser").unwrap();
    assert_eq!(
        (status, String::from_utf8_lossy(&body).trim()),
        (200, "Hello, browser!")
    );

    // The script takes the snapshots itself, and between its first and its second makes a
    // request of its own to the greeter (`/calc`), which the diff then shows.
    let shots = root().join("target/screenshots");
    if let Ok(dir) = std::fs::read_dir(&shots) {
        for e in dir.flatten() {
            if e.file_name().to_string_lossy().starts_with("dashboard-") {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
    }
    let out = Command::new("node")
        .arg(root().join("web-tests/dashboard.mjs"))
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(TOKEN)
        .arg(&shots)
        .arg(format!("http://127.0.0.1:{greeter_port}"))
        .current_dir(root().join("web-tests"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    drop(server);
    assert!(
        out.status.success(),
        "web-tests/dashboard.mjs failed ({}); screenshots in {}; server log:\n{}",
        out.status,
        shots.display(),
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    assert!(stdout.contains("dashboard: every check passed"), "{stdout}");
    for name in [
        "services",
        "snapshot",
        "source",
        "diff",
        "service-after-reset",
    ] {
        let found = std::fs::read_dir(&shots).unwrap().any(|e| {
            let f = e.unwrap().file_name();
            let f = f.to_string_lossy();
            f.starts_with("dashboard-") && f.ends_with(&format!("-{name}.png"))
        });
        assert!(found, "no screenshot of {name} in {}", shots.display());
    }
}
