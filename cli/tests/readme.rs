//! README.md, followed to the letter: its first set-up command runs the server, and its
//! walk-through runs exactly as written, on a fresh store (SQLite, then PostgreSQL when
//! `LIVECOV_TEST_POSTGRES` is set; the store is given to the server through `DATABASE_URL`, as
//! a user deploying with PostgreSQL would). What the walk-through promises is checked; then the
//! server is stopped, started again with the same command, and still has every snapshot.
//!
//! The first set-up command builds livecov in release mode (once; minutes on a cold machine).
//! The walk-through uses fixed ports (7777, 8081, 8082), as the README does.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `sh` code blocks of `text`, in order.
fn sh_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```sh\n") {
        let body = &rest[start + 6..];
        let end = body.find("```").expect("a closed code block");
        out.push(body[..end].to_string());
        rest = &body[end + 3..];
    }
    out
}

/// (the server command, the walk-through script) from the README.
fn readme() -> (String, String) {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let setup = &text[text.find("## Set up").expect("a Set up section")..];
    let server = sh_blocks(setup)[0].trim().to_string();
    assert!(server.ends_with("-- server"), "{server}");
    let begin = text.find("<!-- walkthrough:begin -->").unwrap();
    let end = text.find("<!-- walkthrough:end -->").unwrap();
    let walk = sh_blocks(&text[begin..end]).concat();
    (server, walk)
}

/// A shell command in a process group of its own, so that it and everything it starts in
/// the background can be stopped together.
struct Group(Child);

impl Group {
    fn spawn(script: &str, db: &str, out: Stdio, err: Stdio) -> Group {
        use std::os::unix::process::CommandExt;
        let child = Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(root())
            .env("DATABASE_URL", db)
            .env_remove("LIVECOV_SERVER")
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap();
        Group(child)
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn start_server(command: &str, db: &str, log: &Path) -> Group {
    assert!(
        std::net::TcpListener::bind("127.0.0.1:7777").is_ok(),
        "port 7777 is taken: the README's server needs it (stop what runs there)"
    );
    let log_file = std::fs::File::create(log).unwrap();
    let mut server = Group::spawn(command, db, Stdio::null(), Stdio::from(log_file));
    // The first run builds livecov in release mode.
    let deadline = Instant::now() + Duration::from_secs(1500);
    loop {
        let up = matches!(common::http("GET", 7777, "/healthz"), Ok((200, _)));
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!(
                "`{command}` exited ({status}) before serving:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if up {
            return server;
        }
        assert!(Instant::now() < deadline, "`{command}` never served");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_readme_walkthrough_works_as_written() {
    let (server_cmd, walk) = readme();
    let tmp = tempfile::tempdir().unwrap();
    let stores = common::stores(tmp.path());
    for (kind, db) in stores {
        eprintln!("== README on {kind}");
        let log = tmp.path().join(format!("server-{kind}.log"));
        let mut server = start_server(&server_cmd, &db, &log);
        let mut walkthrough = Group::spawn(&walk, &db, Stdio::piped(), Stdio::piped());
        let mut stderr = walkthrough.0.stderr.take().unwrap();
        let err = std::thread::spawn(move || {
            let mut err = String::new();
            stderr.read_to_string(&mut err).unwrap();
            err
        });
        let mut out = String::new();
        walkthrough
            .0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let err = err.join().unwrap();
        let status = walkthrough.0.wait().unwrap();
        assert!(
            status.success(),
            "the walk-through failed ({status}):\n{out}\n{err}"
        );

        // What the README says each step shows.
        let has = |what: &str| assert!(out.contains(what), "{what:?} not in:\n{out}\n{err}");
        has("\ngreeter  2     2 ");
        has("Bonjour, qa!\n");
        has("\"id\":1,");
        has("\"instances_ok\":2,");
        has("snapshot 2 of greeter (reset: a new round began): ");
        has("5\n");
        has("snapshot 3 of greeter: ");
        has("\n  measures this round, since ");
        has("snapshot 1 → 3: ");
        has("\n+ example.com/greeter/main.go:");
        has(" calc\n");
        has("\ntotal:");
        let html = std::fs::read_to_string(root().join("examples/greeter/round-2.html")).unwrap();
        assert!(html.contains("<html"), "round-2.html is not HTML");

        // Stopped and started again: every snapshot is still there.
        server.stop();
        let mut server = start_server(&server_cmd, &db, &log);
        let list = Command::new(root().join("target/release/livecov"))
            .args(["snapshots", "greeter", "--json"])
            .output()
            .unwrap();
        assert!(list.status.success());
        let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
        let ids: Vec<i64> = list["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [3, 2, 1], "{list}");
        assert_eq!(list["snapshots"][0]["label"], "round-2");
        server.stop();
    }
}
