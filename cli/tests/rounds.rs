//! Rounds and sessions with real parts: replicas of the example service built by `livecov
//! build`, a real `livecov server` (on SQLite, and on PostgreSQL when `LIVECOV_TEST_POSTGRES`
//! is set) killed with SIGKILL at random moments during resets and session starts, and
//! overlapping sessions checked block by block against what the replicas' own agents count.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use livecov_testkit::LiveServer;

const LIVECOV: &str = env!("CARGO_BIN_EXE_livecov");
const AUTH: &[&str] = &["Authorization: Bearer t0ken"];

/// Counts by block (`file:start,end`), blocks with a count only.
type Counts = BTreeMap<String, u64>;

/// The example built by `livecov build --mode MODE`, once per mode.
fn greeter(mode: &str) -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let bin = dir.join(format!("greeter-{mode}"));
    build_example(LIVECOV, &bin, &dir.join("cache"), mode);
    bin
}

fn start_server(port: u16, url: &str, log: &Path) -> LiveServer {
    let args = ["--database-url", url, "--instance-ttl", "60s"];
    LiveServer::start_on(port, Path::new(LIVECOV), &args, &[], log).unwrap()
}

/// A replica of `service` registered with the server on `server`, its agent on a known port
/// and readable with the token.
struct Replica {
    _svc: Service,
    pid: u32,
    app: u16,
    agent: u16,
}

fn replica(bin: &Path, server: u16, service: &str) -> Replica {
    let (app, agent) = (free_port(), free_port());
    let child = Command::new(bin)
        .env("ADDR", format!("127.0.0.1:{app}"))
        .env("LIVECOV_SERVER", format!("http://127.0.0.1:{server}"))
        .env("LIVECOV_SERVICE", service)
        .env("LIVECOV_AGENT_ADDR", format!("127.0.0.1:{agent}"))
        .env("LIVECOV_TOKEN", "t0ken")
        .env("LIVECOV_HEARTBEAT", "200ms")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_for(app, "/healthz");
    wait_for_with(agent, "/livecov/v1/profile", AUTH);
    Replica {
        _svc: Service(child),
        pid,
        app,
        agent,
    }
}

