//! What it costs the server to read agents over their own connection (the channel) rather
//! than by connecting to them, with real parts, both in the same run.
//!
//! The service is `examples/greeter`, copied into the run's scratch directory and built once
//! with `livecov build` (set mode, the default; a cache of the run's own). For each number of
//! replicas (`--replicas`, 1, 8 and 32 by default) and each of two setups, a fresh `livecov
//! server` is started on a fresh SQLite database in the scratch directory, with the defaults
//! that matter here (`--agent-channel auto`, `--channel-wait 20s`, `--pull-timeout 10s`), the
//! benchmarks' `--pull-concurrency 64` and quotas out of the way, and
//! `RUST_LOG=info,tower_http=debug`, so that its log has a line for every request it receives.
//! Then N replicas of the greeter register with it as service `greeter`, each with
//! `ADDR=127.0.0.1:0`, `LIVECOV_SERVER` set and no other `LIVECOV_*` variable but:
//!
//! - pulled: `LIVECOV_AGENT_ADDR=127.0.0.1:0`, `LIVECOV_CHANNEL` unset: the server connects to
//!   each agent for every read;
//! - channel: `LIVECOV_AGENT_ADDR=127.0.0.2:0` and `LIVECOV_CHANNEL=on`: the server connects
//!   to the address a registration came from, 127.0.0.1, where nothing listens, so every read
//!   goes over the agent's long poll (`POST /api/v1/agents/{instance}/channel`), answered by
//!   `POST …/channel/{id}`.
//!
//! Before measuring, `GET /api/v1/services/greeter` must list N live instances, each with
//! `"channel": true` in the channel setup and false in the pulled one, and
//! `livecov_agent_channels` in `/metrics` must be N or 0; after measuring, the same again.
//! Every snapshot and reset must read all N instances (`instances_ok` N, `instances_failed` 0,
//! every outcome `ok`), and the server's log must show at least N answers over the channel per
//! snapshot and reset in the channel setup, none in the pulled one: a run that reads the wrong
//! way, or fails a read, fails.
//!
//! Measured, one setup after the other:
//!
//! 1. `POST /api/v1/services/greeter/snapshots` (`{}`): `--warmup` untimed (by their end the
//!    server holds the build's metadata), then `--snapshots` timed, one after the other, from
//!    sending the request to the end of the answer, over a keep-alive connection. Then
//!    `POST …/reset` the same way (`--resets`, after one untimed; 0 skips them): a reset
//!    applies a boundary in every agent and stores the round that ended. The server's CPU time
//!    over the timed requests (user + system from `/proc/PID/stat`, 10 ms ticks) is given per
//!    request, and the agents' answers over the channel counted in its log, per request.
//! 2. Idle: after 2 s, a window of `--idle` seconds (20 by default) in which the bench sends
//!    nothing: the requests the server received (its log's `started processing request`
//!    lines, by endpoint), the server's CPU time and the replicas' (the sum of theirs), per
//!    minute. The agents heartbeat every 10 s (`LIVECOV_HEARTBEAT`'s default) and a poll
//!    waits 20 s: a window that is a multiple of 20 s holds each agent's periodic requests a
//!    whole number of times, whatever their phase.
//!
//! The replicas are killed and the server stopped (SIGTERM) before the next setup starts.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::common::{self, median, percentile, secs};

const SERVICE: &str = "greeter";
/// Seconds between the last measured request and the idle window.
const SETTLE: Duration = Duration::from_secs(2);

/// `livecov-bench channel`'s flags.
#[derive(clap::Args)]
pub struct Args {
    /// Replicas of the service, one run of each setup per number (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8,32", value_parser = common::positive)]
    replicas: Vec<usize>,
    /// Timed snapshots per setup.
    #[arg(long, default_value_t = 20, value_parser = common::positive)]
    snapshots: usize,
    /// Untimed snapshots before them.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed resets per setup, after one untimed (0: none).
    #[arg(long, default_value_t = 10)]
    resets: usize,
    /// Idle window, in seconds (keep it a multiple of 20, the server's --channel-wait).
    #[arg(long, default_value_t = 20, value_parser = common::positive)]
    idle: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    Pulled,
    Channel,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::Pulled => "pulled",
            Setup::Channel => "channel",
        }
    }

    fn agent_addr(self) -> &'static str {
        match self {
            Setup::Pulled => "127.0.0.1:0",
            Setup::Channel => "127.0.0.2:0",
        }
    }
}

