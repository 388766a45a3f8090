//! The livecov server: registers agents, pulls their counters, stores snapshots, answers
//! diff, export and patch-coverage requests, keeps builds' uploaded sources, and serves the
//! dashboard.
//!
//! Data flows one way: agents register (`registry`) → a snapshot, a reset or a session's stop
//! (`round`) asks every live instance (`pull`), computes each one's window (`window`) and
//! merges per build (`snapshot`) → the store keeps it (`store`) → `diff` and
//! `export` (with patch coverage) read it back, writing with the `report` crate; `sources`
//! keeps the sources `livecov build --upload-sources` sends. Each returns an error type of
//! its own. `api` is the HTTP layer over those (the route table, extractors, and the one
//! mapping of those errors to statuses) and `web` the dashboard's pages; neither holds logic
//! of its own.

pub mod api;
mod auth;
mod bytes;
pub mod channel;
pub mod cycle;
pub mod diff;
pub mod error;
pub mod exited;
pub mod export;
mod json;
pub mod lcc;
pub mod lcm;
pub mod meta;
pub mod metrics;
pub mod pull;
pub mod registry;
pub mod round;
mod route;
mod secret;
#[doc(hidden)]
pub mod sim;
pub mod snapshot;
pub mod sources;
pub mod store;
pub mod web;
pub mod window;

/// The JSON of the HTTP API: [`report::types`], shared with the CLI.
pub use report::types;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::meta::Build;
use crate::metrics::Metrics;
use crate::pull::{AgentClient, Dial, Failure};
use crate::store::{Store, StoreError};

/// Everything `livecov server` is told.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `sqlite://PATH`, a plain path (SQLite), or `postgres://…`.
    pub database_url: String,
    /// Bearer token required by mutating endpoints (snapshot, reset).
    pub admin_token: Option<String>,
    /// Bearer token agents send when registering, and the server sends when pulling.
    pub agent_token: Option<String>,
    /// An instance without a heartbeat for this long is marked gone.
    pub instance_ttl: Duration,
    /// Bound on each request to an agent.
    pub pull_timeout: Duration,
    /// How many instances a snapshot pulls at once.
    pub pull_concurrency: usize,
    /// Bound on request bodies sent to the server.
    pub max_body: usize,
    /// Bound on a build's metadata, decompressed: what a decompression bomb can cost.
    pub max_meta_bytes: u64,
    /// Services the server keeps at most: a registration of a new one past it is refused.
    pub max_services: u64,
    /// Live instances of one service at most: a registration of a new one past it is refused.
    pub max_instances: u64,
    /// Registrations accepted from one IP address per minute.
    pub registrations_per_minute: u32,
    /// Peers whose `X-Forwarded-For` is believed when an agent registers: load balancers and
    /// proxies in front of the server. From any other peer the header is ignored.
    pub trusted_proxies: Vec<registry::Cidr>,
    /// Take a snapshot of every service with live instances this often (label `scheduled`),
    /// so that an instance that dies loses at most this much.
    pub snapshot_every: Option<Duration>,
    /// When agents are asked to keep a connection to the server, over which it reads them
    /// instead of pulling (`channel`).
    pub agent_channel: channel::Mode,
    /// How long a poll of an agent's connection waits for a request before it answers `204`.
    pub channel_wait: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7777)),
            database_url: "sqlite://livecov.db".to_string(),
            admin_token: None,
            agent_token: None,
            instance_ttl: Duration::from_secs(30),
            pull_timeout: Duration::from_secs(10),
            pull_concurrency: 32,
            max_body: 64 << 10,
            max_meta_bytes: 256 << 20,
            max_services: 1000,
            max_instances: 1000,
            registrations_per_minute: 600,
            snapshot_every: None,
            trusted_proxies: Vec::new(),
            agent_channel: channel::Mode::Auto,
            channel_wait: Duration::from_secs(20),
        }
    }
}

/// Why a build's metadata could not be had (`App::build`).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The stored metadata does not parse: the store holds something it never wrote.
    #[error("stored build {build}")]
    Stored {
        build: String,
        #[source]
        source: meta::MetaError,
    },
    /// Not stored, and no instance of the build served it.
    #[error("no metadata for build {build}: {why}")]
    Unreachable { build: String, why: String },
}

