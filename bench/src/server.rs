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

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use instrumenter::Mode;
use server::sim::{SimAgent, SimBuild};
use sqlx::{Connection, Row};

use crate::common::{
    self, LiveServer, check_instances, cpu_of, median, own_cpu, percentile, secs, unit,
};

const USAGE: &str = "livecov-bench server [--snapshots N] [--diff-calls N] [--heartbeat-rounds N]";

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

struct Options {
    snapshots: usize,
    diff_calls: usize,
    rounds: usize,
}

pub fn run(args: &[String]) -> Result<()> {
    let mut opts = Options {
        snapshots: 10,
        diff_calls: 10,
        rounds: 10,
    };
    for (name, value) in common::options(args, USAGE)? {
        match name.as_str() {
            "snapshots" => opts.snapshots = common::positive(&name, &value)?,
            "diff-calls" => opts.diff_calls = common::positive(&name, &value)?,
            "heartbeat-rounds" => opts.rounds = common::positive(&name, &value)?,
            _ => bail!("unknown option --{name}: usage: {USAGE}"),
        }
    }
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
        match kind {
            Kind::Sqlite => {
                let dir = self.scratch.join(part);
                std::fs::create_dir_all(&dir)?;
                Ok(Database {
                    kind,
                    url: format!("sqlite://{}", dir.join("livecov.db").display()),
                    admin: None,
                })
            }
            Kind::Postgres => {
                let admin = self.postgres.clone().context("no PostgreSQL")?;
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

    async fn start_server(&self, db: &Database, log: &str) -> Result<LiveServer> {
        LiveServer::start(
            &self.livecov,
            &db.url,
            &self.scratch.join(log),
            &self.client,
        )
        .await
    }

    async fn snapshots(
        &self,
        kind: Kind,
        build: &Arc<SimBuild>,
        counters: &[Vec<u32>],
    ) -> Result<SnapshotFigures> {
        let db = self.database(kind, "snapshot").await?;
        let server = self
            .start_server(&db, &format!("snapshot-{}.log", kind.name()))
            .await?;
        let mut agents = Vec::with_capacity(SNAP_INSTANCES);
        for (i, values) in counters.iter().enumerate() {
            let agent = SimAgent::start(build.clone(), None).await;
            agent.set_counters(values.clone());
            let body = agent.registration(SNAP_SERVICE, &format!("i{i:03}"));
            server
                .post(&self.client, "/api/v1/agents/register", &body, 200)
                .await?;
            agents.push(agent);
        }
        let path = format!("/api/v1/services/{SNAP_SERVICE}/snapshots");
        let empty = serde_json::json!({});
        // Untimed: the server fetches and stores the build's metadata if it has not yet.
        let (warm_up, _) = server.post(&self.client, &path, &empty, 201).await?;
        check_instances(&warm_up, SNAP_INSTANCES)?;
        let covered = (0..build.num_blocks())
            .filter(|&b| counters.iter().any(|c| c[b] != 0))
            .count() as i64;
        let before = db.sizes().await?;

        let mut figures = SnapshotFigures::default();
        let (cpu0, own0, db0) = (server.cpu()?, own_cpu()?, db.cpu()?);
        for _ in 0..self.opts.snapshots {
            let (answer, wall) = server.post(&self.client, &path, &empty, 201).await?;
            check_instances(&answer, SNAP_INSTANCES)?;
            ensure!(
                answer["totals"]["blocks_covered"].as_i64() == Some(covered),
                "a snapshot with {} blocks covered, {covered} expected",
                answer["totals"]["blocks_covered"]
            );
            figures.wall_ms.push(secs(wall) * 1e3);
            figures
                .pull_merge_ms
                .push(answer["duration_ms"].as_f64().unwrap_or(f64::NAN));
            let pulls: Vec<f64> = answer["instance_results"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["duration_ms"].as_f64())
                .collect();
            figures.pull_median.push(median(&pulls));
            figures
                .pull_max
                .push(pulls.iter().copied().fold(0.0, f64::max));
        }
        let n = self.opts.snapshots as f64;
        figures.server_cpu_ms = secs(server.cpu()? - cpu0) * 1e3 / n;
        figures.bench_cpu_ms = secs(own_cpu()? - own0) * 1e3 / n;
        figures.db_cpu_ms = per_ms(db0, db.cpu()?, n);
        figures.peak_rss = server.peak_rss()?;
        let after = db.sizes().await?;
        figures.stored = Stored::between(&before, &after, self.opts.snapshots);
        server.stop()?;
        for agent in agents {
            agent.stop();
        }
        db.remove().await?;
        Ok(figures)
    }

    async fn diffs(&self, kind: Kind, build: &Arc<SimBuild>) -> Result<DiffFigures> {
        let db = self.database(kind, "diff").await?;
        let log = format!("diff-{}.log", kind.name());
        let server = self.start_server(&db, &log).await?;
        let agent = SimAgent::start(build.clone(), None).await;
        let body = agent.registration(DIFF_SERVICE, "only");
        server
            .post(&self.client, "/api/v1/agents/register", &body, 200)
            .await?;
        // The registration made the server fetch the build's metadata in the background.
        let start = Instant::now();
        db.wait_for_build(&build.id).await?;
        let mut figures = DiffFigures {
            meta_fetch_ms: secs(start.elapsed()) * 1e3,
            ..DiffFigures::default()
        };

        let (a, b, c) = diff_counters(build.num_blocks());
        let path = format!("/api/v1/services/{DIFF_SERVICE}/snapshots");
        let empty = serde_json::json!({});
        let mut ids = Vec::new();
        for (i, values) in [&a, &b, &c].into_iter().enumerate() {
            agent.set_counters(values.clone());
            let (answer, took) = server.post(&self.client, &path, &empty, 201).await?;
            let took = secs(took);
            check_instances(&answer, 1)?;
            let covered = values.iter().filter(|&&v| v != 0).count() as i64;
            ensure!(
                answer["totals"]["blocks_covered"].as_i64() == Some(covered),
                "snapshot {i}: {} blocks covered, {covered} set",
                answer["totals"]["blocks_covered"]
            );
            figures.snapshot_ms.push(took * 1e3);
            figures.covered.push(covered);
            ids.push(answer["id"].as_i64().context("a snapshot without id")?);
        }
        let sizes = db.sizes().await?;
        figures.counters_bytes = sizes.counters as f64 / 3.0;
        server.stop()?;

        // Each diff first on a new server process, the build's metadata only in the store
        // (cold), then with the metadata in memory (warm).
        for (name, x, y, right) in [("A→B", 0, 1, &b), ("A→C", 0, 2, &c)] {
            let path = format!("/api/v1/snapshots/{}/diff/{}", ids[x], ids[y]);
            let server = self.start_server(&db, &log).await?;
            let start = Instant::now();
            let body = server.get(&self.client, &path).await?;
            let cold_ms = secs(start.elapsed()) * 1e3;
            let bytes = body.len();
            check_diff(&serde_json::from_slice(&body)?, &a, right)?;
            let mut warm_ms = Vec::new();
            for _ in 0..self.opts.diff_calls {
                let start = Instant::now();
                let body = server.get(&self.client, &path).await?;
                warm_ms.push(secs(start.elapsed()) * 1e3);
                ensure!(body.len() == bytes, "{path}: answers of different lengths");
            }
            figures.cases.push(DiffCase {
                name,
                cold_ms,
                warm_ms,
                bytes,
                changed: changed(&a, right),
                peak_rss: server.peak_rss()?,
            });
            server.stop()?;
        }
        agent.stop();
        db.remove().await?;
        Ok(figures)
    }

    async fn registry_load(&self, kind: Kind, build: &Arc<SimBuild>) -> Result<LoadFigures> {
        let db = self.database(kind, "registry").await?;
        let server = self
            .start_server(&db, &format!("registry-{}.log", kind.name()))
            .await?;
        let agent = SimAgent::start(build.clone(), None).await;
        let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..LOAD_INSTANCES)
                .map(|i| {
                    agent
                        .registration(LOAD_SERVICE, &format!("h{i:04}"))
                        .to_string()
                        .into_bytes()
                })
                .collect(),
        );
        let base = server.base.clone();
        let client = self.client.clone();

        let (cpu0, db0) = (server.cpu()?, db.cpu()?);
        let (register, register_wall) = load(LOAD_INSTANCES, LOAD_CONCURRENCY, {
            let (base, client, bodies) = (base.clone(), client.clone(), bodies.clone());
            move |i| {
                let req = client
                    .post(format!("{base}/api/v1/agents/register"))
                    .header("Content-Type", "application/json")
                    .body(bodies[i].clone());
                async move { expect(req, 200).await }
            }
        })
        .await?;
        let (cpu1, db1) = (server.cpu()?, db.cpu()?);

        let mut heartbeat = Vec::new();
        let mut heartbeat_wall = Duration::ZERO;
        for _ in 0..self.opts.rounds {
            let (lat, wall) = load(LOAD_INSTANCES, LOAD_CONCURRENCY, {
                let (base, client) = (base.clone(), client.clone());
                move |i| {
                    let req = client.post(format!("{base}/api/v1/agents/h{i:04}/heartbeat"));
                    async move { expect(req, 200).await }
                }
            })
            .await?;
            heartbeat.extend(lat);
            heartbeat_wall += wall;
        }
        let (cpu2, db2) = (server.cpu()?, db.cpu()?);
        let figures = LoadFigures {
            register,
            register_wall: secs(register_wall),
            register_cpu: secs(cpu1 - cpu0),
            register_db_cpu: per_ms(db0, db1, LOAD_INSTANCES as f64 / 1e3),
            heartbeat,
            heartbeat_wall: secs(heartbeat_wall),
            heartbeat_cpu: secs(cpu2 - cpu1),
            heartbeat_db_cpu: per_ms(db1, db2, (LOAD_INSTANCES * self.opts.rounds) as f64 / 1e3),
            peak_rss: server.peak_rss()?,
        };
        server.stop()?;
        agent.stop();
        db.remove().await?;
        Ok(figures)
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
enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sqlite => "SQLite",
            Kind::Postgres => "PostgreSQL",
        }
    }
}

