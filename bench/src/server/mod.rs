//! The livecov server under load: snapshots of many sparse instances, the diff of two large
//! snapshots, and a burst of registrations and heartbeats, on SQLite and, when
//! `LIVECOV_BENCH_POSTGRES` names a PostgreSQL server, on PostgreSQL.
//!
//! The server is the real executable (`livecov server`), a separate process, started once per
//! part on a fresh database with `--pull-concurrency 64 --instance-ttl 1h` and `RUST_LOG=info`
//! (its log goes to a file). The agents are simulated in this process (`server::sim`), each on
//! a loopback port of its own: they serve a synthetic build's metadata and counters as a real
//! agent does, so on this machine they share its CPUs with the server.
//!
//! 1. Snapshot: one build in set mode, 500 files of 100 blocks (50,000 blocks), 200 instances
//!    registered over HTTP. Each instance's counters are sparse and clustered the way a real
//!    service's are: 50 of the 500 files (chosen at random, fixed) are hot. Every block of a
//!    hot file has a popularity `u^9`, `u` uniform in [0, 1) and fixed per block: a few blocks
//!    run on nearly every request, most rarely. One block in 20 of the other files is a rare
//!    path with popularity 0.01; the rest are never reached. An instance's counter is 1 where a
//!    pseudo-random draw of its own falls under the block's popularity: about 520 non-zero
//!    counters (1%) per instance, 96% of them in the hot files, a different set on every
//!    instance; about 4,400 blocks (8.8%) in their union, in 489 of the 500 files. One untimed
//!    snapshot, then the measured ones, one after the other.
//! 2. Diff: one build in set mode, 5,000 files of 200 blocks (1,000,000 blocks), one instance.
//!    The registration makes the server fetch the build's metadata in the background; the
//!    benchmark waits until the store holds it (polling every 10 ms) and reports how long that
//!    took. Snapshot A covers 30% of the blocks, each drawn at random; B another 30% drawn
//!    independently of A (so about 42% of the blocks differ); C is A with 1% of the blocks
//!    flipped. For each of the diffs A→B and A→C a new server process is started on that
//!    database: its first diff loads the build's metadata from the store (cold), the later
//!    ones find it in memory (warm). The steps of both diffs are also timed in this process,
//!    with the server's own functions, to show where the time goes.
//! 3. Registry load: 1,000 instances register (64 requests in flight), then every instance
//!    sends a heartbeat, 10 rounds over all 1,000. All of them name the same simulated agent's
//!    port and the 50,000-block build: the first registration makes the server fetch that
//!    build's metadata in the background, while the rest arrive.
//!
//! Times are wall times seen by the client in this process, from sending the request to the
//! end of the answer's body, over keep-alive connections. The server's CPU time is read from
//! `/proc/PID/stat` (user + system, in clock ticks of 10 ms, so it is given over many
//! requests), its peak resident memory from `VmHWM` in `/proc/PID/status`. With PostgreSQL,
//! the CPU time of every `postgres` process on the machine is read the same way (exited
//! backends counted in the postmaster's children's time): SQLite works inside the server's
//! process, PostgreSQL outside it.
//!
//! Bytes stored: the growth of the database over the measured snapshots, divided by their
//! number (SQLite: pages in use, `(page_count - freelist_count) × page_size`, read through a
//! separate connection, so that what is still in the WAL counts; PostgreSQL:
//! `pg_database_size`), and the same per table, indexes included (SQLite: the `dbstat`
//! table; PostgreSQL: `pg_total_relation_size`, TOAST included). Both grow by whole pages, so
//! a table whose rows are small (`snapshots`) may show no growth over a few snapshots.

mod diff;
mod registry;
mod report;
mod snapshot;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use instrumenter::Mode;
use server::sim::{SimAgent, SimBuild};
use sqlx::{Connection, Row};

use crate::common::{
    self, LiveServer, check_instances, cpu_of, median, own_cpu, percentile, secs, unit,
};

use diff::{Breakdown, DiffFigures, diff_breakdown};
use registry::LoadFigures;
use report::report;
use snapshot::{SnapshotFigures, hot_files, sparse_counters};

const SNAP_SERVICE: &str = "bench-snapshot";
const SNAP_INSTANCES: usize = 200;
const SNAP_FILES: usize = 500;
const SNAP_BLOCKS_PER_FILE: usize = 100;
const HOT_FILES: usize = 50;
/// A hot file's block has popularity `u^HOT_EXPONENT`, `u` uniform in [0, 1).
const HOT_EXPONENT: i32 = 9;
/// The share of the other files' blocks that are rare paths, and their popularity.
const RARE_SHARE: f64 = 0.05;
const RARE_POPULARITY: f64 = 0.01;

const DIFF_SERVICE: &str = "bench-diff";
const DIFF_FILES: usize = 5000;
const DIFF_BLOCKS_PER_FILE: usize = 200;
const DIFF_COVERED: f64 = 0.3;
/// The share of blocks C flips from A.
const DIFF_FLIPPED: f64 = 0.01;