/// Latencies in milliseconds, the server's CPU per request, the channel answers per request,
/// and the blocks of the build and those covered, as the last answer counts them.
#[derive(Default)]
struct Timed {
    ms: Vec<f64>,
    cpu_ms: f64,
    answers: f64,
    blocks: (i64, i64),
}

/// Requests the server received in the idle window, by endpoint.
#[derive(Default, Clone, Copy)]
struct Requests {
    heartbeats: usize,
    polls: usize,
    answers: usize,
    other: usize,
}

impl Requests {
    /// The requests of the server's log so far.
    fn in_log(log: &Path) -> Result<Requests> {
        let text =
            std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
        Ok(Requests::in_text(&text))
    }

    /// The requests of a log's text (`tower_http`'s lines at debug level).
    fn in_text(text: &str) -> Requests {
        let mut r = Requests::default();
        for line in text.lines() {
            if !line.contains("started processing request") {
                continue;
            }
            let uri = line
                .split_once("uri=")
                .and_then(|(_, rest)| rest.split([' ', '}']).next())
                .unwrap_or("");
            if uri.ends_with("/heartbeat") {
                r.heartbeats += 1;
            } else if uri.ends_with("/channel") {
                r.polls += 1;
            } else if uri.contains("/channel/") {
                r.answers += 1;
            } else {
                r.other += 1;
            }
        }
        r
    }

    fn since(self, before: Requests) -> Requests {
        Requests {
            heartbeats: self.heartbeats - before.heartbeats,
            polls: self.polls - before.polls,
            answers: self.answers - before.answers,
            other: self.other - before.other,
        }
    }

    fn total(self) -> usize {
        self.heartbeats + self.polls + self.answers + self.other
    }
}

/// The idle window's figures.
struct Idle {
    requests: Requests,
    seconds: f64,
    server_cpu_ms: f64,
    agents_cpu_ms: f64,
}

struct Figures {
    replicas: usize,
    setup: Setup,
    snapshots: Timed,
    resets: Option<Timed>,
    idle: Idle,
}

/// The replicas of one setup, killed when dropped.
struct Replicas(Vec<Child>);

impl Drop for Replicas {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Replicas {
    /// User plus system CPU time of every replica so far.
    fn cpu(&self) -> Result<Duration> {
        let mut total = Duration::ZERO;
        for child in &self.0 {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id()))?;
            total += common::cpu_of(&stat, false).context("a /proc/PID/stat without CPU times")?;
        }
        Ok(total)
    }

    /// Fails if a replica exited.
    fn check_running(&mut self) -> Result<()> {
        for child in &mut self.0 {
            if let Some(status) = child.try_wait()? {
                bail!("a replica exited ({status})");
            }
        }
        Ok(())
    }
}

/// A `livecov server` of one setup and the client that talks to it.
struct Server {
    server: livecov_testkit::LiveServer,
    base: String,
    log: PathBuf,
    client: reqwest::Client,
}

