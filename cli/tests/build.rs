//! `livecov build` end to end: the example service built with counters and the agent, run as a
//! real process, hit over real HTTP, its coverage read back from the agent.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::*;

fn tree_state(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

fn build(out: &Path, cache: &Path, mode: &str) {
    build_example(env!("CARGO_BIN_EXE_livecov"), out, cache, mode);
}

/// Decodes the agent's counters format (docs/COUNTERS.md) into one vector per file.
fn decode_counters(mut b: &[u8]) -> (String, u8, Vec<Vec<u64>>) {
    fn uvarint(b: &mut &[u8]) -> u64 {
        let (mut x, mut shift) = (0u64, 0);
        loop {
            let byte = b[0];
            *b = &b[1..];
            x |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return x;
            }
            shift += 7;
        }
    }
    assert_eq!(&b[..4], b"LCC1");
    b = &b[4..];
    let n = uvarint(&mut b) as usize;
    let build = String::from_utf8(b[..n].to_vec()).unwrap();
    b = &b[n..];
    let mode = b[0];
    b = &b[1..];
    let files = uvarint(&mut b);
    let mut out = Vec::new();
    for _ in 0..files {
        let n = uvarint(&mut b) as usize;
        let mut counters = Vec::with_capacity(n);
        while counters.len() < n {
            let zeros = uvarint(&mut b);
            counters.extend(std::iter::repeat_n(0, zeros as usize));
            let k = uvarint(&mut b);
            for _ in 0..k {
                counters.push(uvarint(&mut b));
            }
        }
        out.push(counters);
    }
    assert!(b.is_empty(), "trailing bytes");
    (build, mode, out)
}

/// Lines of a coverprofile for blocks starting on `line`.
fn blocks_on<'p>(profile: &'p str, line: &str) -> Vec<&'p str> {
    profile
        .lines()
        .filter(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|p| p.starts_with(&format!("{line}.")))
        })
        .collect()
}

