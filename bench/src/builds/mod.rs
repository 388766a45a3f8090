//! One service, many builds: what a mixed-build snapshot costs against a single-build one, and
//! what the cycle view over 50 builds costs against the export of one snapshot, on SQLite and,
//! when `LIVECOV_BENCH_POSTGRES` names a PostgreSQL server, on PostgreSQL.
//!
//! The server is the real executable (`livecov server`), as in `livecov-bench server`: a
//! separate process on a fresh database, `--pull-concurrency 64`, `RUST_LOG=info`, its log in a
//! file. The agents are simulated in this process (`server::sim`), each on a loopback port.
//!
//! The service's source (`code`): 500 files of 10 functions of 10 blocks (50,000 blocks, two
//! statements a block), in set mode. Every function has a text of its own (its hash), and a
//! build is derived from the one before it by editing functions (a new hash; one in three
//! keeps its block count, the others gain or lose a block, which moves the functions after it
//! in its file), adding functions at random places (which moves those after them) and moving
//! whole files' functions down a few lines (a line added at the top). Counters are sparse and
//! clustered as in the server benchmark: 50 files are hot, their blocks have a popularity
//! `u^9`; one block in 20 of the others is a rare path (0.01); a block's popularity belongs to
//! its function's text, so an unchanged function is as popular in every build. An instance's
//! counter is 1 where a draw of its own falls under the popularity (about 1% of the blocks).
//!
//! 1. Mixed-build snapshot: build B2 is B1 with 3% of its functions edited, 20 added and 25
//!    files moved. Two services on one server: `bench-single`, 200 instances of B1, and
//!    `bench-mixed`, 100 instances of B1 then 100 of B2 (registered last: the snapshot is seen
//!    against B2, and B1's counts are carried into its unchanged functions by
//!    `report::project::project`, once for the window and once for everything since the
//!    instances started). The B1 instances of `bench-mixed` are the first 100 agents of
//!    `bench-single` registered under other names. One untimed snapshot of each, then
//!    snapshots of the two in turn (the first of each pair alternating). The projection and
//!    the per-build summary (`server::snapshot::summarize`) are timed in this process too.
//! 2. Cycle: 50 builds, each from the one before with 50 functions edited (1%), 5 added
//!    every fifth build and 10 files moved every fourth. Each build runs on 4 instances
//!    (agents of their own, with counters of their own). When build k arrives, its instances
//!    register; every third build a snapshot is taken then, while the instances of build k−1
//!    are still live (a rolling update: two builds, 8 instances). Then the old instances stop
//!    their heartbeats and the server marks them gone (`--instance-ttl 1s`: the benchmark
//!    sends heartbeats for the live instances every 200 ms and waits until the service shows
//!    only the new ones; the old agents keep answering until then, so no pull fails), and a
//!    snapshot of build k alone is taken. Then each of the cycle's views is asked of a new
//!    server process on that database (cold: every build's metadata and every snapshot read
//!    from the store) and then 10 more times (warm): the summary and the Go profile of the
//!    cycle from the first snapshot (50 builds) and from the first snapshot of build 41 (10
//!    builds), and, for comparison, the Go profile of the last snapshot alone (one build, the
//!    same newest one). The steps of a cycle view are also timed in this process, on the same
//!    database, with the server's own functions.
//!
//! Every snapshot, cycle and profile is checked against what the builds' function texts say it
//! must be, worked out in `code` from the functions' keys (not with `report::project`): blocks
//! and statements covered, measured on the newest build or carried, functions by state, and
//! one profile line per block of the newest build.
//!
//! Times are wall times seen by the client, from sending the request to the end of the answer's
//! body, over keep-alive connections. CPU times are read from `/proc/PID/stat` (10 ms ticks),
//! the server's, and with PostgreSQL that of every `postgres` process.

mod code;
mod cycle;
mod mixed;
mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use sqlx::{Connection, Row};

use crate::common::{self, LiveServer, median, secs};
use crate::server::{Database, Kind, per_ms};

use code::{Changes, Code};

/// How many times each in-process step is timed.
const RUNS: usize = 5;

/// `livecov-bench builds`' flags.
#[derive(clap::Args)]
pub struct Options {
    /// Timed snapshots of each service (mixed and single build) per database.
    #[arg(long, default_value_t = 10, value_parser = common::positive)]
    snapshots: usize,
    /// Warm requests of each cycle view and export per database.
    #[arg(long, default_value_t = 10, value_parser = common::positive)]
    calls: usize,
}