impl Replica {
    /// What the replica's own agent counts since it started.
    fn counts(&self) -> Counts {
        let (status, body) = http_with("GET", self.agent, "/livecov/v1/profile", AUTH).unwrap();
        assert_eq!(status, 200);
        parse(&String::from_utf8(body).unwrap())
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

/// A coverprofile's counts by block.
fn parse(profile: &str) -> Counts {
    let mut out = Counts::new();
    for line in profile.lines().skip(1) {
        let mut parts = line.rsplitn(3, ' ');
        let count: u64 = parts.next().unwrap().parse().unwrap();
        let block = parts.nth(1).unwrap().to_string();
        if count > 0 {
            *out.entry(block).or_default() += count;
        }
    }
    out
}

fn add(a: &mut Counts, b: &Counts) {
    for (k, v) in b {
        *a.entry(k.clone()).or_default() += v;
    }
}

/// `later - earlier`, blocks whose count grew only.
fn delta(later: &Counts, earlier: &Counts) -> Counts {
    later
        .iter()
        .filter_map(|(k, &v)| {
            let d = v - earlier.get(k).copied().unwrap_or(0);
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

fn total(replicas: &[&Replica]) -> Counts {
    let mut out = Counts::new();
    for r in replicas {
        add(&mut out, &r.counts());
    }
    out
}

/// A snapshot's counts in `view`.
fn snapshot_counts(port: u16, id: &serde_json::Value, view: &str) -> Counts {
    let path = format!("/api/v1/snapshots/{id}/profile?format=go&view={view}");
    let (status, body) = http("GET", port, &path).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    parse(&String::from_utf8(body).unwrap())
}

fn post(port: u16, path: &str, body: &str) -> (u16, serde_json::Value) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"])
        .args(["-H", "Content-Type: application/json", "-d", body])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

fn get_json(port: u16, path: &str) -> serde_json::Value {
    let (status, body) = http("GET", port, path).unwrap();
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn wait_live(port: u16, service: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, body)) = http("GET", port, &format!("/api/v1/services/{service}")) {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if v["live_instances"] == n {
                return;
            }
        }
        assert!(Instant::now() < deadline, "never {n} live instances");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A small deterministic generator, seeded from the clock (the seed is printed).
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        eprintln!("seed {seed}");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const REQUESTS: [&str; 6] = [
    "/hello?name=a",
    "/hello?name=b&lang=fr",
    "/hello?lang=de",
    "/calc?op=add&a=1&b=2",
    "/calc?op=div&a=1&b=0",
    "/calc?a=x",
];

fn drive(rng: &mut Rng, replicas: &[&Replica], n: usize) {
    for _ in 0..n {
        let r = replicas[rng.below(replicas.len() as u64) as usize];
        let path = REQUESTS[rng.below(REQUESTS.len() as u64) as usize];
        let (status, _) = http("GET", r.app, path).unwrap();
        assert!(status == 200 || status == 400, "{path}: {status}");
    }
}

#[test]
fn a_server_killed_during_resets_and_session_starts_loses_no_count() {
    let bin = greeter("count");
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new();
    for (kind, url) in stores(tmp.path()) {
        eprintln!("== on {kind}");
        kills(&bin, &url, tmp.path(), &mut rng);
    }
}

fn kills(bin: &Path, url: &str, tmp: &Path, rng: &mut Rng) {
    const RUNS: usize = 20;
    let port = free_port();
    let log = tmp.join("server.log");
    let mut server = start_server(port, url, &log);
    let (r1, r2) = (replica(bin, port, "greeter"), replica(bin, port, "greeter"));
    wait_live(port, "greeter", 2);
    for run in 0..RUNS {
        drive(rng, &[&r1, &r2], 5);
        // One replica stalls, so that the operation is still under way when the server dies.
        r2.signal("-STOP");
        let path = if run % 2 == 0 {
            "/api/v1/services/greeter/reset".to_string()
        } else {
            "/api/v1/services/greeter/sessions".to_string()
        };
        let body = format!("{{\"name\": \"s{run}\"}}");
        let op = std::thread::spawn(move || post(port, &path, &body));
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        server.kill();
        let _ = op.join();
        r2.signal("-CONT");
        server = start_server(port, url, &log);
        // The next snapshot finishes what the killed server left pending first.
        let (status, s) = post(port, "/api/v1/services/greeter/snapshots", "{}");
        assert_eq!(status, 201, "{s}\n{}", server.log_tail());
        let health = get_json(port, "/healthz");
        assert_eq!(health["pending_boundaries"], 0, "{health}");
    }
    wait_live(port, "greeter", 2);
    // The server finishes what it left pending, in the background or before the next
    // operation; a snapshot is one.
    drive(rng, &[&r1, &r2], 5);
    let (status, s) = post(port, "/api/v1/services/greeter/snapshots", "{}");
    assert_eq!(status, 201, "{s}\n{}", server.log_tail());
    let health = get_json(port, "/healthz");
    assert_eq!(health["pending_boundaries"], 0, "{health}");

    // Every count the replicas ever made is in the snapshot's deploy view.
    let ever = total(&[&r1, &r2]);
    assert_eq!(snapshot_counts(port, &s["id"], "deploy"), ever);
    // And the rounds split them without loss or overlap: the rounds the resets ended and the
    // round that runs add up to everything.
    let list = get_json(port, "/api/v1/services/greeter/snapshots?limit=1000");
    let mut rounds = Counts::new();
    let mut resets = 0;
    for snap in list["snapshots"].as_array().unwrap() {
        if snap["kind"] == "reset" {
            resets += 1;
            add(&mut rounds, &snapshot_counts(port, &snap["id"], "window"));
        }
    }
    add(&mut rounds, &snapshot_counts(port, &s["id"], "window"));
    assert_eq!(rounds, ever, "{resets} resets");
    eprintln!("{resets} resets stored of {} tried", RUNS.div_ceil(2));
    assert!(
        resets > 0,
        "no reset got as far as its boundary: kill later"
    );
    server.kill();
}

#[test]
fn overlapping_sessions_hold_exactly_what_ran_in_them() {
    let (count_bin, set_bin) = (greeter("count"), greeter("set"));
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new();
    for (kind, url) in stores(tmp.path()) {
        eprintln!("== on {kind}");
        let port = free_port();
        let server = start_server(port, &url, &tmp.path().join("server.log"));
        // The same requests go to a count-mode service and a set-mode one: the count-mode
        // agents say exactly what ran when, and the set-mode windows must hold exactly the
        // blocks that ran.
        let counted = [
            replica(&count_bin, port, "greeter"),
            replica(&count_bin, port, "greeter"),
        ];
        let set = [
            replica(&set_bin, port, "greeter-set"),
            replica(&set_bin, port, "greeter-set"),
        ];
        wait_live(port, "greeter", 2);
        wait_live(port, "greeter-set", 2);
        let both = |rng: &mut Rng, n: usize| {
            for _ in 0..n {
                let i = rng.below(2) as usize;
                let path = REQUESTS[rng.below(REQUESTS.len() as u64) as usize];
                for r in [&counted[i], &set[i]] {
                    http("GET", r.app, path).unwrap();
                }
            }
        };
        let now = || total(&[&counted[0], &counted[1]]);
        let session = |service: &str, action: &str, name: &str| {
            let path = match action {
                "start" => format!("/api/v1/services/{service}/sessions"),
                _ => format!("/api/v1/services/{service}/sessions/{name}/stop"),
            };
            let (status, v) = post(port, &path, &format!("{{\"name\": \"{name}\"}}"));
            assert_eq!(status, 201, "{action} {name}: {v}");
            v
        };
        let start = |name: &str| {
            for service in ["greeter", "greeter-set"] {
                session(service, "start", name);
            }
        };
        let stop = |name: &str| {
            ["greeter", "greeter-set"].map(|service| session(service, "stop", name)["id"].clone())
        };

        both(&mut rng, 4);
        let p0 = now();
        start("A");
        both(&mut rng, 6);
        let p1 = now();
        start("B");
        both(&mut rng, 6);
        let p2 = now();
        let a = stop("A");
        both(&mut rng, 6);
        let p3 = now();
        let b = stop("B");
        both(&mut rng, 3);

        for (ids, want, name) in [(a, delta(&p2, &p0), "A"), (b, delta(&p3, &p1), "B")] {
            assert_eq!(
                snapshot_counts(port, &ids[0], "window"),
                want,
                "session {name}, count"
            );
            let blocks: Counts = want.keys().map(|k| (k.clone(), 1)).collect();
            assert_eq!(
                snapshot_counts(port, &ids[1], "window"),
                blocks,
                "session {name}, set"
            );
        }
        // The CLI lists them, stopped, with their snapshots.
        let out = Command::new(LIVECOV)
            .args([
                "session",
                "list",
                "greeter",
                "--server",
                &format!("http://127.0.0.1:{port}"),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("NAME  STATE"), "{text}");
        assert_eq!(text.matches("stopped").count(), 2, "{text}");
        server.kill();
    }
}