#[test]
fn built_service_serves_its_live_coverage() {
    let tmp = tempfile::tempdir().unwrap();
    let (bin, cache) = (tmp.path().join("greeter"), tmp.path().join("cache"));
    let before = tree_state(Path::new(EXAMPLE));
    build(&bin, &cache, "count");
    assert_eq!(
        before,
        tree_state(Path::new(EXAMPLE)),
        "the user's tree is untouched"
    );

    let (app, agent) = (free_port(), free_port());
    let _svc = Service(
        Command::new(&bin)
            .env("ADDR", format!("127.0.0.1:{app}"))
            .env("LIVECOV_AGENT_ADDR", format!("127.0.0.1:{agent}"))
            .env("LIVECOV_TOKEN", "t0ken")
            .env_remove("LIVECOV_SERVER")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // People who read an agent directly give it LIVECOV_TOKEN.
    const AUTH: &[&str] = &["Authorization: Bearer t0ken"];
    let http = |method: &str, port: u16, path: &str| {
        http_with(method, port, path, if port == agent { AUTH } else { &[] })
    };
    wait_for(app, "/healthz");
    wait_for_with(agent, "/livecov/v1/profile", AUTH);
    let (status, body) = http("GET", app, "/hello?name=qa&lang=fr").unwrap();
    assert_eq!(
        (status, body.as_slice()),
        (200, b"Bonjour, qa!\n".as_slice())
    );

    let (status, profile) = http("GET", agent, "/livecov/v1/profile").unwrap();
    assert_eq!(status, 200);
    let profile = String::from_utf8(profile).unwrap();
    assert!(profile.starts_with("mode: count\n"), "{profile}");
    // hello's French case ran once, German not; calc never ran. Up to Go 1.26 a case's block
    // starts after its colon (lines 37, 39) and calc's first block after its `{` (47); from
    // Go 1.27 blocks start at their first statement, a line later.
    let line = |go120: u32| by_go(&go120.to_string(), &(go120 + 1).to_string()).to_string();
    let count = |l: &str| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap();
    let fr = blocks_on(&profile, &line(37));
    assert_eq!(fr.len(), 1, "{profile}");
    assert_eq!(count(fr[0]), 1);
    assert_eq!(count(blocks_on(&profile, &line(39))[0]), 0);
    let calc = blocks_on(&profile, &line(47));
    assert!(
        !calc.is_empty() && calc.iter().all(|l| count(l) == 0),
        "{profile}"
    );
    assert!(profile.contains("example.com/greeter/main.go:"));

    // go tool cover reads it.
    let file = tmp.path().join("live.out");
    std::fs::write(&file, &profile).unwrap();
    let func = cover_func(&file);
    assert!(func.contains("hello") && func.contains("calc"), "{func}");

    // A boundary answers the counts at that moment and destroys none; asked again with the
    // same token it answers the same.
    let (status, at) = http("POST", agent, "/livecov/v1/boundary?token=r1").unwrap();
    assert_eq!(status, 200);
    let (build_id, mode, files) = decode_counters(&at);
    assert_eq!((build_id.len(), mode), (64, 1));
    assert!(
        files.iter().flatten().sum::<u64>() > 0,
        "the boundary answered the counts"
    );
    http("GET", app, "/hello?name=qa&lang=fr").unwrap();
    let (_, now) = http("GET", agent, "/livecov/v1/counters").unwrap();
    let (same_build, _, after) = decode_counters(&now);
    assert_eq!(same_build, build_id);
    assert_eq!(after.len(), files.len());
    // Counts since the start: none lower than at the boundary, the request after it added.
    let flat = |f: &Vec<Vec<u64>>| f.iter().flatten().copied().collect::<Vec<_>>();
    assert!(flat(&after).iter().zip(flat(&files)).all(|(a, b)| *a >= b));
    assert!(flat(&after).iter().sum::<u64>() > flat(&files).iter().sum::<u64>());
    let (_, again) = http("POST", agent, "/livecov/v1/boundary?token=r1").unwrap();
    assert_eq!(again, at);
    // A browser on another site cannot draw one.
    let (status, _) = http_with(
        "POST",
        agent,
        "/livecov/v1/boundary?token=r2",
        &[AUTH[0], "Origin: http://evil.example"],
    )
    .unwrap();
    assert_eq!(status, 403);
}

#[test]
fn second_build_comes_from_the_cache_and_refusals_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    build(&tmp.path().join("a"), &cache, "set");
    let entries = |c: &Path| std::fs::read_dir(c.join("files")).unwrap().count();
    let after_first = entries(&cache);
    build(&tmp.path().join("b"), &cache, "set");
    assert_eq!(entries(&cache), after_first, "no file instrumented twice");

    let out = Command::new(env!("CARGO_BIN_EXE_livecov"))
        .args(["build", "--cache-dir"])
        .arg(&cache)
        .args(["--", "-overlay", "x.json", "."])
        .current_dir(EXAMPLE)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("-overlay cannot be combined with livecov"),
        "{err}"
    );
}

/// The example built once with livecov (set mode) and once with plain `go build`, shared by
/// the host-safety tests.
fn binaries() -> &'static (PathBuf, PathBuf) {
    static BINS: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    BINS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let (inst, plain) = (dir.join("greeter-livecov"), dir.join("greeter-plain"));
        build(&inst, &dir.join("cache"), "set");
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&plain)
            .arg(".")
            .current_dir(EXAMPLE)
            .status()
            .unwrap();
        assert!(status.success());
        (inst, plain)
    })
}

/// Starts `bin` with `env`, checks that it serves its own traffic, stops it with SIGTERM and
/// returns what it wrote to stdout and how it exited.
fn serve_and_stop(bin: &Path, env: &[(&str, String)]) -> (Vec<u8>, std::process::ExitStatus) {
    let app = free_port();
    let mut cmd = Command::new(bin);
    cmd.env("ADDR", format!("127.0.0.1:{app}"))
        .env_remove("LIVECOV_SERVER")
        .env_remove("LIVECOV_AGENT_ADDR")
        .env_remove("LIVECOV_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let child = cmd.spawn().unwrap();
    wait_for(app, "/healthz");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "start-up took {:?}",
        started.elapsed()
    );
    let (status, body) = http("GET", app, "/hello?name=x").unwrap();
    assert_eq!((status, body.as_slice()), (200, b"Hello, x!\n".as_slice()));
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = child.wait_with_output().unwrap();
    (out.stdout, out.status)
}

/// A listener that accepts connections and then does `answer` with each.
fn fake_server(answer: fn(TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || answer(conn));
        }
    });
    port
}