pub fn run(opts: Options) -> Result<()> {
    let (livecov, scratch) = common::start()?;
    let postgres = std::env::var("LIVECOV_BENCH_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty());
    if postgres.is_none() {
        eprintln!("LIVECOV_BENCH_POSTGRES not set: PostgreSQL not measured");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let bench = Bench {
        livecov: livecov.clone(),
        scratch: scratch.path().to_path_buf(),
        postgres,
        client: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(600))
            .build()?,
        opts,
    };
    rt.block_on(bench.run_all())?;
    common::print_machine("builds", ("livecov", &livecov))
}

struct Bench {
    livecov: PathBuf,
    scratch: PathBuf,
    postgres: Option<String>,
    client: reqwest::Client,
    opts: Options,
}

impl Bench {
    fn kinds(&self) -> Vec<Kind> {
        let mut kinds = vec![Kind::Sqlite];
        if self.postgres.is_some() {
            kinds.push(Kind::Postgres);
        }
        kinds
    }

    async fn run_all(&self) -> Result<()> {
        let started = Instant::now();
        eprintln!("making builds B1 and B2…");
        let input = mixed::Input::new();
        let mut mixed = Vec::new();
        for kind in self.kinds() {
            eprintln!("mixed-build snapshots on {}…", kind.name());
            mixed.push((kind, self.mixed(kind, &input).await?));
        }
        let mixed_steps = mixed::breakdown(&input)?;

        eprintln!("making the cycle's 50 builds…");
        let cycle_input = cycle::Input::new();
        let mut cycles = Vec::new();
        for kind in self.kinds() {
            eprintln!("the cycle on {}…", kind.name());
            cycles.push((kind, self.cycle(kind, &cycle_input).await?));
        }
        let scaling = cycle::scaling(&cycle_input);
        report::report(&self.opts, &input, &mixed, &mixed_steps, &cycles, &scaling);
        eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
        Ok(())
    }

    /// A fresh database of `kind` for `part`.
    async fn database(&self, kind: Kind, part: &str) -> Result<Database> {
        Database::create(kind, &self.scratch, self.postgres.as_deref(), part).await
    }

    fn log(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    /// `GET path` `calls` times after a first (cold) one on a new server process over `db`;
    /// `check` checks the first answer, the others must be as long.
    async fn cold_warm(
        &self,
        db: &Database,
        log: &str,
        path: &str,
        mut check: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<Calls> {
        let server = LiveServer::start(&self.livecov, &db.url, &self.log(log)).await?;
        let start = Instant::now();
        let body = server.get(&self.client, path).await?;
        let cold_ms = secs(start.elapsed()) * 1e3;
        check(&body).with_context(|| format!("GET {path}"))?;
        let bytes = body.len();
        let (cpu0, db0) = (server.cpu()?, db.cpu()?);
        let mut warm_ms = Vec::new();
        for _ in 0..self.opts.calls {
            let start = Instant::now();
            let body = server.get(&self.client, path).await?;
            warm_ms.push(secs(start.elapsed()) * 1e3);
            ensure!(body.len() == bytes, "{path}: answers of different lengths");
        }
        let n = self.opts.calls as f64;
        let calls = Calls {
            cold_ms,
            warm_ms,
            bytes,
            server_cpu_ms: secs(server.cpu()? - cpu0) * 1e3 / n,
            db_cpu_ms: per_ms(db0, db.cpu()?, n),
            peak_rss: server.peak_rss()?,
        };
        server.stop()?;
        Ok(calls)
    }
}

/// One request asked once cold and `calls` times warm.
pub(super) struct Calls {
    pub(super) cold_ms: f64,
    pub(super) warm_ms: Vec<f64>,
    pub(super) bytes: usize,
    /// Per warm request.
    pub(super) server_cpu_ms: f64,
    pub(super) db_cpu_ms: Option<f64>,
    pub(super) peak_rss: u64,
}

/// Milliseconds `f` takes, with what it returns.
fn timed<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let start = Instant::now();
    let out = f();
    (secs(start.elapsed()) * 1e3, out)
}

/// Every value's median, per column: `runs[run][step]`.
fn medians(runs: &[Vec<f64>]) -> Vec<f64> {
    let steps = runs.first().map_or(0, Vec::len);
    (0..steps)
        .map(|s| median(&runs.iter().map(|r| r[s]).collect::<Vec<_>>()))
        .collect()
}

/// The merged counters of several instances of one build in set mode: 1 where any is.
fn union(counters: &[Vec<u32>]) -> Vec<u32> {
    let n = counters.first().map_or(0, Vec::len);
    (0..n)
        .map(|b| u32::from(counters.iter().any(|c| c[b] != 0)))
        .collect()
}
