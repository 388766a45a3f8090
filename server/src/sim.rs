//! A simulated agent, for tests and benchmarks: serves a synthetic build's metadata and
//! counters over real HTTP with the epochs and boundaries of the real agent
//! (`agent-go/doc.go`), and misbehaves on request (hangs, garbage, a connection closed
//! mid-answer, an error status). End-to-end tests use real Go binaries instead; this is for
//! faults a real agent never shows and for loads of hundreds of instances.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use instrumenter::{Block, BuildMeta, FileMeta, Func, Mode, Pos};

use crate::lcc;

/// A synthetic build: metadata, its id, and its gzip JSON as an agent serves it.
pub struct SimBuild {
    pub meta: BuildMeta,
    pub id: String,
    pub gz: Vec<u8>,
    pub shape: Vec<u32>,
}

impl SimBuild {
    /// `files` files of `blocks` blocks each (two statements per block, one function per ten
    /// blocks); `seed` makes different builds.
    pub fn synthetic(mode: Mode, files: usize, blocks: usize, seed: &str) -> SimBuild {
        let files = (0..files)
            .map(|f| FileMeta {
                name: format!("example.com/{seed}/pkg{}/file{f}.go", f / 10),
                blocks: (0..blocks)
                    .map(|b| {
                        let line = 10 + 3 * b as u32;
                        Block {
                            start: Pos { line, col: 2 },
                            end: Pos {
                                line: line + 2,
                                col: 3,
                            },
                            num_stmt: 2,
                            func: (b / 10) as u32,
                        }
                    })
                    .collect(),
                funcs: (0..blocks.div_ceil(10))
                    .map(|i| Func {
                        name: format!("F{i}"),
                        hash: [i as u8; 32],
                    })
                    .collect(),
            })
            .collect();
        SimBuild::new(BuildMeta { mode, files })
    }