const LOAD_SERVICE: &str = "bench-registry";
const LOAD_INSTANCES: usize = 1000;
const LOAD_CONCURRENCY: usize = 64;

/// The tables a snapshot writes to.
const SNAPSHOT_TABLES: [&str; 4] = [
    "snapshots",
    "snapshot_builds",
    "snapshot_files",
    "snapshot_instances",
];

/// The aims set for the server: a 200 × 50,000-block snapshot in under 2 s, under 1 byte stored
/// per block of a sparse snapshot, a 1,000,000-block diff in under 100 ms.
const AIM_SNAPSHOT_S: f64 = 2.0;
const AIM_BYTES_PER_BLOCK: f64 = 1.0;
const AIM_DIFF_MS: f64 = 100.0;

/// `livecov-bench server`'s flags.
#[derive(clap::Args)]
pub struct Options {
    /// Snapshots taken per database.
    #[arg(long, default_value_t = 10, value_parser = common::positive)]
    snapshots: usize,
    /// Diff requests per database.
    #[arg(long, default_value_t = 10, value_parser = common::positive)]
    diff_calls: usize,
    /// Heartbeat rounds of the registry load.
    #[arg(long = "heartbeat-rounds", default_value_t = 10, value_parser = common::positive)]
    rounds: usize,
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
            .pool_max_idle_per_host(LOAD_CONCURRENCY)
            .build()?,
        opts,
    };
    rt.block_on(bench.run_all())?;
    common::print_machine("server", ("livecov", &livecov))
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
        let snap_build = Arc::new(SimBuild::synthetic(
            Mode::Set,
            SNAP_FILES,
            SNAP_BLOCKS_PER_FILE,
            "snapshot",
        ));
        let counters = sparse_counters(&snap_build);
        let mut snaps = Vec::new();
        for kind in self.kinds() {
            eprintln!("snapshots on {}…", kind.name());
            snaps.push((kind, self.snapshots(kind, &snap_build, &counters).await?));
        }

        eprintln!("making the 1,000,000-block build…");
        let diff_build = Arc::new(SimBuild::synthetic(
            Mode::Set,
            DIFF_FILES,
            DIFF_BLOCKS_PER_FILE,
            "diff",
        ));
        let mut diffs = Vec::new();
        for kind in self.kinds() {
            eprintln!("diffs on {}…", kind.name());
            diffs.push((kind, self.diffs(kind, &diff_build).await?));
        }
        let breakdown = diff_breakdown(&diff_build)?;
        drop(diff_build);

        let mut loads = Vec::new();
        for kind in self.kinds() {
            eprintln!("registrations and heartbeats on {}…", kind.name());
            loads.push((kind, self.registry_load(kind, &snap_build).await?));
        }

        report(&self.opts, &counters, &snaps, &diffs, &breakdown, &loads);
        Ok(())
    }

    /// A fresh database of `kind` for `part`.
    async fn database(&self, kind: Kind, part: &str) -> Result<Database> {
        Database::create(kind, &self.scratch, self.postgres.as_deref(), part).await
    }

    async fn start_server(&self, db: &Database, log: &str) -> Result<LiveServer> {
        LiveServer::start(&self.livecov, &db.url, &self.scratch.join(log)).await
    }
}

/// Sends `req` and fails unless the answer has status `want`; reads the whole body.
async fn expect(req: reqwest::RequestBuilder, want: u16) -> Result<()> {
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await?;
    ensure!(
        status == want,
        "answer {status}, expected {want}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(())
}

/// Runs `request(0)` … `request(n - 1)` with `concurrency` of them in flight; returns the
/// latency of each in milliseconds and the wall time of all.
async fn load<F, Fut>(n: usize, concurrency: usize, request: F) -> Result<(Vec<f64>, Duration)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let request = Arc::new(request);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.min(n) {
        let (request, next) = (request.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(latencies);
                }
                let t = Instant::now();
                request(i).await?;
                latencies.push(secs(t.elapsed()) * 1e3);
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for w in workers {
        all.extend(w.await??);
    }
    Ok((all, start.elapsed()))
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Sqlite => "SQLite",
            Kind::Postgres => "PostgreSQL",
        }
    }
}

/// A database made for one part of the benchmark.
pub(crate) struct Database {
    pub(crate) kind: Kind,
    pub(crate) url: String,
    /// PostgreSQL: the admin URL and the database's name, to drop it afterwards.
    pub(crate) admin: Option<(String, String)>,
}

/// What the database holds, in bytes.
#[derive(Debug, Default)]
struct Sizes {
    total: i64,
    /// Per table of `SNAPSHOT_TABLES`, indexes included.
    tables: Vec<i64>,
    /// The LCC1 counters of every snapshot's builds.
    counters: i64,
}