/// The server's shared state.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub agents: AgentClient,
    pub metrics: Metrics,
    /// Parsed metadata of the builds seen so far, one cell per build so that concurrent
    /// requests for a build load it once. Metadata is immutable, so this never goes stale.
    builds: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<Build>>>>>,
    /// Builds whose metadata is being fetched after a registration.
    fetching: Mutex<HashSet<String>>,
    /// One lock per service: its snapshots, resets and sessions run one at a time.
    services: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Agents' requests refused lately, for the dashboard.
    pub refusals: registry::Refusals,
    /// Registrations per peer this minute.
    registrations: registry::Rate,
}

impl App {
    pub async fn new(config: Config) -> Result<Arc<App>, StoreError> {
        let store = Store::open(&config.database_url).await?;
        let agents = AgentClient::new(
            config.agent_token.clone(),
            config.pull_timeout,
            (config.agent_channel, config.channel_wait),
            store.clone(),
        );
        Ok(Arc::new(App {
            config,
            store,
            agents,
            metrics: Metrics::default(),
            builds: Mutex::default(),
            fetching: Mutex::default(),
            services: Mutex::default(),
            refusals: registry::Refusals::default(),
            registrations: registry::Rate::default(),
        }))
    }

    /// The metadata of `build`: from memory, else the store, else fetched from the first of
    /// `agents` (instances of that build) that serves it, and then stored. Concurrent calls
    /// for one build share one load.
    pub async fn build(&self, build: &str, agents: &[Dial]) -> Result<Arc<Build>, BuildError> {
        self.build_within(build, agents, None).await
    }

    /// [`App::build`], asking `agents` for at most `within` in all: the store is waited for
    /// as always, agents that answer later are given up.
    pub async fn build_within(
        &self,
        build: &str,
        agents: &[Dial],
        within: Option<Duration>,
    ) -> Result<Arc<Build>, BuildError> {
        let cell = self
            .builds
            .lock()
            .unwrap()
            .entry(build.to_string())
            .or_default()
            .clone();
        let loaded = cell
            .get_or_try_init(|| self.load_build(build, agents, within))
            .await
            .cloned();
        if loaded.is_err() {
            // No empty cell stays behind for a build that could not be had (an unknown id).
            let mut builds = self.builds.lock().unwrap();
            if builds
                .get(build)
                .is_some_and(|c| Arc::ptr_eq(c, &cell) && !c.initialized())
            {
                builds.remove(build);
            }
        }
        loaded
    }

    async fn load_build(
        &self,
        build: &str,
        agents: &[Dial],
        within: Option<Duration>,
    ) -> Result<Arc<Build>, BuildError> {
        if let Some(bin) = self.store.build_bin(build).await? {
            if let Some(bin) = bin {
                match Build::decode(bin, build, self.config.max_meta_bytes).await {
                    Ok(b) => return Ok(Arc::new(b)),
                    Err(e) => tracing::warn!(
                        build,
                        error = %crate::error::Chain(&e),
                        "stored binary metadata refused: reading the gzip JSON and writing it anew"
                    ),
                }
            }
            return self.convert_build(build).await;
        }
        let mut failures = Vec::new();
        let deadline = within.map(|w| tokio::time::Instant::now() + w);
        for agent in agents {
            let asked = match deadline {
                None => self.agents.meta(agent, build).await,
                Some(d) => tokio::time::timeout_at(d, self.agents.meta(agent, build))
                    .await
                    .unwrap_or_else(|_| {
                        Err(Failure {
                            outcome: pull::Outcome::Timeout,
                            message: "no metadata within the pull timeout".into(),
                        })
                    }),
            };
            let fetched = match asked {
                Ok(gz) => {
                    let gz: Arc<[u8]> = gz.into();
                    Build::parse_to_store(gz.clone(), build, self.config.max_meta_bytes)
                        .await
                        .map(|(b, bin)| (b, gz, bin))
                        .map_err(|e| Failure {
                            outcome: pull::Outcome::Rejected,
                            message: e.to_string(),
                        })
                }
                Err(f) => Err(f),
            };
            match fetched {
                Ok((b, gz, bin)) => {
                    self.store.insert_build(&b, &gz, &bin).await?;
                    return Ok(Arc::new(b));
                }
                Err(Failure { outcome, message }) => failures.push(format!(
                    "{}: {}: {message}",
                    agent.address,
                    outcome.as_str()
                )),
            }
        }
        Err(BuildError::Unreachable {
            build: build.to_string(),
            why: if failures.is_empty() {
                "no instance to fetch it from".to_string()
            } else {
                failures.join("; ")
            },
        })
    }