#[test]
fn the_host_is_unharmed_whatever_the_server_does() {
    use std::os::unix::process::ExitStatusExt;
    let (inst, plain) = binaries();
    let (plain_out, plain_status) = serve_and_stop(plain, &[]);
    assert_eq!(
        plain_status.signal(),
        Some(15),
        "uninstrumented: killed by SIGTERM"
    );

    let silent = fake_server(|conn| {
        std::thread::sleep(Duration::from_secs(60));
        drop(conn);
    });
    let garbage = fake_server(|mut conn| {
        let _ = conn.write_all(b"\x00\xffnot http at all\r\n\r\n");
    });
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let scenarios: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no server configured", vec![]),
        (
            "server absent",
            vec![(
                "LIVECOV_SERVER",
                format!("http://127.0.0.1:{}", free_port()),
            )],
        ),
        (
            "server accepts and never answers",
            vec![
                ("LIVECOV_SERVER", format!("http://127.0.0.1:{silent}")),
                ("LIVECOV_HEARTBEAT", "50ms".into()),
            ],
        ),
        (
            "server answers garbage",
            vec![
                ("LIVECOV_SERVER", format!("http://127.0.0.1:{garbage}")),
                ("LIVECOV_HEARTBEAT", "50ms".into()),
            ],
        ),
        (
            "agent port taken",
            vec![("LIVECOV_AGENT_ADDR", format!("127.0.0.1:{taken_port}"))],
        ),
        (
            "server URL malformed",
            vec![("LIVECOV_SERVER", "::not a url".into())],
        ),
    ];
    for (name, env) in scenarios {
        let (out, status) = serve_and_stop(inst, &env);
        assert_eq!(
            out, plain_out,
            "{name}: stdout differs from the plain build"
        );
        assert_eq!(
            status.signal(),
            plain_status.signal(),
            "{name}: exits as the plain build does"
        );
    }
    drop(taken);
}

/// The example built with livecov, serving on a free port with its agent on another and no
/// server to register with, `LIVECOV_TOKEN` set to `token` (or unset); once it serves.
fn serve_without_server(token: Option<&str>) -> (Service, u16, u16) {
    let (inst, _) = binaries();
    let (app, agent) = (free_port(), free_port());
    let mut cmd = Command::new(inst);
    cmd.env("ADDR", format!("127.0.0.1:{app}"))
        .env("LIVECOV_AGENT_ADDR", format!("127.0.0.1:{agent}"))
        .env_remove("LIVECOV_TOKEN")
        .env_remove("LIVECOV_SERVER")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(t) = token {
        cmd.env("LIVECOV_TOKEN", t);
    }
    let svc = Service(cmd.spawn().unwrap());
    wait_for(app, "/healthz");
    (svc, app, agent)
}