/// A database made for one part of the benchmark.
struct Database {
    kind: Kind,
    url: String,
    /// PostgreSQL: the admin URL and the database's name, to drop it afterwards.
    admin: Option<(String, String)>,
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
    async fn wait_for_build(&self, id: &str) -> Result<()> {
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
    fn cpu(&self) -> Result<Option<Duration>> {
        match self.kind {
            Kind::Sqlite => Ok(None),
            Kind::Postgres => postgres_cpu().map(Some),
        }
    }

    /// Drops a PostgreSQL database; SQLite's goes with the scratch directory.
    async fn remove(self) -> Result<()> {
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
fn postgres_cpu() -> Result<Duration> {
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

fn changed(a: &[u32], b: &[u32]) -> (i64, i64) {
    let newly = a
        .iter()
        .zip(b)
        .filter(|(x, y)| **x == 0 && **y != 0)
        .count();
    let lost = a
        .iter()
        .zip(b)
        .filter(|(x, y)| **x != 0 && **y == 0)
        .count();
    (newly as i64, lost as i64)
}

fn check_diff(diff: &serde_json::Value, a: &[u32], b: &[u32]) -> Result<()> {
    let (newly, lost) = changed(a, b);
    let total = &diff["total"];
    ensure!(
        total["newly_covered"].as_i64() == Some(newly)
            && total["no_longer_covered"].as_i64() == Some(lost),
        "the diff says {} newly and {} no longer covered, expected {newly} and {lost}",
        total["newly_covered"],
        total["no_longer_covered"]
    );
    Ok(())
}

/// Whether each file of the snapshot build is hot: `HOT_FILES` files, at random.
fn hot_files() -> Vec<bool> {
    let mut order: Vec<usize> = (0..SNAP_FILES).collect();
    order.sort_by(|&x, &y| unit(&[0x407, x as u64]).total_cmp(&unit(&[0x407, y as u64])));
    let mut hot = vec![false; SNAP_FILES];
    for &f in &order[..HOT_FILES] {
        hot[f] = true;
    }
    hot
}

/// Every instance's counters for the snapshot build (see the module's documentation).
fn sparse_counters(build: &SimBuild) -> Vec<Vec<u32>> {
    let hot = hot_files();
    let mut popularity = Vec::with_capacity(build.num_blocks());
    for (f, &n) in build.shape.iter().enumerate() {
        for i in 0..n as usize {
            let b = (f * SNAP_BLOCKS_PER_FILE + i) as u64;
            popularity.push(if hot[f] {
                unit(&[0x909, b]).powi(HOT_EXPONENT)
            } else if unit(&[0x4a4e, b]) < RARE_SHARE {
                RARE_POPULARITY
            } else {
                0.0
            });
        }
    }
    (0..SNAP_INSTANCES)
        .map(|i| {
            popularity
                .iter()
                .enumerate()
                .map(|(b, &p)| u32::from(unit(&[0x1257, i as u64, b as u64]) < p))
                .collect()
        })
        .collect()
}

#[derive(Default)]
struct SnapshotFigures {
    wall_ms: Vec<f64>,
    /// The server's own `duration_ms`: from the request to the merged counters, before storing.
    pull_merge_ms: Vec<f64>,
    /// Per snapshot: the median and the slowest pull, as the server timed them (ms).
    pull_median: Vec<f64>,
    pull_max: Vec<f64>,
    /// CPU time per snapshot, over all the measured ones (a clock tick is 10 ms).
    server_cpu_ms: f64,
    bench_cpu_ms: f64,
    /// PostgreSQL's processes.
    db_cpu_ms: Option<f64>,
    peak_rss: u64,
    stored: Stored,
}

/// Bytes stored per snapshot, from the growth of the database over the measured snapshots.
#[derive(Default)]
struct Stored {
    total: f64,
    tables: Vec<f64>,
    counters: f64,
}

impl Stored {
    fn between(before: &Sizes, after: &Sizes, n: usize) -> Stored {
        let per = |b: i64, a: i64| (a - b) as f64 / n as f64;
        Stored {
            total: per(before.total, after.total),
            tables: before
                .tables
                .iter()
                .zip(&after.tables)
                .map(|(&b, &a)| per(b, a))
                .collect(),
            counters: per(before.counters, after.counters),
        }
    }
}

#[derive(Default)]
struct DiffFigures {
    /// From the registration's answer to the build's metadata in the store.
    meta_fetch_ms: f64,
    /// The snapshots A, B and C.
    snapshot_ms: Vec<f64>,
    /// Blocks covered in A, B and C.
    covered: Vec<i64>,
    /// LCC1 counters per snapshot, bytes.
    counters_bytes: f64,
    cases: Vec<DiffCase>,
}

struct DiffCase {
    name: &'static str,
    cold_ms: f64,
    warm_ms: Vec<f64>,
    bytes: usize,
    /// Blocks newly and no longer covered.
    changed: (i64, i64),
    /// Of the server process that made this diff.
    peak_rss: u64,
}

/// The diff's steps timed in this process with the server's own code, A against B: where a
/// warm and a cold diff spend their time, without a profiler.
struct Breakdown {
    runs: usize,
    /// Each step's median time for A→B and A→C, ms.
    steps: Vec<(&'static str, f64, f64)>,
    /// The build's metadata as agents serve it and the store keeps it, bytes.
    meta_gz: usize,
}

fn diff_breakdown(build: &SimBuild) -> Result<Breakdown> {
    use server::{diff, lcc, meta};
    const RUNS: usize = 5;
    let n = build.num_blocks();
    let (a, b, c) = diff_counters(n);
    let encode = |v: &[u32]| lcc::encode(&build.id, Mode::Set, &build.shape, v);
    let (ea, eb, ec) = (encode(&a), encode(&b), encode(&c));
    let decode = |body: &[u8]| -> Result<Vec<u32>> {
        let sparse = lcc::decode(body, &build.id, &build.shape)?;
        let mut v = vec![0u32; n];
        for (i, x) in sparse.nonzero {
            v[i as usize] = x;
        }
        Ok(v)
    };
    // Per step, the times of each run for A→B and A→C.
    let mut times: Vec<(&'static str, Vec<f64>, Vec<f64>)> = [
        "cold only: load the stored metadata (gunzip, parse), as the server does",
        "not in a diff: the build id check of metadata first fetched from an agent (SHA-256)",
        "decode both snapshots' counters",
        "compare block by block (`diff_build`)",
        "serialize the answer to JSON",
    ]
    .into_iter()
    .map(|name| (name, Vec::new(), Vec::new()))
    .collect();
    for _ in 0..RUNS {
        let start = Instant::now();
        let parsed = meta::Build::from_stored_gzip(build.gz.clone(), &build.id)
            .map_err(|e| anyhow::anyhow!("the build's metadata: {e}"))?;
        let load = secs(start.elapsed()) * 1e3;
        let start = Instant::now();
        ensure!(parsed.meta.build_id() == build.id, "the build id changed");
        let id = secs(start.elapsed()) * 1e3;
        for (right, body) in [(1, &eb), (2, &ec)] {
            let mut took = Vec::new();
            let start = Instant::now();
            let (da, db) = (decode(&ea)?, decode(body)?);
            took.push(secs(start.elapsed()) * 1e3);
            let start = Instant::now();
            let d = diff::diff_build(&parsed, &da, &db, true);
            took.push(secs(start.elapsed()) * 1e3);
            let start = Instant::now();
            let json = serde_json::to_vec(&d)?;
            took.push(secs(start.elapsed()) * 1e3);
            ensure!(json.len() > 1, "an empty diff");
            for (i, ms) in [load, id].into_iter().chain(took).enumerate() {
                let (_, ab, ac) = &mut times[i];
                if right == 1 { ab } else { ac }.push(ms);
            }
        }
    }
    Ok(Breakdown {
        runs: RUNS,
        steps: times
            .into_iter()
            .map(|(name, ab, ac)| (name, median(&ab), median(&ac)))
            .collect(),
        meta_gz: build.gz.len(),
    })
}

/// The counters of snapshots A, B and C of the diff build (see the module's documentation).
fn diff_counters(n: usize) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let draw = |seed: u64, p: f64| -> Vec<u32> {
        (0..n)
            .map(|b| u32::from(unit(&[seed, b as u64]) < p))
            .collect()
    };
    let (a, b) = (draw(0xA, DIFF_COVERED), draw(0xB, DIFF_COVERED));
    let flips = draw(0xC, DIFF_FLIPPED);
    let c = a.iter().zip(&flips).map(|(x, f)| x ^ f).collect();
    (a, b, c)
}

struct LoadFigures {
    register: Vec<f64>,
    register_wall: f64,
    register_cpu: f64,
    /// PostgreSQL's processes, ms per 1,000 requests.
    register_db_cpu: Option<f64>,
    heartbeat: Vec<f64>,
    heartbeat_wall: f64,
    heartbeat_cpu: f64,
    heartbeat_db_cpu: Option<f64>,
    peak_rss: u64,
}

/// Milliseconds of CPU from `before` to `after`, divided by `n`.
fn per_ms(before: Option<Duration>, after: Option<Duration>, n: f64) -> Option<f64> {
    Some(secs(after?.saturating_sub(before?)) * 1e3 / n)
}

fn ms_or_dash(ms: Option<f64>) -> String {
    ms.map_or("–".to_string(), |ms| format!("{ms:.0}"))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn fmax(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn yes(met: bool) -> &'static str {
    if met { "yes" } else { "**no**" }
}

fn report(
    opts: &Options,
    counters: &[Vec<u32>],
    snaps: &[(Kind, SnapshotFigures)],
    diffs: &[(Kind, DiffFigures)],
    breakdown: &Breakdown,
    loads: &[(Kind, LoadFigures)],
) {
    let hot = hot_files();
    let per_instance: Vec<f64> = counters
        .iter()
        .map(|c| c.iter().filter(|&&v| v != 0).count() as f64)
        .collect();
    let in_hot: usize = counters
        .iter()
        .map(|c| {
            c.chunks(SNAP_BLOCKS_PER_FILE)
                .zip(&hot)
                .filter(|(_, h)| **h)
                .map(|(c, _)| c.iter().filter(|&&v| v != 0).count())
                .sum::<usize>()
        })
        .sum();
    let blocks = SNAP_FILES * SNAP_BLOCKS_PER_FILE;
    let merged: Vec<bool> = (0..blocks)
        .map(|b| counters.iter().any(|c| c[b] != 0))
        .collect();
    let union = merged.iter().filter(|&&m| m).count();
    let files_covered = merged
        .chunks(SNAP_BLOCKS_PER_FILE)
        .filter(|f| f.iter().any(|&m| m))
        .count();

    println!("## Snapshot: {SNAP_INSTANCES} instances × {blocks} blocks\n");
    println!(
        "Input: one build in set mode, {SNAP_FILES} files × {SNAP_BLOCKS_PER_FILE} blocks, \
         {HOT_FILES} of the files hot.\n"
    );
    println!(
        "| instances | non-zero counters per instance, median (min–max) | of them in hot files | \
         covered blocks, all instances merged | files with a covered block |"
    );
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {SNAP_INSTANCES} | {:.0} = {:.1}% ({:.0}–{:.0}) | {:.1}% | {union} = {:.1}% | \
         {files_covered} |",
        median(&per_instance),
        100.0 * median(&per_instance) / blocks as f64,
        per_instance.iter().copied().fold(f64::INFINITY, f64::min),
        fmax(&per_instance),
        100.0 * in_hot as f64 / per_instance.iter().sum::<f64>(),
        100.0 * union as f64 / blocks as f64,
    );
    println!(
        "\nTime, after 1 untimed snapshot, {} snapshots one after the other:\n",
        opts.snapshots
    );
    println!(
        "| database | wall median ms | wall max ms | pulled and merged (server's `duration_ms`), \
         median ms | one pull, median / slowest ms | server CPU ms per snapshot | PostgreSQL's \
         CPU ms per snapshot | this process's CPU ms per snapshot (agents, client) | server peak \
         RSS MB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, s) in snaps {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} / {:.0} | {:.0} | {} | {:.0} | {:.0} |",
            kind.name(),
            median(&s.wall_ms),
            fmax(&s.wall_ms),
            median(&s.pull_merge_ms),
            median(&s.pull_median),
            median(&s.pull_max),
            s.server_cpu_ms,
            ms_or_dash(s.db_cpu_ms),
            s.bench_cpu_ms,
            mb(s.peak_rss),
        );
    }
    println!(
        "\nBytes stored per snapshot: the database's growth over the {} snapshots, divided by {}; \
         per table, indexes included:\n",
        opts.snapshots, opts.snapshots
    );
    print!("| database | bytes | per block |");
    for t in SNAPSHOT_TABLES {
        print!(" `{t}` |");
    }
    println!(" LCC1 counters (in `snapshot_builds`) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, s) in snaps {
        print!(
            "| {} | {:.0} | {:.2} |",
            kind.name(),
            s.stored.total,
            s.stored.total / blocks as f64
        );
        for t in &s.stored.tables {
            print!(" {t:.0} |");
        }
        println!(" {:.0} |", s.stored.counters);
    }

    let nd = DIFF_FILES * DIFF_BLOCKS_PER_FILE;
    println!("\n## Diff: two snapshots of {nd} blocks\n");
    if let Some((_, d)) = diffs.first() {
        println!(
            "Input: one build in set mode, {DIFF_FILES} files × {DIFF_BLOCKS_PER_FILE} blocks \
             (metadata: {} bytes of gzip JSON), one instance; covered blocks: A {}, B {}, C {}; \
             LCC1 counters: {:.0} bytes per snapshot.\n",
            breakdown.meta_gz, d.covered[0], d.covered[1], d.covered[2], d.counters_bytes
        );
    }
    println!(
        "| database | diff | blocks newly / no longer covered | answer bytes | first call, \
         cold ms | warm median ms | warm max ms | server peak RSS MB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (kind, d) in diffs {
        for case in &d.cases {
            println!(
                "| {} | {} | {} / {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
                kind.name(),
                case.name,
                case.changed.0,
                case.changed.1,
                case.bytes,
                case.cold_ms,
                median(&case.warm_ms),
                fmax(&case.warm_ms),
                mb(case.peak_rss),
            );
        }
    }
    println!("\nThe {nd}-block build's metadata and snapshots (one instance), wall ms:\n");
    println!(
        "| database | from the registration's answer to the metadata stored (fetched in the \
         background) | snapshot A | B | C |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (kind, d) in diffs {
        let snaps: Vec<String> = d.snapshot_ms.iter().map(|s| format!("{s:.0}")).collect();
        println!(
            "| {} | {:.0} | {} |",
            kind.name(),
            d.meta_fetch_ms,
            snaps.join(" | ")
        );
    }
    println!(
        "\nThe steps of a diff, timed in this process with the server's own functions, median \
         of {} runs:\n",
        breakdown.runs
    );
    println!("| step | A→B ms | A→C ms |");
    println!("|---|---:|---:|");
    for (name, ab, ac) in &breakdown.steps {
        println!("| {name} | {ab:.0} | {ac:.0} |");
    }

    println!(
        "\n## Registrations and heartbeats: {LOAD_INSTANCES} instances, {LOAD_CONCURRENCY} \
         requests in flight\n"
    );
    println!(
        "| database | requests | p50 ms | p99 ms | max ms | requests/s | server CPU ms per 1,000 \
         requests | PostgreSQL's CPU ms per 1,000 requests | server peak RSS MB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, l) in loads {
        for (what, lat, wall, cpu, db_cpu) in [
            (
                "registrations",
                &l.register,
                l.register_wall,
                l.register_cpu,
                l.register_db_cpu,
            ),
            (
                "heartbeats",
                &l.heartbeat,
                l.heartbeat_wall,
                l.heartbeat_cpu,
                l.heartbeat_db_cpu,
            ),
        ] {
            println!(
                "| {} | {} {what} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {} | {:.0} |",
                kind.name(),
                lat.len(),
                percentile(lat, 50.0),
                percentile(lat, 99.0),
                fmax(lat),
                lat.len() as f64 / wall,
                cpu * 1e3 / (lat.len() as f64 / 1e3),
                ms_or_dash(db_cpu),
                mb(l.peak_rss),
            );
        }
    }

    println!("\n## Aims\n");
    println!("| aim | database | measured | met |");
    println!("|---|---|---:|---|");
    for (kind, s) in snaps {
        let slowest = fmax(&s.wall_ms);
        println!(
            "| {SNAP_INSTANCES} × {blocks}-block snapshot under {AIM_SNAPSHOT_S} s | {} | \
             {:.0} ms median, {slowest:.0} ms slowest | {} |",
            kind.name(),
            median(&s.wall_ms),
            yes(slowest < AIM_SNAPSHOT_S * 1e3)
        );
    }
    for (kind, s) in snaps {
        let per = s.stored.total / blocks as f64;
        println!(
            "| under {AIM_BYTES_PER_BLOCK} byte stored per block, sparse snapshot | {} | {per:.2} \
             | {} |",
            kind.name(),
            yes(per < AIM_BYTES_PER_BLOCK)
        );
    }
    for (kind, d) in diffs {
        for case in &d.cases {
            for (when, ms) in [("cold", case.cold_ms), ("warm", median(&case.warm_ms))] {
                println!(
                    "| {nd}-block diff under {AIM_DIFF_MS} ms: {}, {when} | {} | {ms:.0} ms | {} |",
                    case.name,
                    kind.name(),
                    yes(ms < AIM_DIFF_MS)
                );
            }
        }
    }
}