    pub fn new(meta: BuildMeta) -> SimBuild {
        let id = meta.build_id();
        let json = serde_json::json!({
            "build": id,
            "mode": meta.mode.as_str(),
            "files": meta.files.iter().map(|f| serde_json::json!({
                "name": f.name,
                "funcs": f.funcs.iter().map(|func| serde_json::json!({
                    "name": func.name, "hash": instrumenter::hex(&func.hash),
                })).collect::<Vec<_>>(),
                "blocks": f.blocks.iter().map(|b| [
                    b.start.line, b.start.col, b.end.line, b.end.col, b.num_stmt, b.func,
                ]).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(json.to_string().as_bytes())
            .expect("writing to memory");
        let gz = gz.finish().expect("writing to memory");
        let shape = meta.files.iter().map(|f| f.blocks.len() as u32).collect();
        SimBuild {
            meta,
            id,
            gz,
            shape,
        }
    }

    pub fn num_blocks(&self) -> usize {
        self.shape.iter().map(|&n| n as usize).sum()
    }
}

/// How a simulated agent answers counter requests.
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    Normal,
    /// Never answers.
    Hang,
    /// Answers 200 with bytes that are not LCC1.
    Garbage,
    /// Declares a length, sends half, closes the connection.
    CloseMidway,
    /// Answers with this status and a JSON error.
    Status(u16),
    /// Answers counters for a build with one block fewer in its first file.
    WrongLength,
    /// Answers normally after this long (the metadata too).
    Delay(std::time::Duration),
}

struct Inner {
    build: Arc<SimBuild>,
    counters: Mutex<Counters>,
    behavior: Mutex<Behavior>,
    token: Option<String>,
    secret: String,
}

/// The live counters and the epochs, as the real agent keeps them.
struct Counters {
    /// What the instrumented code writes: set mode 0 or 1, count and atomic the counts.
    live: Vec<u32>,
    /// The epoch running; 1 until the first boundary.
    epoch: u32,
    /// Set mode: the epoch each block was last hit in, as of the last boundary.
    stamps: Vec<u32>,
    /// The token of the last boundary and what it answered.
    last: Option<(String, Vec<u8>)>,
}

impl Counters {
    /// What a read answers: set mode the epoch each block was last hit in, else the counts.
    fn values(&self, mode: Mode) -> Vec<u32> {
        match mode {
            Mode::Set => self
                .live
                .iter()
                .zip(&self.stamps)
                .map(|(&v, &s)| if v != 0 { self.epoch } else { s })
                .collect(),
            Mode::Count | Mode::Atomic => self.live.clone(),
        }
    }
}

/// A running simulated agent.
pub struct SimAgent {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl SimAgent {
    /// Listens on a free loopback port.
    pub async fn start(build: Arc<SimBuild>, token: Option<String>) -> SimAgent {
        let n = build.num_blocks();
        let secret = format!(
            "sim{:016x}",
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), n)
        );
        let inner = Arc::new(Inner {
            build,
            counters: Mutex::new(Counters {
                live: vec![0; n],
                epoch: 1,
                stamps: vec![0; n],
                last: None,
            }),
            behavior: Mutex::new(Behavior::Normal),
            token,
            secret,
        });
        let app = Router::new()
            .route("/livecov/v1/meta", get(meta))
            .route("/livecov/v1/counters", get(counters))
            .route("/livecov/v1/boundary", post(boundary))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SimAgent { addr, inner, task }
    }

    pub fn build(&self) -> &SimBuild {
        &self.inner.build
    }

    /// Sets every live counter (set mode: 0 or 1).
    pub fn set_counters(&self, values: Vec<u32>) {
        assert_eq!(values.len(), self.inner.build.num_blocks());
        self.inner.counters.lock().unwrap().live = values;
    }

    /// Runs block `i` (the flat index) `n` times: set mode marks it, count adds `n`.
    pub fn hit(&self, i: usize, n: u32) {
        let mut c = self.inner.counters.lock().unwrap();
        c.live[i] = match self.inner.build.meta.mode {
            Mode::Set => 1,
            Mode::Count | Mode::Atomic => c.live[i].saturating_add(n),
        };
    }

    /// What a read of the counters answers now.
    pub fn counters(&self) -> Vec<u32> {
        let c = self.inner.counters.lock().unwrap();
        c.values(self.inner.build.meta.mode)
    }

    /// Everything run since the agent started, per block: set mode 1, else the count.
    pub fn ever(&self) -> Vec<u32> {
        let mode = self.inner.build.meta.mode;
        self.counters()
            .into_iter()
            .map(|v| {
                if mode == Mode::Set {
                    u32::from(v != 0)
                } else {
                    v
                }
            })
            .collect()
    }

    /// The secret the agent registers with.
    pub fn secret(&self) -> &str {
        &self.inner.secret
    }

    pub fn set_behavior(&self, b: Behavior) {
        *self.inner.behavior.lock().unwrap() = b;
    }

    /// The registration body of this agent as instance `instance` of `service`.
    pub fn registration(&self, service: &str, instance: &str) -> serde_json::Value {
        serde_json::json!({
            "service": service,
            "instance": instance,
            "build": self.inner.build.id,
            "hostname": "sim",
            "pid": 1,
            "start_time": "2026-01-01T00:00:00Z",
            "mode": self.inner.build.meta.mode.as_str(),
            "port": self.addr.port(),
            "go_version": "go1.26",
            "secret": self.inner.secret,
        })
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

/// The agent's secret, or its token if it has one.
fn authorized(inner: &Inner, headers: &axum::http::HeaderMap) -> bool {
    let Some(got) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    got == inner.secret || inner.token.as_deref() == Some(got)
}

async fn meta(State(inner): State<Arc<Inner>>, headers: axum::http::HeaderMap) -> Response {
    if !authorized(&inner, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let delay = match *inner.behavior.lock().unwrap() {
        Behavior::Delay(d) => Some(d),
        _ => None,
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_ENCODING, "gzip"),
        ],
        inner.build.gz.clone(),
    )
        .into_response()
}

async fn counters(State(inner): State<Arc<Inner>>, headers: axum::http::HeaderMap) -> Response {
    answer(&inner, &headers, None).await
}

#[derive(serde::Deserialize)]
struct BoundaryParams {
    token: String,
}

async fn boundary(
    State(inner): State<Arc<Inner>>,
    headers: axum::http::HeaderMap,
    Query(p): Query<BoundaryParams>,
) -> Response {
    answer(&inner, &headers, Some(p.token)).await
}

async fn answer(inner: &Inner, headers: &axum::http::HeaderMap, token: Option<String>) -> Response {
    if !authorized(inner, headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut behavior = inner.behavior.lock().unwrap().clone();
    if let Behavior::Delay(d) = behavior {
        tokio::time::sleep(d).await;
        behavior = Behavior::Normal;
    }
    let build = &inner.build;
    match behavior {
        Behavior::Delay(_) => unreachable!(),
        Behavior::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Behavior::Garbage => (StatusCode::OK, "<html>not counters</html>").into_response(),
        Behavior::Status(code) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "{\"error\":\"simulated\"}",
        )
            .into_response(),
        Behavior::CloseMidway => {
            let values = inner.counters.lock().unwrap().values(build.meta.mode);
            let body = lcc::encode(&build.id, build.meta.mode, &build.shape, &values);
            let half = body[..body.len() / 2].to_vec();
            let stream = futures::stream::iter(vec![
                Ok::<_, std::io::Error>(half),
                Err(std::io::Error::other("simulated break")),
            ]);
            Response::builder()
                .header(header::CONTENT_LENGTH, body.len())
                .header("Livecov-Build", &build.id)
                .body(Body::from_stream(stream))
                .expect("a valid response")
        }
        Behavior::WrongLength => {
            let mut shape = build.shape.clone();
            shape[0] -= 1;
            let n: usize = shape.iter().map(|&n| n as usize).sum();
            let body = lcc::encode(&build.id, build.meta.mode, &shape, &vec![1; n]);
            ([("Livecov-Build", build.id.as_str())], body).into_response()
        }
        Behavior::Normal => {
            let mode = build.meta.mode;
            let mut c = inner.counters.lock().unwrap();
            let body = match token {
                None => lcc::encode(&build.id, mode, &build.shape, &c.values(mode)),
                Some(t) if c.last.as_ref().is_some_and(|(last, _)| *last == t) => {
                    c.last.as_ref().map(|(_, b)| b.clone()).unwrap_or_default()
                }
                Some(t) => {
                    let at = match mode {
                        Mode::Set => {
                            let epoch = c.epoch;
                            let Counters { live, stamps, .. } = &mut *c;
                            for (v, s) in live.iter_mut().zip(stamps.iter_mut()) {
                                if *v != 0 {
                                    *s = epoch;
                                    *v = 0;
                                }
                            }
                            c.stamps.clone()
                        }
                        Mode::Count | Mode::Atomic => c.live.clone(),
                    };
                    c.epoch += 1;
                    let body = lcc::encode(&build.id, mode, &build.shape, &at);
                    c.last = Some((t, body.clone()));
                    body
                }
            };
            (
                [
                    ("Livecov-Build", build.id.as_str()),
                    ("Content-Type", "application/vnd.livecov.counters"),
                    ("Livecov-Epoch", &c.epoch.to_string()),
                ],
                body,
            )
                .into_response()
        }
    }
}
