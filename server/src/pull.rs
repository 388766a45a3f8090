//! Talking to agents: fetching a build's metadata, reading an instance's counters, and
//! applying a boundary (`POST /livecov/v1/boundary`, docs/ARCHITECTURE.md).
//!
//! The server only ever connects to the address an instance registered from (see
//! `registry`), presents the secret the instance registered with, never follows redirects,
//! uses no proxy, and bounds every answer in time and size: an agent is a process the server
//! does not control. It sends no `Accept-Encoding`, so agents answer counters as they are:
//! `LCC1` is compact already, and gzip would cost the host's CPU on every pull to save a few
//! tens of kilobytes (`docs/COUNTERS.md`, "Size"). The metadata comes gzip whatever is asked,
//! and is inflated through `--max-metadata-mb` (`meta.rs`).

use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::channel::{ChannelError, Channels, Mode, Reply};
use crate::store::{Relayed, Store, now_ms};

/// How often an asker looks for the answer to a request it wrote for another server.
const RELAY_POLL: Duration = Duration::from_millis(25);
use crate::lcc::{self, Sparse};
use crate::meta::Build;

/// How an instance answered a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Ok,
    Timeout,
    /// No connection could be made.
    Refused,
    /// An error status, or the connection broke mid-answer.
    Error,
    /// The answer broke the format, or does not fit the build's metadata.
    Rejected,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Timeout,
        Outcome::Refused,
        Outcome::Error,
        Outcome::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Timeout => "timeout",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
            Outcome::Rejected => "rejected",
        }
    }
}

#[derive(Debug)]
pub struct Failure {
    pub outcome: Outcome,
    pub message: String,
}

impl Failure {
    fn new(outcome: Outcome, message: impl Into<String>) -> Failure {
        Failure {
            outcome,
            message: message.into(),
        }
    }
}

/// Where to reach one instance's agent, and the secret it registered with (None for agents
/// that have none: the agent token, if any, is presented instead).
#[derive(Debug, Clone)]
pub struct Dial {
    /// The instance's id: names its channel, if its agent keeps one (`channel`).
    pub instance: String,
    pub address: String,
    pub secret: Option<String>,
    /// When its agent last polled a server for requests (`channel`), if ever.
    pub channel_seen: Option<i64>,
}

impl Dial {
    pub fn of(i: &crate::store::InstanceRow) -> Dial {
        Dial {
            instance: i.id.clone(),
            address: i.address.clone(),
            secret: i.secret.clone(),
            channel_seen: i.channel_seen,
        }
    }
}

/// What an instance answered to a read or a boundary: its counters (set mode: the epoch each
/// block was last hit in; count and atomic: counts since the process started) and its epoch.
#[derive(Debug, Clone)]
pub struct Answer {
    pub counters: Sparse,
    /// The answer as sent (LCC1), which the server keeps as it is for a boundary.
    pub body: Vec<u8>,
    /// The epoch running when the counters were read, or the one that began at the
    /// boundary; 1 from agents that predate epochs.
    pub epoch: u32,
}

/// The HTTP client for agents.
#[derive(Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    /// Agents that keep a connection to this server: pulls of them go over it.
    pub channels: Arc<Channels>,
    /// Where requests for agents that poll another server are written (`channel`).
    store: Store,
    token: Option<String>,
    timeout: Duration,
}

/// Compressed metadata larger than this is refused.
const MAX_META: usize = 128 << 20;