#[test]
fn a_token_guards_every_agent_endpoint() {
    let (_svc, _, agent) = serve_without_server(Some("s3cret"));
    let get = |path: &str, token: Option<&str>| {
        let mut s = TcpStream::connect(("127.0.0.1", agent)).unwrap();
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        write!(s, "GET {path} HTTP/1.0\r\n{auth}\r\n").unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let head = String::from_utf8_lossy(&buf[..buf.len().min(16)]).into_owned();
        head.split(' ').nth(1).unwrap_or("").to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while get("/livecov/v1/profile", Some("s3cret")) != "200" {
        assert!(Instant::now() < deadline, "agent never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    for path in [
        "/livecov/v1/profile",
        "/livecov/v1/counters",
        "/livecov/v1/meta",
    ] {
        assert_eq!(get(path, None), "401", "{path} without a token");
        assert_eq!(get(path, Some("wrong")), "401", "{path} with a wrong token");
        assert_eq!(get(path, Some("s3cret")), "200", "{path} with the token");
    }
    let mut s = TcpStream::connect(("127.0.0.1", agent)).unwrap();
    write!(
        s,
        "POST /livecov/v1/boundary?token=x HTTP/1.0\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    assert!(
        buf.starts_with("HTTP/1.0 401"),
        "boundary without a token: {buf}"
    );
}

#[test]
fn an_agent_without_configuration_answers_no_stranger() {
    let (_svc, app, agent) = serve_without_server(None);
    http("GET", app, "/hello?name=x").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while http("GET", agent, "/livecov/v1/meta").is_err() {
        assert!(Instant::now() < deadline, "the agent never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    for (method, path) in [
        ("GET", "/livecov/v1/profile"),
        ("GET", "/livecov/v1/counters"),
        ("GET", "/livecov/v1/meta"),
        ("POST", "/livecov/v1/boundary?token=x"),
        ("POST", "/livecov/v1/reset"),
        ("GET", "/nothing"),
    ] {
        let (status, _) = http(method, agent, path).unwrap();
        assert_eq!(status, 401, "{method} {path}");
        let (status, _) = http_with(method, agent, path, &["Authorization: Bearer guess"]).unwrap();
        assert_eq!(status, 401, "{method} {path} with a guessed token");
    }
}

#[test]
fn a_process_that_returns_from_main_leaves_its_counters_in_livecov_dir() {
    let program = concat!(env!("CARGO_MANIFEST_DIR"), "/../instrumenter/testdata/run");
    let tmp = tempfile::tempdir().unwrap();
    let (bin, dir) = (tmp.path().join("run"), tmp.path().join("coverage"));
    let status = Command::new(env!("CARGO_BIN_EXE_livecov"))
        .args(["build", "--mode", "count", "--cache-dir"])
        .arg(tmp.path().join("cache"))
        .args(["--", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(program)
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new(&bin)
        .env("LIVECOV_DIR", &dir)
        .env("LIVECOV_AGENT_ADDR", "off")
        .env("LIVECOV_SERVICE", "run")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"done\n", "the agent writes nothing to stdout");

    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    let lcc = names
        .iter()
        .find(|n| n.starts_with("run-") && n.ends_with(".lcc"))
        .unwrap_or_else(|| panic!("no counters file in {names:?}"));
    let (build_id, mode, files) = decode_counters(&std::fs::read(dir.join(lcc)).unwrap());
    assert!(
        names.contains(&format!("{build_id}.meta.json.gz")),
        "{names:?}"
    );
    assert_eq!(mode, 1);
    // classify ran 23 times; its entry block is counted in full by the final flush.
    assert!(files.iter().flatten().any(|&c| c == 23), "{files:?}");
}

/// Writes files (path relative to `dir`, contents), making their directories.
fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// Builds `dir` with livecov (count mode) and returns the profile its agent serves while the
/// program sleeps, and the program's stdout.
fn build_run_profile(dir: &Path, livecov_args: &[&str], go_args: &[&str]) -> (String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("prog");
    let status = Command::new(env!("CARGO_BIN_EXE_livecov"))
        .args(["build", "--mode", "count", "--cache-dir"])
        .arg(tmp.path().join("cache"))
        .args(livecov_args)
        .arg("--")
        .args(go_args)
        .arg("-o")
        .arg(&bin)
        .arg(".")
        .current_dir(dir)
        .env_remove("GOFLAGS")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "livecov build {livecov_args:?} -- {go_args:?}"
    );
    let agent = free_port();
    let child = Command::new(&bin)
        .env("LIVECOV_AGENT_ADDR", format!("127.0.0.1:{agent}"))
        .env("LIVECOV_TOKEN", "t0ken")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let auth = ["Authorization: Bearer t0ken"];
    wait_for_with(agent, "/livecov/v1/profile", &auth);
    let (_, profile) = http_with("GET", agent, "/livecov/v1/profile", &auth).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8(profile).unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

const SLEEPER: &str = "package main\n\nimport (\n\t\"fmt\"\n\t\"time\"\n\n\t\"github.com/google/uuid\"\n)\n\nfunc main() {\n\tfmt.Println(len(uuid.NewString()))\n\ttime.Sleep(2 * time.Second)\n}\n";

#[test]
fn coverpkg_instruments_a_dependency_from_the_module_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_tree(
        dir,
        &[(
            "go.mod",
            "module example.com/dep\n\ngo 1.22\n\nrequire github.com/google/uuid v1.6.0\n",
        )],
    );
    std::fs::write(dir.join("main.go"), SLEEPER).unwrap();
    let tidy = Command::new("go")
        .args(["mod", "download", "github.com/google/uuid"])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(tidy.success());
    let status = Command::new("go")
        .args(["mod", "tidy"])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success());
    let before = tree_state(dir);
    let (profile, stdout) = build_run_profile(dir, &["--coverpkg", "github.com/google/uuid"], &[]);
    assert_eq!(stdout, "36\n");
    assert_eq!(before, tree_state(dir), "go.mod and go.sum untouched");
    assert!(
        covered_in(&profile, "github.com/google/uuid/") > 3,
        "{profile}"
    );
    assert_eq!(
        covered_in(&profile, "example.com/dep/main.go:"),
        1,
        "{profile}"
    );
    // Without --coverpkg, the dependency is not instrumented.
    let (profile, _) = build_run_profile(dir, &[], &[]);
    assert!(!profile.contains("github.com/google/uuid/"), "{profile}");

    // Vendored: the same build from vendor/, which stays as it was.
    let vendor = Command::new("go")
        .args(["mod", "vendor"])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(vendor.success());
    let vendored = dir.join("vendor/github.com/google/uuid");
    let before = (tree_state(dir), tree_state(&vendored));
    let (profile, stdout) = build_run_profile(dir, &["--coverpkg", "github.com/google/uuid"], &[]);
    assert_eq!(stdout, "36\n");
    assert_eq!(before, (tree_state(dir), tree_state(&vendored)));
    assert!(
        covered_in(&profile, "github.com/google/uuid/") > 3,
        "{profile}"
    );
    let test = Command::new(env!("CARGO_BIN_EXE_livecov"))
        .args(["test", "--cache-dir"])
        .arg(tmp.path().join("cache"))
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(test.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&test.stderr).contains("does not support vendored modules"));
}

fn covered_in(profile: &str, prefix: &str) -> usize {
    profile
        .lines()
        .filter(|l| l.starts_with(prefix) && !l.ends_with(" 0"))
        .count()
}

#[test]
fn workspaces_build_and_their_go_work_is_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_tree(
        dir,
        &[
            ("go.work", "go 1.22\n\nuse (\n\t./app\n\t./lib\n)\n"),
            ("lib/go.mod", "module example.com/lib\n\ngo 1.22\n"),
            (
                "lib/lib.go",
                "package lib\n\nfunc Twice(x int) int {\n\tif x > 0 {\n\t\treturn 2 * x\n\t}\n\treturn 0\n}\n",
            ),
            (
                "app/go.mod",
                "module example.com/app\n\ngo 1.22\n\nrequire example.com/lib v0.0.0\n",
            ),
            (
                "app/main.go",
                "package main\n\nimport (\n\t\"fmt\"\n\t\"time\"\n\n\t\"example.com/lib\"\n)\n\nfunc main() {\n\tfmt.Println(lib.Twice(21))\n\ttime.Sleep(2 * time.Second)\n}\n",
            ),
        ],
    );
    let (work_before, app_before) = (tree_state(dir), tree_state(&dir.join("app")));
    let (profile, stdout) = build_run_profile(&dir.join("app"), &[], &[]);
    assert_eq!(stdout, "42\n");
    assert_eq!(work_before, tree_state(dir));
    assert_eq!(app_before, tree_state(&dir.join("app")));
    // Both workspace modules are main modules: both are instrumented.
    assert!(
        profile.contains(&format!(
            "example.com/lib/lib.go:{} 1 1",
            by_go("4.11,6.3", "5.3,6.1")
        )),
        "{profile}"
    );
    assert!(profile.contains("example.com/app/main.go:"), "{profile}");
}

