//! What the server tests share: a fresh database of each kind, a server on it, HTTP helpers.
//!
//! Every test runs against SQLite and, when `LIVECOV_TEST_POSTGRES` names a PostgreSQL
//! server (`scripts/test.sh` installs and starts one), against PostgreSQL too, each in a
//! database of its own.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use server::sim::{SimAgent, SimBuild};
use server::{Config, Server};

/// Runs each named case (`cases::NAME(&Db)`) as a test of its own, on every database of
/// [`databases`].
#[allow(unused_macros)]
macro_rules! on_every_db {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                for db in databases().await {
                    eprintln!("== {} on {}", stringify!($name), db.kind);
                    cases::$name(&db).await;
                }
            }
        )*
    };
}

pub struct Db {
    pub kind: &'static str,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh SQLite database, and a fresh PostgreSQL one if configured.
pub async fn databases() -> Vec<Db> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![Db {
        kind: "sqlite",
        url: format!("sqlite://{}", dir.path().join("livecov.db").display()),
        _dir: Some(dir),
    }];
    match livecov_testkit::test_postgres() {
        Some(url) => out.push(Db {
            kind: "postgres",
            url: livecov_testkit::fresh_postgres(&url).expect("a fresh PostgreSQL database"),
            _dir: None,
        }),
        None => eprintln!("LIVECOV_TEST_POSTGRES not set: PostgreSQL not tested here"),
    }
    out
}

/// Test defaults: any port, a short pull timeout and TTL.
pub fn config(url: &str) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: url.to_string(),
        pull_timeout: Duration::from_millis(700),
        ..Config::default()
    }
}

pub async fn start(config: Config) -> Server {
    Server::start(config).await.expect("starting the server")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub struct Answer {
    pub status: u16,
    pub json: serde_json::Value,
    pub text: String,
}

/// Sends a request with an optional raw body and bearer token; any answer is returned.
pub async fn call(method: &str, url: String, body: Option<Vec<u8>>, token: Option<&str>) -> Answer {
    let mut req = client().request(method.parse().unwrap(), url);
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(b);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Answer { status, json, text }
}

pub async fn get(server: &Server, path: &str) -> Answer {
    call("GET", format!("http://{}{path}", server.addr), None, None).await
}

pub async fn post(server: &Server, path: &str, body: serde_json::Value) -> Answer {
    call(
        "POST",
        format!("http://{}{path}", server.addr),
        Some(body.to_string().into_bytes()),
        None,
    )
    .await
}

/// Registers `agent` as `instance` of `service`, expecting success.
pub async fn register(server: &Server, agent: &SimAgent, service: &str, instance: &str) {
    let a = post(
        server,
        "/api/v1/agents/register",
        agent.registration(service, instance),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
}

/// Simulated agents of one build, registered as instances `i0`, `i1`, … of `service`.
pub async fn agents(
    server: &Server,
    build: &Arc<SimBuild>,
    service: &str,
    n: usize,
) -> Vec<SimAgent> {
    let mut out = Vec::new();
    for i in 0..n {
        let a = SimAgent::start(build.clone(), None).await;
        register(server, &a, service, &format!("i{i}")).await;
        out.push(a);
    }
    out
}

/// Takes a snapshot over HTTP, expecting it stored; returns its JSON.
pub async fn snapshot(server: &Server, service: &str, query: &str) -> serde_json::Value {
    let a = post(
        server,
        &format!("/api/v1/services/{service}/snapshots{query}"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.json
}

/// The outcome each instance got in a snapshot, by instance id.
pub fn outcomes(snapshot: &serde_json::Value) -> Vec<(String, String)> {
    snapshot["instance_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["instance"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A TCP proxy in front of a database: `cut` drops every connection and refuses new ones
/// until `restore`; the database "goes away" without touching the real server.
pub struct Proxy {
    pub port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    pub async fn start(target: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (tx, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(tx);
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut db) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut db) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            up,
            generation,
        }
    }

    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