impl Server {
    fn start(livecov: &Path, scratch: &Path, part: &str) -> Result<Server> {
        let dir = scratch.join(part);
        std::fs::create_dir_all(&dir)?;
        let url = format!("sqlite://{}", dir.join("livecov.db").display());
        let log = dir.join("server.log");
        let concurrency = common::SERVER_PULL_CONCURRENCY.to_string();
        let args = [
            "--database-url",
            &url,
            "--pull-concurrency",
            &concurrency,
            "--max-instances",
            "1000000",
            "--registrations-per-minute",
            "100000000",
        ];
        let server = livecov_testkit::LiveServer::start(
            livecov,
            &args,
            &[("RUST_LOG", "info,tower_http=debug")],
            &log,
        )?;
        Ok(Server {
            base: server.base(),
            server,
            log,
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(120))
                .build()?,
        })
    }

    /// `POST path` with `{}`, which must answer `want`: the answer and its wall time.
    async fn post(&self, path: &str, want: u16) -> Result<(Value, Duration)> {
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&json!({}));
        let start = Instant::now();
        let resp = req.send().await.with_context(|| format!("POST {path}"))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?;
        let took = start.elapsed();
        ensure!(
            status == want,
            "POST {path}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        Ok((serde_json::from_slice(&body)?, took))
    }

    /// `GET path`: its status and body.
    async fn get(&self, path: &str) -> Result<(u16, Vec<u8>)> {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = resp.status().as_u16();
        Ok((status, resp.bytes().await?.to_vec()))
    }

    fn cpu(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.server.pid()))?;
        common::cpu_of(&stat, false).context("a /proc/PID/stat without CPU times")
    }

    /// None until the service is known; then its live instances and how many show
    /// `"channel": true`.
    async fn instances(&self) -> Result<Option<(usize, usize)>> {
        let (status, body) = self.get(&format!("/api/v1/services/{SERVICE}")).await?;
        if status == 404 {
            return Ok(None);
        }
        ensure!(
            status == 200,
            "GET /api/v1/services/{SERVICE}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let service: Value = serde_json::from_slice(&body)?;
        let live: Vec<&Value> = service["instance_list"]
            .as_array()
            .context("no instance_list")?
            .iter()
            .filter(|i| i["state"] == "live")
            .collect();
        let channel = live.iter().filter(|i| i["channel"] == true).count();
        Ok(Some((live.len(), channel)))
    }

    /// `livecov_agent_channels` in `/metrics`.
    async fn open_channels(&self) -> Result<usize> {
        let (status, body) = self.get("/metrics").await?;
        ensure!(status == 200, "GET /metrics: {status}");
        String::from_utf8_lossy(&body)
            .lines()
            .find_map(|l| l.strip_prefix("livecov_agent_channels "))
            .and_then(|v| v.trim().parse().ok())
            .context("no livecov_agent_channels in /metrics")
    }

    /// Waits until `n` instances are live, all read the way `setup` says.
    async fn wait_for(&self, n: usize, setup: Setup, replicas: &mut Replicas) -> Result<()> {
        let want = if setup == Setup::Channel { n } else { 0 };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            replicas.check_running()?;
            let seen = self.instances().await?;
            if seen == Some((n, want)) {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "{}: after 60 s, (live instances, with \"channel\": true) = {seen:?}, want \
                 ({n}, {want}): see {}",
                setup.name(),
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let open = self.open_channels().await?;
        ensure!(
            open == want,
            "{}: livecov_agent_channels {open}, want {want}",
            setup.name()
        );
        Ok(())
    }

    /// `warmup` untimed then `timed` timed `POST path`, each of which must read all `n`
    /// instances.
    async fn measure(&self, path: &str, n: usize, warmup: usize, timed: usize) -> Result<Timed> {
        for _ in 0..warmup {
            let (answer, _) = self.post(path, 201).await?;
            check_all_ok(&answer, n, path)?;
        }
        let (cpu0, log0) = (self.cpu()?, Requests::in_log(&self.log)?);
        let mut ms = Vec::with_capacity(timed);
        let mut blocks = (0, 0);
        for _ in 0..timed {
            let (answer, took) = self.post(path, 201).await?;
            check_all_ok(&answer, n, path)?;
            ms.push(secs(took) * 1e3);
            let totals = &answer["totals"];
            blocks = (
                totals["blocks"].as_i64().unwrap_or(0),
                totals["blocks_covered"].as_i64().unwrap_or(0),
            );
        }
        let answers = Requests::in_log(&self.log)?.since(log0).answers;
        Ok(Timed {
            ms,
            cpu_ms: secs(self.cpu()? - cpu0) * 1e3 / timed as f64,
            answers: answers as f64 / timed as f64,
            blocks,
        })
    }
}

/// Every one of the `n` instances was read, and read ok.
fn check_all_ok(answer: &Value, n: usize, what: &str) -> Result<()> {
    let (ok, failed) = (
        answer["instances_ok"].as_i64(),
        answer["instances_failed"].as_i64(),
    );
    let outcomes = answer["instance_results"]
        .as_array()
        .map_or(0, |r| r.iter().filter(|i| i["outcome"] == "ok").count());
    ensure!(
        ok == Some(n as i64) && failed == Some(0) && outcomes == n,
        "POST {what}: instances_ok {ok:?}, instances_failed {failed:?}, {outcomes} outcomes \
         ok; want {n}, 0, {n}: {}",
        answer["instance_results"]
    );
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    let (livecov, scratch) = common::start()?;
    let scratch = scratch.path();
    let greeter = build_greeter(&livecov, scratch)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut figures = Vec::new();
    for &n in &args.replicas {
        for setup in [Setup::Pulled, Setup::Channel] {
            eprintln!("{n} replicas, {}…", setup.name());
            figures.push(rt.block_on(measure(&args, &livecov, scratch, &greeter, n, setup))?);
        }
    }
    print!("{}", report(&args, &figures));
    common::print_machine("channel", ("livecov", &livecov))
}

/// Copies `examples/greeter` into the scratch directory and builds it with `livecov build`.
fn build_greeter(livecov: &Path, scratch: &Path) -> Result<PathBuf> {
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the bench crate has no parent directory")?
        .join("examples/greeter");
    let module = scratch.join("greeter-src");
    std::fs::create_dir_all(&module)?;
    for file in ["go.mod", "main.go"] {
        std::fs::copy(example.join(file), module.join(file))
            .with_context(|| format!("copying {}", example.join(file).display()))?;
    }
    let bin = scratch.join("greeter");
    let took = common::timed_ok(
        Command::new(livecov)
            .current_dir(&module)
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .arg("build")
            .arg("--cache-dir")
            .arg(scratch.join("livecov-cache"))
            .args(["--", "-o"])
            .arg(&bin)
            .arg("."),
    )?;
    eprintln!("built examples/greeter in {:.1} s", secs(took));
    Ok(bin)
}

async fn measure(
    args: &Args,
    livecov: &Path,
    scratch: &Path,
    greeter: &Path,
    n: usize,
    setup: Setup,
) -> Result<Figures> {
    let server = Server::start(livecov, scratch, &format!("{n}-{}", setup.name()))?;
    let mut replicas = Replicas(Vec::with_capacity(n));
    for _ in 0..n {
        let mut cmd = Command::new(greeter);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("LIVECOV_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("ADDR", "127.0.0.1:0")
            .env("LIVECOV_SERVER", &server.base)
            .env("LIVECOV_SERVICE", SERVICE)
            .env("LIVECOV_AGENT_ADDR", setup.agent_addr())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if setup == Setup::Channel {
            cmd.env("LIVECOV_CHANNEL", "on");
        }
        replicas.0.push(
            cmd.spawn()
                .with_context(|| format!("cannot run {}", greeter.display()))?,
        );
    }
    server.wait_for(n, setup, &mut replicas).await?;

    let snapshots = server
        .measure(
            &format!("/api/v1/services/{SERVICE}/snapshots"),
            n,
            args.warmup,
            args.snapshots,
        )
        .await?;
    let resets = if args.resets > 0 {
        Some(
            server
                .measure(
                    &format!("/api/v1/services/{SERVICE}/reset"),
                    n,
                    1,
                    args.resets,
                )
                .await?,
        )
    } else {
        None
    };
    for timed in std::iter::once(&snapshots).chain(&resets) {
        match setup {
            Setup::Pulled => ensure!(
                timed.answers == 0.0,
                "pulled: {} answers over a channel per request",
                timed.answers
            ),
            Setup::Channel => ensure!(
                timed.answers >= n as f64,
                "channel: {} answers over the channel per request, {n} instances",
                timed.answers
            ),
        }
    }

    tokio::time::sleep(SETTLE).await;
    let (server0, agents0, log0) = (
        server.cpu()?,
        replicas.cpu()?,
        Requests::in_log(&server.log)?,
    );
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.idle as u64)).await;
    let (server1, agents1, log1) = (
        server.cpu()?,
        replicas.cpu()?,
        Requests::in_log(&server.log)?,
    );
    let seconds = secs(start.elapsed());
    // Still all live, all read the same way.
    server.wait_for(n, setup, &mut replicas).await?;
    drop(replicas);
    server.server.stop()?;
    Ok(Figures {
        replicas: n,
        setup,
        snapshots,
        resets,
        idle: Idle {
            requests: log1.since(log0),
            seconds,
            server_cpu_ms: secs(server1 - server0) * 1e3,
            agents_cpu_ms: secs(agents1 - agents0) * 1e3,
        },
    })
}

