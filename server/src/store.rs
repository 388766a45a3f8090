//! The durable store: SQLite (embedded, the default) or PostgreSQL, through sqlx's `Any`
//! driver so that one set of queries serves both.
//!
//! The SQL here is the common subset of the two dialects: `$n` parameters (SQLite reads them
//! as positional), `BIGINT` columns decoded as `i64`, `ON CONFLICT`, `RETURNING`. Where the
//! schemas differ (key and blob types) the migrations differ: `migrations/sqlite`,
//! `migrations/postgres`. Times are milliseconds since the Unix epoch.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, FromRow, Row};

use crate::meta::Build;
use crate::types::{InstanceResult, Totals};

mod channels;
mod rounds;
pub use channels::{AgentReply, Relayed};
pub use rounds::{BoundaryKind, BoundaryRow, Record, SessionRow};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// When a write last failed because the database could not take it (milliseconds since
    /// the epoch; 0: never, or a write succeeded since). A database can answer a small write
    /// and still refuse the ones that need room (a full disk reuses the space it has for a
    /// while), so the health check asks this too.
    write_failed: Arc<AtomicI64>,
}

/// How long after a write failed the store is reported down, unless a write succeeds.
const FAILED_WRITE_MEMORY_MS: i64 = 30_000;

/// Why the store did not do what it was asked. The database's own error is kept as the
/// source: logged by the server, never sent to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is not answering: worth retrying later.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The database refused a statement.
    #[error("database error")]
    Query(#[source] sqlx::Error),
    /// The database URL cannot work, and why.
    #[error("{0}")]
    Url(String),
    /// The directory of a SQLite file could not be made.
    #[error("creating {}", .0.display())]
    Directory(std::path::PathBuf, #[source] std::io::Error),
    #[error("migrating the database")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The database answers, but writes failed lately (a full disk) and none succeeded since.
    #[error("database unavailable: writes are failing (a full disk?)")]
    WritesFailing,
}

impl StoreError {
    /// Whether the database is away (worth retrying) rather than refusing.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::WritesFailing)
    }

    /// Whether the database could not store a write for want of room or for an I/O error:
    /// SQLite's full disk and I/O errors, PostgreSQL's disk full. Unlike a busy or locked
    /// database, such a database may still take the health check's one-row write.
    fn lacks_room(&self) -> bool {
        let StoreError::Unavailable(sqlx::Error::Database(db)) = self else {
            return false;
        };
        db.code().is_some_and(|code| {
            code == "13" || code == "53100" || code.parse::<u32>().is_ok_and(|c| c & 0xff == 10)
        })
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        let unavailable = match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => match db.code() {
                // PostgreSQL: connection exceptions (08), operator intervention such as a
                // shutdown (57), insufficient resources (53). SQLite: busy, locked, I/O errors, a full disk.
                Some(code) => {
                    code.starts_with("08")
                        || code.starts_with("57")
                        || code.starts_with("53")
                        || matches!(code.as_ref(), "5" | "6" | "10" | "13" | "261" | "517")
                        || code.parse::<u32>().is_ok_and(|c| c & 0xff == 10)
                }
                None => false,
            },
            _ => false,
        };
        if unavailable {
            StoreError::Unavailable(e)
        } else {
            StoreError::Query(e)
        }
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What an agent says when it registers, with the address the server will pull from.
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub id: String,
    pub service: String,
    pub build: String,
    pub mode: String,
    pub hostname: String,
    pub pid: i64,
    pub start_time: String,
    pub go_version: String,
    pub address: String,
    /// The agent's per-process secret; None from agents that have none.
    pub secret: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// How an instance's last counters came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its agent delivered them as the process ended.
    Now,
    /// Collected from the directory its agent kept them in (`LIVECOV_DIR`).
    Collected,
}

/// What became of a registration or a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Accepted,
    /// No live instance has that id (heartbeats only).
    Unknown,
    /// The instance is registered with a secret, and this is not it: nothing changed.
    WrongSecret,
}

/// What became of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registering {
    Accepted,
    /// The instance is registered with a secret, and this is not it: nothing changed.
    WrongSecret,
    /// A new service past the quota of services: nothing changed.
    TooManyServices,
    /// A new instance past the quota of live instances of its service: nothing changed.
    TooManyInstances,
}

/// How many services, and live instances per service, a registration may bring about.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub services: u64,
    pub instances: u64,
}

#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub id: String,
    pub service: String,
    pub build: String,
    pub mode: String,
    pub hostname: String,
    pub pid: i64,
    pub start_time: String,
    pub go_version: String,
    pub address: String,
    pub registered_at: i64,
    pub last_seen: i64,
    pub live: bool,
    pub gone_at: Option<i64>,
    /// Presented on pulls; never shown.
    pub secret: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// When its process was known to have ended (its last counters delivered or collected).
    pub exited_at: Option<i64>,
    /// When its agent last polled a server for requests (`crate::channel`).
    pub channel_seen: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct SnapshotRow {
    pub id: i64,
    pub service: String,
    pub label: Option<String>,
    pub reset: bool,
    pub window: Window,
    pub taken_at: i64,
    pub duration_ms: i64,
    pub instances_ok: i64,
    pub instances_failed: i64,
    pub totals: Totals,
    pub deploy: Totals,
    /// The build the totals are against (the newest of its builds); `None` for snapshots
    /// stored before it was recorded.
    pub build: Option<String>,
    /// How many builds its instances ran.
    pub builds: i64,
    /// The selector that chose its instances, canonical; None: every live instance.
    pub selector: Option<String>,
}