impl AgentClient {
    pub fn new(
        token: Option<String>,
        timeout: Duration,
        channels: (Mode, Duration),
        store: Store,
    ) -> AgentClient {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            // Shorter than the whole pull, so that an address that drops packets is known
            // as one that cannot be connected to (`Channels::unreachable`).
            .connect_timeout(timeout / 2)
            .timeout(timeout)
            .pool_max_idle_per_host(1)
            .user_agent(concat!("livecov-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client without TLS always builds");
        AgentClient {
            http,
            channels: Arc::new(Channels::new(channels.0, channels.1)),
            store,
            token,
            timeout,
        }
    }

    async fn get_body(
        &self,
        to: &Dial,
        path: &str,
        post: bool,
        limit: usize,
        build: &str,
    ) -> Result<(Vec<u8>, Option<u32>), Failure> {
        let reply = if self.channels.connected(&to.instance) {
            self.through_channel(to, path, post, limit).await?
        } else if self.channels.elsewhere(to.channel_seen) {
            self.through_relay(to, path, post, limit).await?
        } else {
            match tokio::time::timeout(self.timeout, self.direct(to, path, post, limit)).await {
                Ok(Ok(reply)) => reply,
                Ok(Err((f, connect))) => {
                    if connect {
                        // Its heartbeats now ask the agent to connect to the server instead.
                        self.channels.unreachable(&to.instance);
                    }
                    return Err(f);
                }
                Err(_) => {
                    return Err(Failure::new(
                        Outcome::Timeout,
                        format!("no whole answer within {:?}", self.timeout),
                    ));
                }
            }
        };
        if !(200..300).contains(&reply.status) {
            let status = reqwest::StatusCode::from_u16(reply.status)
                .map(|s| s.to_string())
                .unwrap_or_else(|_| reply.status.to_string());
            return Err(Failure::new(
                Outcome::Error,
                format!("agent answered {status}"),
            ));
        }
        if let Some(got) = &reply.build
            && got.as_slice() != build.as_bytes()
        {
            return Err(Failure::new(
                Outcome::Rejected,
                format!(
                    "agent serves build {}, registered as {build}",
                    String::from_utf8_lossy(got)
                ),
            ));
        }
        let epoch = match &reply.epoch {
            None => None,
            Some(v) => Some(
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|v| v.parse::<u32>().ok())
                    .filter(|&e| e > 0)
                    .ok_or_else(|| {
                        Failure::new(Outcome::Rejected, "Livecov-Epoch is not an epoch")
                    })?,
            ),
        };
        Ok((reply.body, epoch))
    }

    /// What `to`'s agent answers at `path`, asked on a connection of the server's. The error
    /// says whether no connection could be made.
    async fn direct(
        &self,
        to: &Dial,
        path: &str,
        post: bool,
        limit: usize,
    ) -> Result<Reply, (Failure, bool)> {
        let url = format!("http://{}{path}", to.address);
        let mut req = if post {
            self.http.post(&url)
        } else {
            self.http.get(&url)
        };
        if let Some(token) = to.secret.as_ref().or(self.token.as_ref()) {
            req = req.bearer_auth(token);
        }
        let failed = |e: reqwest::Error| {
            let connect = e.is_connect();
            (classify(e), connect)
        };
        let mut resp = req.send().await.map_err(failed)?;
        let header = |name: &str| resp.headers().get(name).map(|v| v.as_bytes().to_vec());
        let mut reply = Reply {
            status: resp.status().as_u16(),
            build: header("Livecov-Build"),
            epoch: header("Livecov-Epoch"),
            body: Vec::new(),
        };
        if !(200..300).contains(&reply.status) {
            return Ok(reply);
        }
        let too_large = |n: String| {
            let f = Failure::new(
                Outcome::Rejected,
                format!("answer{n} is over the limit of {limit} bytes"),
            );
            (f, false)
        };
        if let Some(n) = resp.content_length().filter(|&n| n > limit as u64) {
            return Err(too_large(format!(" of {n} bytes")));
        }
        while let Some(chunk) = resp.chunk().await.map_err(failed)? {
            if reply.body.len() + chunk.len() > limit {
                return Err(too_large(String::new()));
            }
            reply.body.extend_from_slice(&chunk);
        }
        Ok(reply)
    }

    /// What `to`'s agent answers at `path`, asked through the database of the server its agent
    /// polls (`channel::serve_relayed`).
    async fn through_relay(
        &self,
        to: &Dial,
        path: &str,
        post: bool,
        limit: usize,
    ) -> Result<Reply, Failure> {
        let store_failed = |e: crate::store::StoreError| {
            Failure::new(
                Outcome::Error,
                format!(
                    "the agent polls another server; passing the request through the database: {}",
                    crate::error::Chain(&e)
                ),
            )
        };
        let request = Relayed {
            id: 0,
            instance: to.instance.clone(),
            method: if post { "POST" } else { "GET" }.into(),
            path: path.to_string(),
            auth: self.authorization(to),
            max_bytes: limit,
        };
        let id = self
            .store
            .relay(&request, now_ms())
            .await
            .map_err(store_failed)?;
        let deadline = Instant::now() + self.timeout;
        let answer = loop {
            match self.store.relayed_answer(id).await {
                Ok(Some(reply)) => break Ok(reply),
                Ok(None) if Instant::now() >= deadline => {
                    break Err(Failure::new(
                        Outcome::Timeout,
                        format!(
                            "no answer within {:?} from the agent, which polls another server",
                            self.timeout
                        ),
                    ));
                }
                Ok(None) => tokio::time::sleep(RELAY_POLL).await,
                Err(e) => break Err(store_failed(e)),
            }
        };
        // Whatever came of it, the request goes (`prune_relayed` deletes what this misses).
        let _ = self.store.drop_relayed(id).await;
        let reply = answer?;
        if reply.status == 0 {
            return Err(Failure::new(
                Outcome::Error,
                format!(
                    "the server the agent polls could not ask it: {}",
                    String::from_utf8_lossy(&reply.body)
                ),
            ));
        }
        if reply.body.len() > limit {
            return Err(Failure::new(
                Outcome::Rejected,
                format!("answer is over the limit of {limit} bytes"),
            ));
        }
        Ok(reply)
    }

