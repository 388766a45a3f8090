//! `livecov server`: the server that registers agents, pulls their counters and stores
//! snapshots.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;

/// Run the livecov server.
///
/// Agents register with it and send heartbeats; asked for a snapshot (HTTP API, `livecov
/// snapshot`), it pulls the live counters of every instance of a service, merges them per
/// build and stores the result for good. It stores in an embedded SQLite file by default, or in
/// PostgreSQL (--database-url postgres://…). Logs go to standard error; RUST_LOG sets the level
/// (default: info).
#[derive(clap::Args)]
#[command(after_help = "Example: livecov server --database-url postgres://livecov@db/livecov")]
pub struct Args {
    /// Address to listen on.
    #[arg(
        long,
        env = "LIVECOV_LISTEN",
        hide_env_values = true,
        default_value = "127.0.0.1:7777"
    )]
    listen: SocketAddr,

    /// Where snapshots are stored: sqlite://PATH (or a plain PATH) or postgres://….
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://livecov.db",
        value_name = "URL"
    )]
    database_url: String,

    /// Bearer token required to take snapshots and reset [default: none, anyone may].
    #[arg(
        long,
        env = "LIVECOV_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    admin_token: Option<String>,

    /// Bearer token agents must register with, and that the server sends when pulling: the
    /// agents' LIVECOV_TOKEN [default: none].
    #[arg(
        long,
        env = "LIVECOV_AGENT_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    agent_token: Option<String>,

    /// An instance without a heartbeat for this long is marked gone (agents send one every
    /// 10s by default).
    #[arg(long, env = "LIVECOV_INSTANCE_TTL", hide_env_values = true, default_value = "30s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    instance_ttl: Duration,

    /// Bound on each pull from an instance.
    #[arg(long, env = "LIVECOV_PULL_TIMEOUT", hide_env_values = true, default_value = "10s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pull_timeout: Duration,

    /// How many instances a snapshot pulls at once.
    #[arg(long, env = "LIVECOV_PULL_CONCURRENCY", hide_env_values = true, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pull_concurrency: u32,

    /// Load balancers or proxies in front of the server (addresses or networks such as
    /// 10.0.0.0/8, comma-separated): when an agent registers through one of them, its address
    /// is taken from X-Forwarded-For. From any other peer that header is ignored.
    #[arg(
        long,
        env = "LIVECOV_TRUSTED_PROXIES",
        hide_env_values = true,
        value_name = "NETWORKS",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<server::registry::Cidr>,

    /// Also take a snapshot of every service with live instances this often (label
    /// "scheduled"), so that an instance that stops loses at most this much [default: only
    /// on request].
    #[arg(long, env = "LIVECOV_SNAPSHOT_EVERY", hide_env_values = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    snapshot_every: Option<Duration>,

    /// Largest build metadata accepted, decompressed, in MiB (from an agent or an upload):
    /// what a decompression bomb can cost. A build of 1,000,000 blocks has about 30 MiB.
    #[arg(long, env = "LIVECOV_MAX_METADATA_MB", hide_env_values = true, default_value_t = 256, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    max_metadata_mb: u64,

    /// Services the server keeps at most: registering a new service past it is refused (429).
    #[arg(long, env = "LIVECOV_MAX_SERVICES", hide_env_values = true, default_value_t = 1000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_services: u64,

    /// Live instances of one service at most: registering a new instance past it is refused
    /// (429).
    #[arg(long, env = "LIVECOV_MAX_INSTANCES", hide_env_values = true, default_value_t = 1000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_instances: u64,

    /// Registrations accepted from one IP address per minute; more are refused (429).
    #[arg(long, env = "LIVECOV_REGISTRATIONS_PER_MINUTE", hide_env_values = true, default_value_t = 600, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    registrations_per_minute: u32,

    /// When agents keep a connection to the server, over which it reads them instead of
    /// pulling: "auto" asks an agent to once a pull of it could not connect (NAT, another
    /// network), "always" asks every agent, "never" only pulls.
    #[arg(long, env = "LIVECOV_AGENT_CHANNEL", hide_env_values = true, default_value = "auto", value_name = "WHEN", value_parser = server::channel::Mode::parse)]
    agent_channel: server::channel::Mode,

    /// How long an agent's poll waits for a request before the server answers it empty; keep
    /// it under the idle timeout of proxies between agents and the server.
    #[arg(long, env = "LIVECOV_CHANNEL_WAIT", hide_env_values = true, default_value = "20s", value_name = "DURATION", value_parser = channel_wait)]
    channel_wait: Duration,

    /// Log format.
    #[arg(long, env = "LIVECOV_LOG_FORMAT", hide_env_values = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

fn channel_wait(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(120) {
        return Err(format!("{s}: want 100ms to 120s"));
    }
    Ok(d)
}

pub fn run(args: Args) -> Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if args.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    let config = server::Config {
        listen: args.listen,
        database_url: args.database_url,
        admin_token: args.admin_token.filter(|t| !t.is_empty()),
        agent_token: args.agent_token.filter(|t| !t.is_empty()),
        instance_ttl: args.instance_ttl,
        pull_timeout: args.pull_timeout,
        pull_concurrency: args.pull_concurrency as usize,
        snapshot_every: args.snapshot_every.filter(|d| !d.is_zero()),
        trusted_proxies: args.trusted_proxies,
        max_meta_bytes: args.max_metadata_mb << 20,
        max_services: args.max_services,
        max_instances: args.max_instances,
        registrations_per_minute: args.registrations_per_minute,
        agent_channel: args.agent_channel,
        channel_wait: args.channel_wait,
        ..server::Config::default()
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let app = server::App::new(config.clone())
            .await
            .with_context(|| format!("opening the store {}", redact(&config.database_url)))?;
        tracing::info!(
            listen = %listener.local_addr()?,
            store = redact(&config.database_url),
            admin_token = config.admin_token.is_some(),
            agent_token = config.agent_token.is_some(),
            "livecov server ready"
        );
        server::serve(app, listener, shutdown_signal())
            .await
            .context("serving")?;
        tracing::info!("livecov server stopped");
        Ok(())
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing the requests under way");
}

/// A database URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}