#[test]
fn cgo_build_tags_and_trimpath_build_as_with_go_build() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_tree(
        dir,
        &[
            ("go.mod", "module example.com/cg\n\ngo 1.22\n"),
            (
                "main.go",
                "package main\n\nimport (\n\t\"fmt\"\n\t\"time\"\n)\n\nfunc main() {\n\tfmt.Println(add(2, 3), flavor())\n\ttime.Sleep(2 * time.Second)\n}\n",
            ),
            (
                "add.go",
                "package main\n\n/*\nstatic int c_add(int a, int b) { return a + b; }\n*/\nimport \"C\"\n\nfunc add(a, b int) int {\n\tif a < 0 {\n\t\treturn 0\n\t}\n\treturn int(C.c_add(C.int(a), C.int(b)))\n}\n",
            ),
            (
                "plain.go",
                "//go:build !extra\n\npackage main\n\nfunc flavor() string { return \"plain\" }\n",
            ),
            (
                "extra.go",
                "//go:build extra\n\npackage main\n\nfunc flavor() string { return \"extra\" }\n",
            ),
        ],
    );

    let (profile, stdout) = build_run_profile(dir, &[], &[]);
    assert_eq!(stdout, "5 plain\n");
    assert!(
        profile.contains(&format!(
            "example.com/cg/add.go:{} 1 1",
            by_go("8.24,9.11", "9.2,9.11")
        )),
        "{profile}"
    );
    assert!(profile.contains("example.com/cg/plain.go:"), "{profile}");
    assert!(!profile.contains("extra.go"), "{profile}");

    let (profile, stdout) = build_run_profile(dir, &[], &["-tags", "extra", "-trimpath"]);
    assert_eq!(stdout, "5 extra\n");
    assert!(
        profile.contains(&format!(
            "example.com/cg/extra.go:{} 1 1",
            by_go("5.22,5.40", "5.24,5.40")
        )),
        "{profile}"
    );
    assert!(!profile.contains("plain.go"), "{profile}");
}