    /// Loads a stored build from its gzip JSON, checks that it hashes to its id (the binary
    /// form written from it is trusted from then on) and writes its binary form: for a row
    /// stored before there was one, or whose binary form failed its check. A failure to write
    /// it is logged; the build is loaded all the same.
    async fn convert_build(&self, build: &str) -> Result<Arc<Build>, BuildError> {
        let stored = |source| BuildError::Stored {
            build: build.to_string(),
            source,
        };
        let Some(gz) = self.store.build_meta(build).await? else {
            return Err(stored(meta::MetaError::Invalid(
                "the stored row vanished".into(),
            )));
        };
        let (b, bin) = Build::parse_to_store(gz.into(), build, self.config.max_meta_bytes)
            .await
            .map_err(stored)?;
        match self.store.set_build_bin(build, &bin).await {
            Ok(()) => tracing::info!(build, bytes = bin.len(), "binary metadata written"),
            Err(e) => tracing::warn!(
                build,
                error = %crate::error::Chain(&e),
                "binary metadata not written: the next start reads the gzip JSON again"
            ),
        }
        Ok(Arc::new(b))
    }

    pub(crate) fn is_known(&self, build: &str) -> bool {
        self.builds
            .lock()
            .unwrap()
            .get(build)
            .is_some_and(|c| c.initialized())
    }

    /// Fetches `build`'s metadata in the background unless it is known or being fetched.
    pub(crate) fn prefetch(self: &Arc<App>, build: String, agent: Dial) {
        if self.is_known(&build) || !self.fetching.lock().unwrap().insert(build.clone()) {
            return;
        }
        let app = self.clone();
        tokio::spawn(async move {
            if let Err(e) = app.build(&build, &[agent]).await {
                tracing::info!(build, error = %crate::error::Chain(&e), "metadata not fetched yet");
            }
            app.fetching.lock().unwrap().remove(&build);
        });
    }

    /// The lock of `service`'s snapshots, resets and sessions.
    pub(crate) fn service_lock(&self, service: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.services
            .lock()
            .unwrap()
            .entry(service.to_string())
            .or_default()
            .clone()
    }
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Opens the store, binds `config.listen` and serves in the background.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartError::Listen(config.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Listen(config.listen, e))?;
        let app = App::new(config).await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(serve(app.clone(), listener, async {
            let _ = rx.await;
        }));
        Ok(Server {
            addr,
            app,
            shutdown: Some(tx),
            task,
        })
    }

    /// Stops accepting, finishes the requests under way, and closes the store.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let r = (&mut self.task).await.unwrap_or(Ok(()));
        self.app.store.close().await;
        r
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listening on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Serves the API on `listener`, with the background work (expiring instances, finishing
/// boundaries a stopped server left pending), until `shutdown` completes.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let background = tokio::spawn(background(app.clone()));
    let relay = tokio::spawn(channel::serve_relayed(app.clone()));
    let scheduled = app
        .config
        .snapshot_every
        .map(|every| tokio::spawn(scheduled(app.clone(), every)));
    let router = api::router(app.clone());
    let result = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    background.abort();
    relay.abort();
    if let Some(task) = scheduled {
        task.abort();
    }
    result
}

async fn background(app: Arc<App>) {
    let ttl = app.config.instance_ttl;
    // At most a second: a boundary a stopped server left pending is finished soon after start.
    let every = (ttl / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        registry::sweep(&app).await;
        round::finish_pending(&app, None).await;
    }
}

/// Takes a snapshot of every service with live instances every `every`.
async fn scheduled(app: Arc<App>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; the first snapshot is one period in
    loop {
        tick.tick().await;
        let services = match app.store.services().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %crate::error::Chain(&e), "scheduled snapshots: listing services");
                continue;
            }
        };
        for s in services.iter().filter(|s| s.live_instances > 0) {
            if let Err(e) = round::take(&app, &s.name, Some("scheduled".into()), None).await {
                tracing::warn!(service = s.name, error = %crate::error::Chain(&e), "scheduled snapshot not taken");
            }
        }
    }
}