impl Database {
    /// A fresh database of `kind` for `part`: SQLite in `scratch`, or a new database on the
    /// PostgreSQL server `postgres` names.
    pub(crate) async fn create(
        kind: Kind,
        scratch: &std::path::Path,
        postgres: Option<&str>,
        part: &str,
    ) -> Result<Database> {
        match kind {
            Kind::Sqlite => {
                let dir = scratch.join(part);
                std::fs::create_dir_all(&dir)?;
                Ok(Database {
                    kind,
                    url: format!("sqlite://{}", dir.join("livecov.db").display()),
                    admin: None,
                })
            }
            Kind::Postgres => {
                let admin = postgres.context("no PostgreSQL")?.to_string();
                let name = format!("livecov_bench_{}_{part}", std::process::id());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .context("connecting to LIVECOV_BENCH_POSTGRES")?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                    .execute(&mut conn)
                    .await?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .context("creating a database: the role needs CREATEDB")?;
                conn.close().await?;
                let (base, _) = admin
                    .rsplit_once('/')
                    .context("LIVECOV_BENCH_POSTGRES has no database part")?;
                Ok(Database {
                    kind,
                    url: format!("{base}/{name}"),
                    admin: Some((admin, name)),
                })
            }
        }
    }

    async fn sizes(&self) -> Result<Sizes> {
        let counters_sql = "SELECT COALESCE(SUM(LENGTH(counters)), 0) FROM snapshot_builds";
        match self.kind {
            Kind::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await?;
                let mut pragma = async |name: &str| -> Result<i64> {
                    Ok(sqlx::query(&format!("PRAGMA {name}"))
                        .fetch_one(&mut conn)
                        .await?
                        .get(0))
                };
                let page = pragma("page_size").await?;
                let total = (pragma("page_count").await? - pragma("freelist_count").await?) * page;
                let mut tables = Vec::new();
                for table in SNAPSHOT_TABLES {
                    let bytes: i64 = sqlx::query(
                        "SELECT COALESCE(SUM(d.pgsize), 0) FROM dbstat d
                         JOIN sqlite_master m ON m.name = d.name WHERE m.tbl_name = $1",
                    )
                    .bind(table)
                    .fetch_one(&mut conn)
                    .await?
                    .get(0);
                    tables.push(bytes);
                }
                let counters = sqlx::query(counters_sql).fetch_one(&mut conn).await?.get(0);
                conn.close().await?;
                Ok(Sizes {
                    total,
                    tables,
                    counters,
                })
            }
            Kind::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await?;
                let total = sqlx::query("SELECT pg_database_size(current_database())")
                    .fetch_one(&mut conn)
                    .await?
                    .get(0);
                let mut tables = Vec::new();
                for table in SNAPSHOT_TABLES {
                    let bytes: i64 = sqlx::query("SELECT pg_total_relation_size($1::regclass)")
                        .bind(table)
                        .fetch_one(&mut conn)
                        .await?
                        .get(0);
                    tables.push(bytes);
                }
                let counters = sqlx::query(counters_sql).fetch_one(&mut conn).await?.get(0);
                conn.close().await?;
                Ok(Sizes {
                    total,
                    tables,
                    counters,
                })
            }
        }
    }

    /// Waits until the store holds the metadata of build `id`.
    pub(crate) async fn wait_for_build(&self, id: &str) -> Result<()> {
        let sql = "SELECT COUNT(*) FROM builds WHERE build = $1";
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let n: i64 = match self.kind {
                Kind::Sqlite => {
                    let mut conn = sqlx::SqliteConnection::connect(&self.url).await?;
                    let n = sqlx::query(sql).bind(id).fetch_one(&mut conn).await?.get(0);
                    conn.close().await?;
                    n
                }
                Kind::Postgres => {
                    let mut conn = sqlx::PgConnection::connect(&self.url).await?;
                    let n = sqlx::query(sql).bind(id).fetch_one(&mut conn).await?.get(0);
                    conn.close().await?;
                    n
                }
            };
            if n > 0 {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the server did not store the metadata of build {id} within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The CPU time of the database's own processes: none for SQLite, which runs in the
    /// server's.
    pub(crate) fn cpu(&self) -> Result<Option<Duration>> {
        match self.kind {
            Kind::Sqlite => Ok(None),
            Kind::Postgres => postgres_cpu().map(Some),
        }
    }

    /// Drops a PostgreSQL database; SQLite's goes with the scratch directory.
    pub(crate) async fn remove(self) -> Result<()> {
        if let Some((admin, name)) = self.admin {
            let mut conn = sqlx::PgConnection::connect(&admin).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
        }
        Ok(())
    }
}

/// The CPU time of every `postgres` process on this machine, with that of their exited
/// children: the backends of closed connections count in the postmaster's.
pub(crate) fn postgres_cpu() -> Result<Duration> {
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir("/proc")? {
        let path = entry?.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        let is_postgres = stat
            .split_once(" (")
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .is_some_and(|(comm, _)| comm == "postgres");
        if is_postgres {
            total += cpu_of(&stat, true).unwrap_or_default();
        }
    }
    Ok(total)
}

/// Milliseconds of CPU from `before` to `after`, divided by `n`.
pub(crate) fn per_ms(before: Option<Duration>, after: Option<Duration>, n: f64) -> Option<f64> {
    Some(secs(after?.saturating_sub(before?)) * 1e3 / n)
}