fn report(args: &Args, figures: &[Figures]) -> String {
    let mut out = String::new();
    if let Some(f) = figures.first() {
        let _ = writeln!(
            out,
            "The greeter's build: {} blocks, {} covered in the last snapshot.\n",
            f.snapshots.blocks.0, f.snapshots.blocks.1
        );
    }
    let resets = match args.resets {
        0 => "no resets".to_string(),
        n => format!("{n} resets after 1 untimed"),
    };
    let _ = writeln!(
        out,
        "## Reads: {} snapshots after {} untimed, {resets} (p90 by nearest rank)\n",
        args.snapshots, args.warmup
    );
    let _ = writeln!(
        out,
        "| instances | read | snapshot median ms | p90 ms | server CPU ms per snapshot | \
         channel answers per snapshot | reset median ms | p90 ms | server CPU ms per reset |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for f in figures {
        let s = &f.snapshots;
        let reset = f.resets.as_ref().map_or("– | – | –".to_string(), |r| {
            format!(
                "{:.1} | {:.1} | {:.1}",
                median(&r.ms),
                percentile(&r.ms, 90.0),
                r.cpu_ms
            )
        });
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {reset} |",
            f.replicas,
            f.setup.name(),
            median(&s.ms),
            percentile(&s.ms, 90.0),
            s.cpu_ms,
            s.answers,
        );
    }
    let _ = writeln!(out, "\nchannel / pulled, median:\n");
    for pair in figures.chunks(2) {
        if let [pulled, channel] = pair {
            let ratio = |c: &Timed, p: &Timed| median(&c.ms) / median(&p.ms);
            let _ = write!(
                out,
                "- {} instances: snapshot {:.2}×",
                pulled.replicas,
                ratio(&channel.snapshots, &pulled.snapshots)
            );
            if let (Some(c), Some(p)) = (&channel.resets, &pulled.resets) {
                let _ = write!(out, ", reset {:.2}×", ratio(c, p));
            }
            let _ = writeln!(out);
        }
    }

    let _ = writeln!(
        out,
        "\n## Idle: {} s without a request from the bench, per minute\n",
        args.idle
    );
    let _ = writeln!(
        out,
        "| instances | read | requests | heartbeats | polls | other | per instance | server \
         CPU ms | replicas' CPU ms |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for f in figures {
        let i = &f.idle;
        let per_min = |x: f64| x * 60.0 / i.seconds;
        let r = i.requests;
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} | {:.0} |",
            f.replicas,
            f.setup.name(),
            per_min(r.total() as f64),
            per_min(r.heartbeats as f64),
            per_min(r.polls as f64),
            per_min((r.answers + r.other) as f64),
            per_min(r.total() as f64) / f.replicas as f64,
            per_min(i.server_cpu_ms),
            per_min(i.agents_cpu_ms),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_endpoint_from_the_servers_log() {
        let log = "\
2026-11-28T04:18:28Z  INFO livecov::server: livecov server ready listen=127.0.0.1:1
2026-11-28T04:18:30Z DEBUG request{method=POST uri=/api/v1/agents/ab/heartbeat version=HTTP/1.1}: tower_http::trace::on_request: started processing request
2026-11-28T04:18:30Z DEBUG request{method=POST uri=/api/v1/agents/ab/heartbeat version=HTTP/1.1}: tower_http::trace::on_response: finished processing request latency=0 ms status=200
2026-11-28T04:18:31Z DEBUG request{method=POST uri=/api/v1/agents/ab/channel version=HTTP/1.1}: tower_http::trace::on_request: started processing request
2026-11-28T04:18:32Z DEBUG request{method=POST uri=/api/v1/agents/ab/channel/1f version=HTTP/1.1}: tower_http::trace::on_request: started processing request
2026-11-28T04:18:33Z DEBUG request{method=POST uri=/api/v1/services/greeter/snapshots version=HTTP/1.1}: tower_http::trace::on_request: started processing request
";
        let r = Requests::in_text(log);
        assert_eq!(
            (r.heartbeats, r.polls, r.answers, r.other, r.total()),
            (1, 1, 1, 1, 4)
        );
    }
}