/// What a snapshot's counters measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// `snapshot`, `reset` or `session`.
    pub kind: String,
    pub session: Option<String>,
    /// When the window began; None: when each instance started.
    pub since: Option<i64>,
}

/// One build's part of a snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotBuild {
    pub build: String,
    /// The build's mode, blocks and statements (from its metadata; not written by
    /// `insert_snapshot`).
    pub mode: String,
    pub blocks: i64,
    pub stmts: i64,
    pub instances: i64,
    pub blocks_covered: i64,
    pub stmts_covered: i64,
    /// Merged counters of the window, LCC1.
    pub counters: Vec<u8>,
    pub deploy_blocks_covered: i64,
    pub deploy_stmts_covered: i64,
    /// Merged counters since each instance started, LCC1.
    pub deploy_counters: Vec<u8>,
    /// Per file with at least one covered block: (file index, blocks covered, stmts covered).
    pub files: Vec<(i64, i64, i64)>,
}

/// Everything a snapshot stores, written in one transaction.
#[derive(Debug, Clone)]
pub struct NewSnapshot {
    pub service: String,
    pub label: Option<String>,
    pub reset: bool,
    pub window: Window,
    pub taken_at: i64,
    pub duration_ms: i64,
    pub totals: Totals,
    pub deploy: Totals,
    /// The build `totals` and `deploy` are against: one of `builds`.
    pub target: String,
    /// The selector that chose the instances, canonical.
    pub selector: Option<String>,
    pub builds: Vec<SnapshotBuild>,
    pub instances: Vec<InstanceResult>,
}

/// A service as listed: its instances, the builds its live instances run, and its latest
/// snapshot.
#[derive(Debug, Clone)]
pub struct ServiceRow {
    pub name: String,
    pub created_at: i64,
    pub live_instances: i64,
    pub instances: i64,
    /// Distinct, sorted.
    pub builds: Vec<String>,
    pub latest: Option<SnapshotRow>,
}

/// Turns a `--database-url` into sqlx connect options. A bare path is a SQLite file.
fn connect_options(url: &str) -> Result<(AnyConnectOptions, Backend)> {
    let (url, backend) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        (url.to_string(), Backend::Postgres)
    } else {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if url.contains("://") && !url.starts_with("sqlite:") {
            return Err(StoreError::Url(format!(
                "database URL {url:?}: use postgres://… or sqlite://PATH (or a plain file path)"
            )));
        }
        let (file, query) = path.split_once('?').unwrap_or((path, ""));
        if file.is_empty() || file.contains(":memory:") || query.contains("mode=memory") {
            return Err(StoreError::Url(format!(
                "database URL {url:?}: snapshots are meant to last; give a file (sqlite://PATH) \
                 or a PostgreSQL URL"
            )));
        }
        if let Some(dir) = Path::new(file)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Directory(dir.to_path_buf(), e))?;
        }
        let query = if query.contains("mode=") {
            query.to_string()
        } else if query.is_empty() {
            "mode=rwc".to_string()
        } else {
            format!("{query}&mode=rwc")
        };
        (format!("sqlite://{file}?{query}"), Backend::Sqlite)
    };
    let opts = AnyConnectOptions::from_str(&url).map_err(StoreError::Query)?;
    Ok((opts, backend))
}