/// `cmd`'s exit code, stdout and stderr.
fn outcome(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `livecov SUBCOMMAND --mode MODE --cache-dir CACHE -- GO_ARGS`, to run in `dir`.
fn livecov(dir: &Path, subcommand: &str, mode: &str, go_args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_livecov"));
    cmd.args([subcommand, "--mode", mode, "--cache-dir"])
        .arg(dir.join(".cache"))
        .arg("--")
        .args(go_args)
        .current_dir(dir)
        .env_remove("GOFLAGS");
    cmd
}

/// `go GO_ARGS` in `dir`.
fn go(dir: &Path, go_args: &[&str]) -> Command {
    let mut cmd = Command::new("go");
    cmd.args(go_args).current_dir(dir).env_remove("GOFLAGS");
    cmd
}

const MODES: [&str; 3] = ["set", "count", "atomic"];

#[test]
fn compile_errors_name_the_users_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Each error follows a counter on its own line, so its column in the rewritten file is not
    // the user's.
    write_tree(
        dir,
        &[
            ("go.mod", "module example.com/m\n\ngo 1.22\n"),
            (
                "main.go",
                "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tx := len(fmt.Sprint(1)) > 0\n\tif x { y := \"a\" + 1; _ = y }\n\tif !x { fmt.Println(1) } else { fmt.Println(undefined) }\n\tswitch { case x: fmt.Println(x.missing) }\n}\n",
            ),
        ],
    );
    let plain = outcome(&mut go(dir, &["build", "-o", "prog", "."]));
    assert_eq!(plain.0, Some(1));
    for want in [
        "./main.go:7:14: invalid operation",
        "./main.go:8:46: undefined: undefined",
        "./main.go:9:33: x.missing undefined",
    ] {
        assert!(plain.2.contains(want), "{want} not in:\n{}", plain.2);
    }
    for mode in MODES {
        let out = outcome(&mut livecov(dir, "build", mode, &["-o", "prog", "."]));
        assert_eq!(out, plain, "{mode}");
    }
}

#[test]
fn syntax_errors_name_the_users_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_tree(
        dir,
        &[
            ("go.mod", "module example.com/m\n\ngo 1.22\n"),
            (
                "main.go",
                "package main\n\nimport \"example.com/m/lib\"\n\nfunc main() { lib.F() }\n",
            ),
            ("lib/lib.go", "package lib\n\nfunc F() {}\n"),
        ],
    );
    // (file, broken source, where go build says it breaks)
    let cases = [
        (
            "main.go",
            "package main\n\nfunc main() {\n\tx := [3]int{1, 2 3}\n\t_ = x\n}\n",
            "./main.go:4:19: ",
        ),
        (
            "lib/lib.go",
            "package lib\n\nfunc F() {\n\tif x := 1; x > 0 { y = := 2 }\n}\n",
            "lib/lib.go:4:25: ",
        ),
    ];
    for (file, src, at) in cases {
        let before = std::fs::read(dir.join(file)).unwrap();
        std::fs::write(dir.join(file), src).unwrap();
        let plain = outcome(&mut go(dir, &["build", "-o", "prog", "."]));
        assert!(
            plain.2.contains(&format!("\n{at}syntax error")),
            "{}",
            plain.2
        );
        let (code, _, err) = outcome(&mut livecov(dir, "build", "set", &["-o", "prog", "."]));
        assert_eq!(code, Some(2));
        assert!(
            err.starts_with(&format!("livecov: {at}syntax error")),
            "{err}"
        );
        std::fs::write(dir.join(file), before).unwrap();
    }
    // From below the module's root, as go says it too.
    std::fs::write(dir.join("main.go"), cases[0].1).unwrap();
    let sub = dir.join("lib");
    let plain = outcome(&mut go(&sub, &["build", "-o", "prog", "example.com/m"]));
    assert!(
        plain.2.contains("\n../main.go:4:19: syntax error"),
        "{}",
        plain.2
    );
    let (_, _, err) = outcome(&mut livecov(&sub, "build", "set", &["-o", "prog", ".."]));
    assert!(
        err.starts_with("livecov: ../main.go:4:19: syntax error"),
        "{err}"
    );
}