    /// What a request to `to` carries as `Authorization`.
    fn authorization(&self, to: &Dial) -> Option<String> {
        to.secret
            .as_ref()
            .or(self.token.as_ref())
            .map(|t| format!("Bearer {t}"))
    }

    /// What `to`'s agent answers at `path`, asked over the connection the agent keeps to the
    /// server (`channel`).
    async fn through_channel(
        &self,
        to: &Dial,
        path: &str,
        post: bool,
        limit: usize,
    ) -> Result<Reply, Failure> {
        let authorization = self.authorization(to);
        let method = if post { "POST" } else { "GET" };
        self.channels
            .request(
                &to.instance,
                method,
                path.to_string(),
                authorization,
                limit,
                self.timeout,
            )
            .await
            .map_err(|e| match e {
                ChannelError::NotConnected => Failure::new(
                    Outcome::Refused,
                    "the agent no longer keeps its connection to this server",
                ),
                ChannelError::Timeout => Failure::new(
                    Outcome::Timeout,
                    format!(
                        "no answer over the agent's connection within {:?}",
                        self.timeout
                    ),
                ),
                ChannelError::TooLarge(n) => Failure::new(
                    Outcome::Rejected,
                    format!("answer is over the limit of {n} bytes"),
                ),
            })
    }

    /// Fetches the metadata of `build` (gzip JSON, as served) from an instance of it; the
    /// caller parses and checks it ([`Build::parse`]).
    pub async fn meta(&self, to: &Dial, build: &str) -> Result<Vec<u8>, Failure> {
        let (gz, _) = self
            .get_body(to, "/livecov/v1/meta", false, MAX_META, build)
            .await?;
        Ok(gz)
    }

    /// Reads the counters of an instance of `build`.
    pub async fn counters(&self, to: &Dial, build: &Build) -> Result<Answer, Failure> {
        self.answer(to, build, "/livecov/v1/counters".into(), false)
            .await
    }

    /// Applies the boundary `token` in an instance of `build`: the agent starts a new epoch
    /// and answers its counters at that moment; an agent that applied `token` already answers
    /// as it did then.
    pub async fn boundary(&self, to: &Dial, build: &Build, token: &str) -> Result<Answer, Failure> {
        let path = format!("/livecov/v1/boundary?token={token}");
        let answer = self.answer(to, build, path, true).await;
        match answer {
            Err(f) if f.message.contains("404") => Err(Failure::new(
                Outcome::Error,
                "the agent has no boundaries (built by an older livecov): rebuild the service \
                 with this livecov for resets and sessions",
            )),
            other => other,
        }
    }

    async fn answer(
        &self,
        to: &Dial,
        build: &Build,
        path: String,
        post: bool,
    ) -> Result<Answer, Failure> {
        // The largest legal body: a header, then per file its length and per counter at most
        // a 5-byte value plus a run of two 5-byte varints.
        let limit = 128 + build.id.len() + build.shape.len() * 5 + build.num_blocks() * 15;
        let (body, epoch) = self.get_body(to, &path, post, limit, &build.id).await?;
        let sparse = lcc::decode(&body, &build.id, &build.shape)
            .map_err(|e| Failure::new(Outcome::Rejected, e.to_string()))?;
        if sparse.mode != build.mode() {
            return Err(Failure::new(
                Outcome::Rejected,
                format!(
                    "counters in mode {}, the build's mode is {}",
                    sparse.mode.as_str(),
                    build.mode().as_str()
                ),
            ));
        }
        let epoch = match epoch {
            Some(e) => e,
            None if post => {
                return Err(Failure::new(
                    Outcome::Rejected,
                    "a boundary answered without Livecov-Epoch",
                ));
            }
            None => 1,
        };
        Ok(Answer {
            counters: sparse,
            body,
            epoch,
        })
    }
}

fn classify(e: reqwest::Error) -> Failure {
    let outcome = if e.is_timeout() {
        Outcome::Timeout
    } else if e.is_connect() {
        Outcome::Refused
    } else {
        Outcome::Error
    };
    // reqwest's Display omits the cause, which is the useful part.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Failure::new(outcome, message)
}

/// Runs `f` and reports how long it took.
pub async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}
