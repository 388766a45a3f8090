//! What the end-to-end tests share: ports, a minimal HTTP client, processes that stop with
//! the test.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/greeter");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.0 client: (status, body).
pub fn http(method: &str, port: u16, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    http_with(method, port, path, &[])
}

/// [`http`] with more header lines (`Name: value`).
pub fn http_with(
    method: &str,
    port: u16,
    path: &str,
    headers: &[&str],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut extra = String::new();
    for h in headers {
        extra.push_str(h);
        extra.push_str("\r\n");
    }
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\n{extra}Content-Length: 0\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response");
    let head = String::from_utf8_lossy(&buf[..split]);
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Ok((status, buf[split + 4..].to_vec()))
}

pub fn wait_for(port: u16, path: &str) {
    wait_for_with(port, path, &[])
}

/// [`wait_for`] with more header lines, such as an agent's `Authorization`.
pub fn wait_for_with(port: u16, path: &str, headers: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok((200, _)) = http_with("GET", port, path, headers) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing answered on port {port}{path}");
}

pub struct Service(pub Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `cmd`, which must succeed; its standard output.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `go tool cover -func PROFILE`, run in the example's module; its output.
pub fn cover_func(profile: &Path) -> String {
    run_ok(
        Command::new("go")
            .args(["tool", "cover", "-func"])
            .arg(profile)
            .current_dir(EXAMPLE),
    )
}

/// A replica of the example built at `bin`, serving on a port of its own (answered) and
/// registering as `greeter` with the server on `server`, with a short heartbeat.
/// Builds the example with `livecov` (the executable at `livecov`) in `mode` into `out`.
pub fn build_example(livecov: &str, out: &Path, cache: &Path, mode: &str) {
    let status = Command::new(livecov)
        .args(["build", "--mode", mode, "--cache-dir"])
        .arg(cache)
        .args(["--", "-o"])
        .arg(out)
        .arg(".")
        .current_dir(EXAMPLE)
        .status()
        .unwrap();
    assert!(status.success(), "livecov build --mode {mode}");
}

pub fn start_replica(bin: &Path, server: u16) -> (Service, u16) {
    let port = free_port();
    let child = Command::new(bin)
        .env("ADDR", format!("127.0.0.1:{port}"))
        .env("LIVECOV_SERVER", format!("http://127.0.0.1:{server}"))
        .env("LIVECOV_SERVICE", "greeter")
        .env("LIVECOV_AGENT_ADDR", "127.0.0.1:0")
        .env("LIVECOV_HEARTBEAT", "200ms")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(port, "/healthz");
    (Service(child), port)
}

/// Of two spellings of a block, the one the Go on PATH writes: `go120` as Go 1.20 to 1.26 cut
/// blocks, `go127` as Go 1.27 does.
pub fn by_go<'a>(go120: &'a str, go127: &'a str) -> &'a str {
    let out = Command::new("go")
        .args(["env", "GOVERSION"])
        .output()
        .expect("go is on PATH");
    let version = String::from_utf8_lossy(&out.stdout);
    match instrumenter::version::rules_for(version.trim()) {
        Ok(instrumenter::Rules::Go127) => go127,
        Ok(instrumenter::Rules::Go120) => go120,
        Err(e) => panic!("the Go on PATH: {e}"),
    }
}

/// The databases to run a test on: SQLite in `tmp`, and PostgreSQL (a fresh database) when
/// `LIVECOV_TEST_POSTGRES` is set.
pub fn stores(tmp: &Path) -> Vec<(&'static str, String)> {
    let mut out = vec![(
        "sqlite",
        format!("sqlite://{}", tmp.join("livecov.db").display()),
    )];
    if let Some(admin) = livecov_testkit::test_postgres() {
        out.push(("postgres", livecov_testkit::fresh_postgres(&admin).unwrap()));
    }
    out
}

/// Runs the `livecov` client command `args` with `--json` against the server on `port`; its
/// answer.
pub fn client_json(port: u16, args: &[&str]) -> serde_json::Value {
    let out = run_ok(
        Command::new(env!("CARGO_BIN_EXE_livecov"))
            .args(args)
            .args(["--json", "--server", &format!("http://127.0.0.1:{port}")]),
    );
    serde_json::from_str(&out).unwrap()
}

/// `GET path` on the server on `port`, which must answer 200 with JSON.
pub fn get_json(port: u16, path: &str) -> serde_json::Value {
    let (status, body) = http("GET", port, path).unwrap();
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// Waits up to 30 seconds for `f` to hold.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "never {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A short Go program for the end-to-end tests: `work(n)` calls `step` n times; `step`'s `if`
/// sends even i one way, odd i the other. It prints `work(n)` for its first argument, then,
/// given a second argument `hang`, waits an hour.
pub const WORK_PROGRAM: &str = r#"package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func work(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += step(i)
	}
	return s
}

func step(i int) int {
	if i%2 == 0 {
		return i
	}
	return 1
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	fmt.Println(work(n))
	if len(os.Args) > 2 && os.Args[2] == "hang" {
		time.Sleep(time.Hour)
	}
}
"#;

/// Builds [`WORK_PROGRAM`], with `extra` files (name, text) beside it, in `dir/short` with
/// `livecov build --mode MODE` and the cache `dir/cache`; the binary, `dir/short-MODE`.
pub fn build_work(dir: &Path, mode: &str, extra: &[(&str, &str)]) -> std::path::PathBuf {
    let src = dir.join("short");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("go.mod"), "module example.com/short\n\ngo 1.22\n").unwrap();
    std::fs::write(src.join("main.go"), WORK_PROGRAM).unwrap();
    for (name, text) in extra {
        std::fs::write(src.join(name), text).unwrap();
    }
    let bin = dir.join(format!("short-{mode}"));
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_livecov"))
            .args(["build", "--mode", mode, "--cache-dir"])
            .arg(dir.join("cache"))
            .args(["--", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(&src),
    );
    bin
}