/// The `file:line` of each frame of a Go stack trace, in order.
fn frames(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix('\t'))
        .map(|l| l.split(' ').next().unwrap())
        .collect()
}

#[test]
fn panics_name_the_users_file_and_line_with_and_without_trimpath() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_tree(
        dir,
        &[
            ("go.mod", "module example.com/m\n\ngo 1.22\n"),
            (
                "main.go",
                "package main\n\nimport \"os\"\n\n//go:noinline\nfunc boom(n int) int {\n\tif n > 0 { var a []int; return a[n] }\n\treturn 0\n}\n\nfunc main() { if len(os.Args) > 0 { os.Exit(boom(len(os.Args))) } }\n",
            ),
        ],
    );
    let bin = dir.join("prog");
    let run = || {
        let (code, _, err) = outcome(
            Command::new(&bin)
                .env("LIVECOV_AGENT_ADDR", "off")
                .env_remove("LIVECOV_SERVER"),
        );
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.starts_with("panic: runtime error: index out of range"),
            "{err}"
        );
        err
    };
    for (trimpath, file) in [
        (false, format!("{}/main.go", dir.display())),
        (true, "example.com/m/main.go".to_string()),
    ] {
        let mut args = vec!["build", "-o", "prog"];
        if trimpath {
            args.push("-trimpath");
        }
        args.push(".");
        let (code, _, err) = outcome(&mut go(dir, &args));
        assert_eq!(code, Some(0), "{err}");
        let plain = run();
        let want = [format!("{file}:7"), format!("{file}:11")];
        assert_eq!(frames(&plain), want, "plain, trimpath {trimpath}:\n{plain}");
        for mode in MODES {
            let (code, _, err) = outcome(&mut livecov(dir, "build", mode, &args[1..]));
            assert_eq!(code, Some(0), "{err}");
            let inst = run();
            assert_eq!(frames(&inst), want, "{mode}, trimpath {trimpath}:\n{inst}");
        }
    }
}

#[test]
fn vet_findings_of_livecov_test_name_the_users_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // One finding after a counter (main.go), one after the `m.Run()` livecov wraps in the
    // user's TestMain (main_test.go), both on the same line as the insertion.
    write_tree(
        dir,
        &[
            ("go.mod", "module example.com/m\n\ngo 1.22\n"),
            (
                "main.go",
                "package main\n\nimport \"fmt\"\n\nfunc Greet(n int) string {\n\tif n > 0 { return fmt.Sprintf(\"%s\", n) }\n\treturn \"\"\n}\n\nfunc main() { fmt.Println(Greet(1)) }\n",
            ),
            (
                "main_test.go",
                "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"testing\"\n)\n\nfunc TestMain(m *testing.M) { code := m.Run(); fmt.Printf(\"%d\\n\", \"x\"); os.Exit(code) }\n\nfunc TestGreet(t *testing.T) {\n\tif Greet(0) != \"\" {\n\t\tt.Fatal(\"not empty\")\n\t}\n}\n",
            ),
        ],
    );
    let plain = outcome(&mut go(dir, &["test", "."]));
    assert_eq!(plain.0, Some(1));
    for want in [
        "./main.go:6:33: fmt.Sprintf format %s has arg n of wrong type int",
        "./main_test.go:9:60: fmt.Printf format %d has arg \"x\" of wrong type string",
    ] {
        assert!(plain.2.contains(want), "{want} not in:\n{}", plain.2);
    }
    for mode in MODES {
        let out = outcome(&mut livecov(dir, "test", mode, &["."]));
        assert_eq!(out, plain, "{mode}");
    }
}