impl Store {
    /// Connects, and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (opts, backend) = connect_options(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; waiting on a busy
                        // database beats failing.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .after_release(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // A COMMIT that fails (disk full, an I/O error) leaves SQLite's
                        // transaction open; back in the pool, such a connection would read a
                        // stale snapshot and hold the write lock for good. Ending whatever is
                        // open on release (an error here means none was) keeps every
                        // connection in the pool fresh.
                        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                    }
                    Ok(true)
                })
            })
            .connect_with(opts)
            .await?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(StoreError::Migrate)?;
        Ok(Store {
            pool,
            backend,
            write_failed: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Checks that the database answers and takes writes: a database that reads but cannot
    /// write (a full disk, a lock held for good) fails here, and nothing is asked of agents.
    /// A write that failed for want of room, with none succeeding since, counts for
    /// [`FAILED_WRITE_MEMORY_MS`].
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("UPDATE health SET checked_at = $1 WHERE id = 1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        let failed = self.write_failed.load(Ordering::Relaxed);
        if failed != 0 && now_ms() - failed < FAILED_WRITE_MEMORY_MS {
            return Err(StoreError::WritesFailing);
        }
        Ok(())
    }

    /// Notes what became of a write: one that failed for want of room marks the store down
    /// for [`ping`](Store::ping), a success clears that.
    fn wrote<T>(&self, r: Result<T>) -> Result<T> {
        match &r {
            Ok(_) => self.write_failed.store(0, Ordering::Relaxed),
            Err(e) if e.lacks_room() => self.write_failed.store(now_ms(), Ordering::Relaxed),
            Err(_) => {}
        }
        r
    }

    /// The stored metadata (gzip JSON) of `build`.
    pub async fn build_meta(&self, build: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT meta FROM builds WHERE build = $1")
            .bind(build)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("meta")).transpose()?)
    }

    /// What the stored `build` left uninstrumented (`livecov build --exclude`), if anything
    /// and if it is stored.
    pub async fn build_excluded(
        &self,
        build: &str,
    ) -> Result<Option<report::types::BuildExcluded>> {
        let row = sqlx::query("SELECT excluded FROM builds WHERE build = $1")
            .bind(build)
            .fetch_optional(&self.pool)
            .await?;
        let text: Option<String> = row.map(|r| r.try_get("excluded")).transpose()?.flatten();
        // Written by insert_build from a value that serialized: one that does not parse back
        // is as good as none.
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// The stored metadata of `build` in its binary form (`LCM1`): `None` if the build is not
    /// stored, `Some(None)` if it is but its binary form is not (a row stored before there
    /// was one).
    pub async fn build_bin(&self, build: &str) -> Result<Option<Option<Vec<u8>>>> {
        let row = sqlx::query("SELECT meta_bin FROM builds WHERE build = $1")
            .bind(build)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("meta_bin")).transpose()?)
    }

    /// Writes the binary form of a stored build's metadata, derived from its gzip JSON.
    pub async fn set_build_bin(&self, build: &str, bin: &[u8]) -> Result<()> {
        let r = sqlx::query("UPDATE builds SET meta_bin = $1 WHERE build = $2")
            .bind(bin)
            .bind(build)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from);
        self.wrote(r)
    }

    /// Stores a build's metadata, as served (`gz`, gzip JSON) and in its binary form (`bin`,
    /// `LCM1`), unless it is stored already; answers whether it was new.
    pub async fn insert_build(&self, b: &Build, gz: &[u8], bin: &[u8]) -> Result<bool> {
        let r = self.insert_build_now(b, gz, bin).await;
        self.wrote(r)
    }

    async fn insert_build_now(&self, b: &Build, gz: &[u8], bin: &[u8]) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO builds (build, mode, files, blocks, stmts, meta, meta_bin, created_at,
                                 excluded)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (build) DO NOTHING
             RETURNING id",
        )
        .bind(&b.id)
        .bind(b.mode().as_str())
        .bind(b.shape.len() as i64)
        .bind(b.num_blocks() as i64)
        .bind(b.num_stmts() as i64)
        .bind(gz)
        .bind(bin)
        .bind(now_ms())
        .bind(
            b.excluded
                .as_ref()
                .map(|e| serde_json::to_string(e).expect("serializes")),
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else {
            return Ok(false);
        };
        let id: i64 = row.try_get("id")?;
        for (c, chunk) in b.meta.files.chunks(ROWS_PER_INSERT).enumerate() {
            let sql = insert_rows(
                "build_files (build_id, file_index, name, blocks, stmts)",
                1,
                4,
                chunk.len(),
            );
            let mut q = sqlx::query(&sql).bind(id);
            for (i, f) in chunk.iter().enumerate() {
                let index = c * ROWS_PER_INSERT + i;
                q = q
                    .bind(index as i64)
                    .bind(f.name.as_str())
                    .bind(f.blocks.len() as i64)
                    .bind(b.file_stmts[index] as i64);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Stores the sources (gzip) of files of `build`, by file index, except those stored
    /// already; answers how many were new. The build must be stored.
    pub async fn insert_sources(&self, build: &str, files: &[(usize, Vec<u8>)]) -> Result<u64> {
        // Read before the transaction (a build's id never changes), which then starts with a
        // write: under SQLite a transaction that reads and then writes can fail instead of
        // waiting for another writer.
        let row = sqlx::query("SELECT id FROM builds WHERE build = $1")
            .bind(build)
            .fetch_one(&self.pool)
            .await?;
        let id: i64 = row.try_get("id")?;
        let mut tx = self.pool.begin().await?;
        let mut stored = 0;
        // Sources are large: a few per statement keeps statements small.
        for (index, gz) in files {
            stored += sqlx::query(
                "INSERT INTO build_sources (build_id, file_index, source) VALUES ($1, $2, $3)
                 ON CONFLICT (build_id, file_index) DO NOTHING",
            )
            .bind(id)
            .bind(*index as i64)
            .bind(gz.as_slice())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// The names of the files of `builds` whose sources are stored.
    pub async fn source_files(&self, builds: &[String]) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for build in builds {
            let rows = sqlx::query(
                "SELECT f.name FROM build_sources s
                 JOIN builds b ON b.id = s.build_id
                 JOIN build_files f ON f.build_id = s.build_id AND f.file_index = s.file_index
                 WHERE b.build = $1",
            )
            .bind(build)
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                names.push(r.try_get("name")?);
            }
        }
        Ok(names)
    }

    /// The stored source (gzip) of file `name` of `build`.
    pub async fn source(&self, build: &str, name: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query(
            "SELECT s.source FROM build_sources s
             JOIN builds b ON b.id = s.build_id
             JOIN build_files f ON f.build_id = s.build_id AND f.file_index = s.file_index
             WHERE b.build = $1 AND f.name = $2",
        )
        .bind(build)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("source")).transpose()?)
    }

    /// Records a registration: the service if new, the instance (again) live. An instance
    /// registered with a secret is changed only by a registration with the same secret.
    pub async fn register(&self, i: &NewInstance, quota: Quota, now: i64) -> Result<Registering> {
        let r = self.register_now(i, quota, now).await;
        self.wrote(r)
    }

    async fn register_now(&self, i: &NewInstance, quota: Quota, now: i64) -> Result<Registering> {
        let mut tx = self.pool.begin().await?;
        let held = match claim(&mut tx, i, quota, true, now).await? {
            Ok(held) => held,
            Err(refused) => return Ok(refused),
        };
        if held.is_none() {
            let live: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM instances WHERE service = $1 AND state = 'live'",
            )
            .bind(&i.service)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if live as u64 >= quota.instances {
                return Ok(Registering::TooManyInstances);
            }
        }
        bind_instance(
            sqlx::query(
                "INSERT INTO instances (id, service, build, mode, hostname, pid, start_time,
                     go_version, address, registered_at, last_seen, state, gone_at, secret, labels)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, 'live', NULL, $11, $12)
                 ON CONFLICT (id) DO UPDATE SET service = excluded.service, build = excluded.build,
                     mode = excluded.mode, hostname = excluded.hostname, pid = excluded.pid,
                     start_time = excluded.start_time, go_version = excluded.go_version,
                     address = excluded.address, last_seen = excluded.last_seen,
                     state = 'live', gone_at = NULL, labels = excluded.labels,
                     secret = COALESCE(instances.secret, excluded.secret)",
            ),
            i,
            now,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Registering::Accepted)
    }

    /// Records a heartbeat of a live instance that shows the secret it registered with.
    /// Records a heartbeat of instance `id`, which must show its secret; `channel`: the
    /// heartbeat is a poll of its agent's channel, which is recorded too (`channel_seen`).
    pub async fn heartbeat(
        &self,
        id: &str,
        secret: Option<&str>,
        now: i64,
        channel: bool,
    ) -> Result<Claim> {
        let r = self.heartbeat_now(id, secret, now, channel).await;
        self.wrote(r)
    }

    async fn heartbeat_now(
        &self,
        id: &str,
        secret: Option<&str>,
        now: i64,
        channel: bool,
    ) -> Result<Claim> {
        let held = sqlx::query("SELECT secret FROM instances WHERE id = $1 AND state = 'live'")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(held) = held else {
            return Ok(Claim::Unknown);
        };
        if let Some(held) = held.try_get::<Option<String>, _>("secret")?
            && !crate::secret::same(secret, &held)
        {
            return Ok(Claim::WrongSecret);
        }
        let update = if channel {
            "UPDATE instances SET last_seen = $1, channel_seen = $1 WHERE id = $2 AND state = 'live'"
        } else {
            "UPDATE instances SET last_seen = $1 WHERE id = $2 AND state = 'live'"
        };
        let done = sqlx::query(update)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(if done.rows_affected() > 0 {
            Claim::Accepted
        } else {
            Claim::Unknown
        })
    }

    /// The instance `id`, whatever its state.
    pub async fn instance(&self, id: &str) -> Result<Option<InstanceRow>> {
        Ok(
            sqlx::query_as::<_, InstanceRow>(&format!("{INSTANCE_COLUMNS} WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The last counters received of instance `id` (LCC1), if any.
    pub async fn final_counters(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT counters FROM instance_finals WHERE instance = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("counters")).transpose()?)
    }

    /// Stores `counters` as the last counters of instance `i`: a row for it if it has none
    /// (state `exited`), and the instance marked exited as `ended` says. A live instance
    /// collected from disk stays live. Delivered by its agent (`Ended::Now`), an instance
    /// registered with a secret must show it.
    pub async fn put_final(
        &self,
        i: &NewInstance,
        counters: &[u8],
        ended: Ended,
        quota: Quota,
        now: i64,
    ) -> Result<Registering> {
        let r = self.put_final_now(i, counters, ended, quota, now).await;
        self.wrote(r)
    }

    async fn put_final_now(
        &self,
        i: &NewInstance,
        counters: &[u8],
        ended: Ended,
        quota: Quota,
        now: i64,
    ) -> Result<Registering> {
        let mut tx = self.pool.begin().await?;
        if let Err(refused) = claim(&mut tx, i, quota, ended == Ended::Now, now).await? {
            return Ok(refused);
        }
        bind_instance(
            sqlx::query(
                "INSERT INTO instances (id, service, build, mode, hostname, pid, start_time,
                     go_version, address, registered_at, last_seen, state, gone_at, secret, labels,
                     exited_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, 'exited', NULL, $11, $12, $10)
                 ON CONFLICT (id) DO NOTHING",
            ),
            i,
            now,
        )
        .execute(&mut *tx)
        .await?;
        let update = match ended {
            // Its agent: the process ends now.
            Ended::Now => {
                "UPDATE instances SET state = 'exited', exited_at = $2, last_seen = $2
                 WHERE id = $1"
            }
            // Collected: a process that is gone ended when it was last seen.
            Ended::Collected => {
                "UPDATE instances SET state = 'exited', exited_at = COALESCE(gone_at, $2)
                 WHERE id = $1 AND state = 'gone'"
            }
        };
        sqlx::query(update)
            .bind(&i.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO instance_finals (instance, counters, received_at) VALUES ($1, $2, $3)
             ON CONFLICT (instance) DO UPDATE SET counters = excluded.counters,
                 received_at = excluded.received_at",
        )
        .bind(&i.id)
        .bind(counters)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Registering::Accepted)
    }

    /// The instances of `service` that are not live and whose last counters the server has,
    /// seen live at `since` or later, with those counters: the processes that ended in a
    /// window that began then.
    pub async fn finals(&self, service: &str, since: i64) -> Result<Vec<(InstanceRow, Vec<u8>)>> {
        let rows = sqlx::query(
            "SELECT i.id, i.service, i.build, i.mode, i.hostname, i.pid, i.start_time,
                    i.go_version, i.address, i.registered_at, i.last_seen, i.state, i.gone_at,
                    i.secret, i.labels, i.exited_at, i.channel_seen, f.counters
             FROM instances i JOIN instance_finals f ON f.instance = i.id
             WHERE i.service = $1 AND i.state <> 'live' AND i.last_seen >= $2
             ORDER BY i.id",
        )
        .bind(service)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((InstanceRow::from_row(r)?, r.try_get("counters")?));
        }
        Ok(out)
    }

    /// Marks gone every live instance not seen since `cutoff`; returns how many.
    pub async fn sweep(&self, cutoff: i64, now: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE instances SET state = 'gone', gone_at = $1
             WHERE state = 'live' AND last_seen < $2",
        )
        .bind(now)
        .bind(cutoff)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn service_exists(&self, name: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM services WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Instances of `service`, live ones first, newest first; only live ones if `live_only`.
    pub async fn instances(&self, service: &str, live_only: bool) -> Result<Vec<InstanceRow>> {
        let rows = sqlx::query_as::<_, InstanceRow>(&format!(
            "{INSTANCE_COLUMNS} WHERE service = $1 AND (state = 'live' OR $2 = 0)
             ORDER BY state DESC, registered_at DESC, id"
        ))
        .bind(service)
        .bind(i64::from(live_only))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Every service by name, in one query: a row per (service, build of a live instance),
    /// with the service's counts and latest snapshot on each.
    pub async fn services(&self) -> Result<Vec<ServiceRow>> {
        self.services_where("", i64::MAX, None).await
    }

    /// At most `limit` services whose names sort after `after`, by name.
    pub async fn services_page(&self, after: &str, limit: i64) -> Result<Vec<ServiceRow>> {
        self.services_where(after, limit, None).await
    }

    /// The service `name`, if there is one.
    pub async fn service(&self, name: &str) -> Result<Option<ServiceRow>> {
        Ok(self.services_where("", 1, Some(name)).await?.pop())
    }

    async fn services_where(
        &self,
        after: &str,
        limit: i64,
        name: Option<&str>,
    ) -> Result<Vec<ServiceRow>> {
        let rows = sqlx::query(
            "SELECT s.name, s.created_at,
                    (SELECT COUNT(*) FROM instances i
                     WHERE i.service = s.name AND i.state = 'live') AS live_instances,
                    (SELECT COUNT(*) FROM instances i WHERE i.service = s.name) AS instances,
                    n.id, n.service, n.label, n.reset, n.kind, n.session, n.since, n.taken_at,
                    n.duration_ms, n.instances_ok, n.instances_failed, n.blocks,
                    n.blocks_covered, n.stmts, n.stmts_covered, n.deploy_blocks_covered,
                    n.deploy_stmts_covered, n.selector, b.build,
                    (SELECT build FROM builds t WHERE t.id = n.build_id) AS target_build,
                    (SELECT COUNT(*) FROM snapshot_builds sb WHERE sb.snapshot_id = n.id)
                        AS build_count
             FROM (SELECT name, created_at FROM services
                   WHERE name > $1 AND ($3 = 0 OR name = $4) ORDER BY name LIMIT $2) s
             LEFT JOIN snapshots n
                 ON n.id = (SELECT MAX(m.id) FROM snapshots m WHERE m.service = s.name)
             LEFT JOIN (SELECT DISTINCT service, build FROM instances WHERE state = 'live') b
                 ON b.service = s.name
             ORDER BY s.name",
        )
        .bind(after)
        .bind(limit)
        .bind(i64::from(name.is_some()))
        .bind(name.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<ServiceRow> = Vec::new();
        for r in &rows {
            let name: String = r.try_get("name")?;
            let build: Option<String> = r.try_get("build")?;
            if let Some(last) = out.last_mut().filter(|l| l.name == name) {
                last.builds.extend(build);
                continue;
            }
            let latest = match r.try_get::<Option<i64>, _>("id")? {
                Some(_) => Some(SnapshotRow::from_row(r)?),
                None => None,
            };
            out.push(ServiceRow {
                name,
                created_at: r.try_get("created_at")?,
                live_instances: r.try_get("live_instances")?,
                instances: r.try_get("instances")?,
                builds: build.into_iter().collect(),
                latest,
            });
        }
        for s in &mut out {
            s.builds.sort();
        }
        Ok(out)
    }

    /// Stores a snapshot whole, in one transaction; returns its id.
    pub async fn insert_snapshot(&self, s: &NewSnapshot) -> Result<i64> {
        let r = self.insert_snapshot_now(s).await;
        self.wrote(r)
    }

    async fn insert_snapshot_now(&self, s: &NewSnapshot) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let id = write_snapshot(&mut tx, s).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Snapshots of `service`, newest first, at most `limit`, older than `before` if given.
    pub async fn snapshots(
        &self,
        service: &str,
        limit: i64,
        before: Option<i64>,
        selector: Option<&str>,
    ) -> Result<Vec<SnapshotRow>> {
        let rows = sqlx::query_as::<_, SnapshotRow>(&format!(
            "{SNAPSHOT_COLUMNS} WHERE service = $1 AND id < $2 AND ($4 = '' OR selector = $4)
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(service)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .bind(selector.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// The snapshots of `service` from `from` to `to` (ids, both included), oldest first, at
    /// most `limit`.
    pub async fn snapshot_range(
        &self,
        service: &str,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<SnapshotRow>> {
        let rows = sqlx::query_as::<_, SnapshotRow>(&format!(
            "{SNAPSHOT_COLUMNS} WHERE service = $1 AND id >= $2 AND id <= $3 ORDER BY id LIMIT $4"
        ))
        .bind(service)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub async fn snapshot(&self, id: i64) -> Result<Option<SnapshotRow>> {
        let row = sqlx::query_as::<_, SnapshotRow>(&format!("{SNAPSHOT_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    /// The builds of a snapshot with their merged counters (per-file rows are not loaded).
    pub async fn snapshot_builds(&self, id: i64) -> Result<Vec<SnapshotBuild>> {
        let rows = sqlx::query_as::<_, SnapshotBuild>(
            "SELECT b.build, b.mode, b.blocks, b.stmts, sb.instances, sb.blocks_covered,
                    sb.stmts_covered, sb.counters, sb.deploy_blocks_covered,
                    sb.deploy_stmts_covered, sb.deploy_counters
             FROM snapshot_builds sb JOIN builds b ON b.id = sb.build_id
             WHERE sb.snapshot_id = $1 ORDER BY b.id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub async fn snapshot_instances(&self, id: i64) -> Result<Vec<InstanceResult>> {
        let rows = sqlx::query(
            "SELECT si.instance, i.build, i.address, si.outcome, si.message, si.duration_ms
             FROM snapshot_instances si JOIN instances i ON i.id = si.instance
             WHERE si.snapshot_id = $1 ORDER BY si.instance",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(InstanceResult {
                instance: r.try_get("instance")?,
                build: r.try_get("build")?,
                address: r.try_get("address")?,
                outcome: r.try_get("outcome")?,
                message: r.try_get("message")?,
                duration_ms: r.try_get("duration_ms")?,
            });
        }
        Ok(out)
    }

    /// Live instances per service, for metrics.
    pub async fn live_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT s.name, (SELECT COUNT(*) FROM instances i
                             WHERE i.service = s.name AND i.state = 'live') AS live
             FROM services s ORDER BY s.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((r.try_get("name")?, r.try_get("live")?));
        }
        Ok(out)
    }
}

/// In `tx`, the service of `i` recorded (within `quota.services`) and, with `check_secret`,
/// its instance id claimed: an instance registered with a secret must show it. Answers the
/// secret the instance is held with (`None`: no such instance yet), or why it is refused.
async fn claim(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    i: &NewInstance,
    quota: Quota,
    check_secret: bool,
    now: i64,
) -> Result<std::result::Result<Option<Option<String>>, Registering>> {
    let new_service = sqlx::query(
        "INSERT INTO services (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&i.service)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        > 0;
    if new_service {
        let services: i64 = sqlx::query("SELECT COUNT(*) AS n FROM services")
            .fetch_one(&mut **tx)
            .await?
            .try_get("n")?;
        if services as u64 > quota.services {
            return Ok(Err(Registering::TooManyServices));
        }
    }
    // Read after the first write, so that under SQLite the transaction holds the write lock
    // already (a read that upgrades to a write can fail instead of waiting).
    let held: Option<Option<String>> = sqlx::query("SELECT secret FROM instances WHERE id = $1")
        .bind(&i.id)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.try_get("secret"))
        .transpose()?;
    if check_secret
        && let Some(Some(secret)) = &held
        && !crate::secret::same(i.secret.as_deref(), secret)
    {
        return Ok(Err(Registering::WrongSecret));
    }
    Ok(Ok(held))
}

/// Writes a snapshot in `tx`; returns its id.
async fn write_snapshot(tx: &mut sqlx::Transaction<'_, sqlx::Any>, s: &NewSnapshot) -> Result<i64> {
    let ok = s.instances.iter().filter(|i| i.outcome == "ok").count() as i64;
    let id: i64 = sqlx::query(
        "INSERT INTO snapshots (service, label, reset, taken_at, duration_ms, instances_ok,
         instances_failed, blocks, blocks_covered, stmts, stmts_covered, kind, session,
         since, deploy_blocks_covered, deploy_stmts_covered)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
     RETURNING id",
    )
    .bind(&s.service)
    .bind(s.label.as_deref())
    .bind(i64::from(s.reset))
    .bind(s.taken_at)
    .bind(s.duration_ms)
    .bind(ok)
    .bind(s.instances.len() as i64 - ok)
    .bind(s.totals.blocks)
    .bind(s.totals.blocks_covered)
    .bind(s.totals.stmts)
    .bind(s.totals.stmts_covered)
    .bind(&s.window.kind)
    .bind(s.window.session.as_deref())
    .bind(s.window.since)
    .bind(s.deploy.blocks_covered)
    .bind(s.deploy.stmts_covered)
    .fetch_one(&mut **tx)
    .await?
    .try_get("id")?;
    sqlx::query(
        "UPDATE snapshots SET build_id = (SELECT id FROM builds WHERE build = $1), selector = $2
         WHERE id = $3",
    )
    .bind(&s.target)
    .bind(s.selector.as_deref())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    for b in &s.builds {
        let build_id: i64 = sqlx::query("SELECT id FROM builds WHERE build = $1")
            .bind(&b.build)
            .fetch_one(&mut **tx)
            .await?
            .try_get("id")?;
        sqlx::query(
            "INSERT INTO snapshot_builds (snapshot_id, build_id, instances, blocks_covered,
                 stmts_covered, counters, deploy_blocks_covered, deploy_stmts_covered,
                 deploy_counters) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(build_id)
        .bind(b.instances)
        .bind(b.blocks_covered)
        .bind(b.stmts_covered)
        .bind(b.counters.as_slice())
        .bind(b.deploy_blocks_covered)
        .bind(b.deploy_stmts_covered)
        .bind(b.deploy_counters.as_slice())
        .execute(&mut **tx)
        .await?;
        for chunk in b.files.chunks(ROWS_PER_INSERT) {
            let sql = insert_rows(
                "snapshot_files (snapshot_id, build_id, file_index, blocks_covered, stmts_covered)",
                2,
                3,
                chunk.len(),
            );
            let mut q = sqlx::query(&sql).bind(id).bind(build_id);
            for &(file, blocks, stmts) in chunk {
                q = q.bind(file).bind(blocks).bind(stmts);
            }
            q.execute(&mut **tx).await?;
        }
    }
    for chunk in s.instances.chunks(ROWS_PER_INSERT) {
        let sql = insert_rows(
            "snapshot_instances (snapshot_id, instance, outcome, message, duration_ms)",
            1,
            4,
            chunk.len(),
        );
        let mut q = sqlx::query(&sql).bind(id);
        for i in chunk {
            q = q
                .bind(&i.instance)
                .bind(&i.outcome)
                .bind(i.message.as_deref())
                .bind(i.duration_ms);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(id)
}

/// Rows per multi-row `INSERT`: one round trip for many rows, far below either database's
/// limit on parameters.
const ROWS_PER_INSERT: usize = 200;

/// `INSERT INTO {table} VALUES (…), (…)` for `rows` rows whose first `shared` parameters are the
/// same in every row (`$1`…) and whose other `own` are the row's own.
fn insert_rows(table: &str, shared: usize, own: usize, rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} VALUES ");
    let mut next = shared + 1;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        let params = (1..=shared).chain(next..next + own);
        let list: Vec<String> = params.map(|p| format!("${p}")).collect();
        sql.push_str(&list.join(", "));
        sql.push(')');
        next += own;
    }
    sql
}

/// The columns of an [`InstanceRow`], for `FROM instances`.
const INSTANCE_COLUMNS: &str = "SELECT id, service, build, mode, hostname, pid, start_time,
    go_version, address, registered_at, last_seen, state, gone_at, secret, labels, exited_at,
    channel_seen FROM instances";

const SNAPSHOT_COLUMNS: &str = "SELECT id, service, label, reset, kind, session, since, taken_at,
    duration_ms, instances_ok, instances_failed, blocks, blocks_covered, stmts, stmts_covered,
    deploy_blocks_covered, deploy_stmts_covered, selector,
    (SELECT build FROM builds WHERE builds.id = snapshots.build_id) AS target_build,
    (SELECT COUNT(*) FROM snapshot_builds sb WHERE sb.snapshot_id = snapshots.id) AS build_count
    FROM snapshots";

impl FromRow<'_, AnyRow> for SnapshotRow {
    /// The columns of `SNAPSHOT_COLUMNS`, by name.
    fn from_row(r: &AnyRow) -> sqlx::Result<SnapshotRow> {
        Ok(SnapshotRow {
            id: r.try_get("id")?,
            service: r.try_get("service")?,
            label: r.try_get("label")?,
            reset: r.try_get::<i64, _>("reset")? != 0,
            window: Window {
                kind: r.try_get("kind")?,
                session: r.try_get("session")?,
                since: r.try_get("since")?,
            },
            taken_at: r.try_get("taken_at")?,
            duration_ms: r.try_get("duration_ms")?,
            instances_ok: r.try_get("instances_ok")?,
            instances_failed: r.try_get("instances_failed")?,
            totals: Totals::new(
                r.try_get("blocks")?,
                r.try_get("blocks_covered")?,
                r.try_get("stmts")?,
                r.try_get("stmts_covered")?,
            ),
            deploy: Totals::new(
                r.try_get("blocks")?,
                r.try_get("deploy_blocks_covered")?,
                r.try_get("stmts")?,
                r.try_get("deploy_stmts_covered")?,
            ),
            build: r.try_get("target_build")?,
            builds: r.try_get("build_count")?,
            selector: r.try_get("selector")?,
        })
    }
}

impl InstanceRow {
    /// `live`; `exited` when its process ended and its last counters are in; else `gone`
    /// (no heartbeat for the TTL).
    pub fn state(&self) -> &'static str {
        match (self.live, self.exited_at) {
            (true, _) => "live",
            (false, Some(_)) => "exited",
            (false, None) => "gone",
        }
    }
}

impl FromRow<'_, AnyRow> for InstanceRow {
    fn from_row(r: &AnyRow) -> sqlx::Result<InstanceRow> {
        Ok(InstanceRow {
            id: r.try_get("id")?,
            service: r.try_get("service")?,
            build: r.try_get("build")?,
            mode: r.try_get("mode")?,
            hostname: r.try_get("hostname")?,
            pid: r.try_get("pid")?,
            start_time: r.try_get("start_time")?,
            go_version: r.try_get("go_version")?,
            address: r.try_get("address")?,
            registered_at: r.try_get("registered_at")?,
            last_seen: r.try_get("last_seen")?,
            live: r.try_get::<String, _>("state")? == "live",
            gone_at: r.try_get("gone_at")?,
            secret: r.try_get("secret")?,
            labels: r
                .try_get::<Option<String>, _>("labels")?
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default(),
            exited_at: r.try_get("exited_at")?,
            channel_seen: r.try_get("channel_seen")?,
        })
    }
}

impl FromRow<'_, AnyRow> for SnapshotBuild {
    /// A build's part of a snapshot, without its per-file rows.
    fn from_row(r: &AnyRow) -> sqlx::Result<SnapshotBuild> {
        Ok(SnapshotBuild {
            build: r.try_get("build")?,
            mode: r.try_get("mode")?,
            blocks: r.try_get("blocks")?,
            stmts: r.try_get("stmts")?,
            instances: r.try_get("instances")?,
            blocks_covered: r.try_get("blocks_covered")?,
            stmts_covered: r.try_get("stmts_covered")?,
            counters: r.try_get("counters")?,
            deploy_blocks_covered: r.try_get("deploy_blocks_covered")?,
            deploy_stmts_covered: r.try_get("deploy_stmts_covered")?,
            deploy_counters: r.try_get("deploy_counters")?,
            files: Vec::new(),
        })
    }
}

/// `q` with the instance's columns bound as `$1` to `$12`: id, service, build, mode,
/// hostname, pid, start time, Go version, address, `now`, secret, labels.
fn bind_instance<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    i: &'q NewInstance,
    now: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(&i.id)
        .bind(&i.service)
        .bind(&i.build)
        .bind(&i.mode)
        .bind(&i.hostname)
        .bind(i.pid)
        .bind(&i.start_time)
        .bind(&i.go_version)
        .bind(&i.address)
        .bind(now)
        .bind(i.secret.as_deref())
        .bind(labels_json(&i.labels))
}

/// An instance's labels as stored: a JSON object, or NULL for none.
fn labels_json(labels: &BTreeMap<String, String>) -> Option<String> {
    (!labels.is_empty()).then(|| serde_json::to_string(labels).expect("strings serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        for ok in [
            "sqlite://livecov.db",
            "sqlite:livecov.db",
            "livecov.db",
            "postgres://u@h/d",
        ] {
            assert!(connect_options(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            (":memory:", "meant to last"),
            ("sqlite::memory:", "meant to last"),
            ("sqlite://", "meant to last"),
            ("sqlite://x.db?mode=memory", "meant to last"),
            ("mysql://h/d", "use postgres"),
        ] {
            let err = connect_options(bad).err().unwrap().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
