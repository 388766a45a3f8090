//! Snapshots: ask every live instance of a service (`gather`), compute each one's window
//! (`window`), merge per build and store whole (`compose`, `store`); and read stored ones back.
//!
//! One instance that fails never fails the snapshot: its outcome is stored with the
//! snapshot. Only when no instance answers is nothing stored. Reading changes nothing in an
//! agent, so a snapshot that is not stored loses nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use crate::App;
use crate::BuildError;
use crate::lcc;
use crate::meta::Build;
use crate::pull::{Answer, Dial, Failure, Outcome, timed};
use crate::store::{InstanceRow, NewSnapshot, SnapshotBuild, SnapshotRow, StoreError, Window};
use crate::types::{
    BuildPart, InstanceResult, Selector, SnapshotDetail, SnapshotInfo, SnapshotList, Totals,
};
use crate::window::{self, Since};
/// Why a snapshot was not taken or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A request that does not pass its checks (a label too long), and why.
    #[error("{0}")]
    Invalid(String),
    #[error("no service {0:?}")]
    UnknownService(String),
    #[error("service {0:?} has no live instances")]
    NoLiveInstances(String),
    #[error("no live instance of service {service:?} has the labels {selector}")]
    NoMatch { service: String, selector: String },
    /// No instance answered usably; nothing was stored.
    #[error("no instance of {service:?} answered, nothing stored: {why}")]
    NoAnswer { service: String, why: String },
    #[error("no snapshot {0}")]
    NotFound(i64),
    #[error("no build {0} is stored")]
    UnknownBuild(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A boundary's answers were not stored: no count is lost, and the server finishes the
    /// boundary when the database is back.
    #[error("{source}; no count is lost: the server finishes the {what} when the database is back")]
    Pending {
        what: &'static str,
        #[source]
        source: StoreError,
    },
    /// No session of that name is open.
    #[error("service {service:?} has no open session {name:?}")]
    NoSession { service: String, name: String },
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Stored counters that do not decode against their build.
    #[error("snapshot {id}, build {build}: stored")]
    Corrupt {
        id: i64,
        build: String,
        #[source]
        source: lcc::DecodeError,
    },
}

/// Checks a snapshot's label.
pub fn check_label(label: Option<&str>) -> Result<(), SnapshotError> {
    if let Some(label) = label {
        report::types::check_text("label", label, 1024).map_err(SnapshotError::Invalid)?;
    }
    Ok(())
}

/// The live instances of a known service, with the database known to answer: nothing is
/// asked of an instance while it is away. None is an error.
pub(crate) async fn live_instances(
    app: &App,
    service: &str,
) -> Result<Vec<InstanceRow>, SnapshotError> {
    if !app.store.service_exists(service).await? {
        return Err(SnapshotError::UnknownService(service.to_string()));
    }
    let live = app.store.instances(service, true).await?;
    if live.is_empty() {
        return Err(SnapshotError::NoLiveInstances(service.to_string()));
    }
    app.store.ping().await?;
    Ok(live)
}

/// What one instance answered.
pub(crate) struct Pulled {
    pub inst: InstanceRow,
    pub result: Result<(Arc<Build>, Answer), (Outcome, String)>,
    pub duration_ms: i64,
}

/// Asks every instance of `live` at once (at most `pull_concurrency` at a time): to read its
/// counters, or with `boundary`, to apply the boundary of that token. Builds new to the server
/// have their metadata fetched from their own instances first.
pub(crate) async fn gather(
    app: &Arc<App>,
    live: Vec<InstanceRow>,
    boundary: Option<&str>,
) -> Result<Vec<Pulled>, SnapshotError> {
    // Two phases, each given one pull timeout: the metadata of new builds (all at once, each
    // build's instances asked for at most that long in all), then the pulls (ending at a
    // deadline, however many wait their turn). A snapshot takes at most twice
    // `--pull-timeout` (and the database's time) however many builds and instances are slow.
    let timeout = app.config.pull_timeout;
    let mut by_build: BTreeMap<String, Vec<Dial>> = BTreeMap::new();
    for i in &live {
        by_build
            .entry(i.build.clone())
            .or_default()
            .push(Dial::of(i));
    }
    let fetched = futures::stream::iter(by_build.into_iter().map(|(build, agents)| {
        let app = app.clone();
        async move {
            let got = app.build_within(&build, &agents, Some(timeout)).await;
            (build, got)
        }
    }))
    .buffer_unordered(app.config.pull_concurrency.max(1))
    .collect::<Vec<_>>()
    .await;
    let mut builds: BTreeMap<String, Result<Arc<Build>, String>> = BTreeMap::new();
    for (build, got) in fetched {
        let got = match got {
            Ok(b) => Ok(b),
            Err(BuildError::Store(e)) if e.is_unavailable() => return Err(e.into()),
            // What clients read of a server error: its cause is not theirs to see.
            Err(e @ BuildError::Stored { .. }) => {
                tracing::warn!(error = %crate::error::Chain(&e), "build of a live instance");
                Err(crate::error::INTERNAL.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        builds.insert(build, got);
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let pulled = futures::stream::iter(live.into_iter().map(|inst| {
        let build = builds[&inst.build].clone();
        let app = app.clone();
        async move {
            let build = match build {
                Ok(b) => b,
                Err(msg) => {
                    return Pulled {
                        inst,
                        result: Err((Outcome::Rejected, msg)),
                        duration_ms: 0,
                    };
                }
            };
            let to = Dial::of(&inst);
            let ask = async {
                match boundary {
                    None => app.agents.counters(&to, &build).await,
                    Some(token) => app.agents.boundary(&to, &build, token).await,
                }
            };
            let (r, took) = timed(async {
                tokio::time::timeout_at(deadline, ask)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Failure {
                            outcome: Outcome::Timeout,
                            message: format!(
                                "not asked in time: the snapshot's pulls end one pull timeout \
                                 ({timeout:?}) after they start"
                            ),
                        })
                    })
            })
            .await;
            app.metrics
                .pulled(r.as_ref().map_or_else(|f| f.outcome, |_| Outcome::Ok), took);
            Pulled {
                inst,
                result: r.map(|a| (build, a)).map_err(|f| (f.outcome, f.message)),
                duration_ms: took.as_millis() as i64,
            }
        }
    }))
    .buffer_unordered(app.config.pull_concurrency.max(1))
    .collect::<Vec<_>>()
    .await;
    Ok(pulled)
}

/// The snapshot of what `pulled` answered: per instance its window (from `since_of`) and
/// everything since it started, merged per build. `notes` are said of instances in their
/// outcome. Nothing answered: `NoAnswer`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn compose(
    service: &str,
    label: Option<String>,
    window: Window,
    reset: bool,
    started: Instant,
    taken_at: i64,
    pulled: &[Pulled],
    since_of: impl Fn(&InstanceRow) -> Since,
    notes: &BTreeMap<String, String>,
) -> Result<NewSnapshot, SnapshotError> {
    struct Part {
        build: Arc<Build>,
        window: Vec<u32>,
        deploy: Vec<u32>,
        instances: i64,
        /// When its first instance here registered: the build that came last is the one the
        /// snapshot is seen against.
        first: i64,
    }
    let mut merged: BTreeMap<String, Part> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(pulled.len());
    for p in pulled {
        let inst = &p.inst;
        let (outcome, message) = match &p.result {
            Ok((build, answer)) => {
                let mode = build.mode();
                let part = merged.entry(build.id.clone()).or_insert_with(|| Part {
                    build: build.clone(),
                    window: vec![0; build.num_blocks()],
                    deploy: vec![0; build.num_blocks()],
                    instances: 0,
                    first: inst.registered_at,
                });
                part.first = part.first.min(inst.registered_at);
                let since = since_of(inst);
                let base = since.base(build);
                for (i, v) in window::window(mode, &answer.counters, &since, base.as_ref()) {
                    report::merge_count(mode, &mut part.window[i as usize], v);
                }
                for (i, v) in window::deploy(mode, &answer.counters) {
                    report::merge_count(mode, &mut part.deploy[i as usize], v);
                }
                part.instances += 1;
                let note = notes.get(&inst.id).cloned().or_else(|| since.note());
                (Outcome::Ok, note)
            }
            Err((outcome, message)) => {
                tracing::warn!(
                    service,
                    instance = inst.id,
                    address = inst.address,
                    outcome = outcome.as_str(),
                    message,
                    "pull failed"
                );
                (*outcome, Some(message.clone()))
            }
        };
        outcomes.push(outcome_row(inst, outcome, message, p.duration_ms));
    }
    outcomes.sort_by(|a, b| a.instance.cmp(&b.instance));
    if merged.is_empty() {
        let why: Vec<String> = outcomes
            .iter()
            .map(|o| {
                format!(
                    "{} ({}): {}: {}",
                    o.instance,
                    o.address,
                    o.outcome,
                    o.message.as_deref().unwrap_or("")
                )
            })
            .collect();
        return Err(SnapshotError::NoAnswer {
            service: service.to_string(),
            why: why.join("; "),
        });
    }
    // Oldest first: the target is the build whose first instance registered last.
    let mut merged: Vec<Part> = merged.into_values().collect();
    merged.sort_by(|a, b| (a.first, &a.build.id).cmp(&(b.first, &b.build.id)));
    let target = merged.len() - 1;
    let parts: Vec<SnapshotBuild> = merged
        .iter()
        .map(|p| summarize(&p.build, &p.window, &p.deploy, p.instances))
        .collect();
    let (totals, deploy) = if merged.len() == 1 {
        let p = &parts[0];
        (
            Totals::new(p.blocks, p.blocks_covered, p.stmts, p.stmts_covered),
            Totals::new(
                p.blocks,
                p.deploy_blocks_covered,
                p.stmts,
                p.deploy_stmts_covered,
            ),
        )
    } else {
        let of = |values: fn(&Part) -> &[u32]| {
            let parts: Vec<report::Part> = merged
                .iter()
                .map(|p| report::Part {
                    build: &p.build.id,
                    meta: &p.build.meta,
                    values: values(p),
                })
                .collect();
            totals(
                &merged[target].build.meta,
                &report::project::project(&parts, target).counts,
            )
        };
        (of(|p| &p.window), of(|p| &p.deploy))
    };
    let snap = NewSnapshot {
        service: service.to_string(),
        label,
        reset,
        window,
        taken_at,
        duration_ms: started.elapsed().as_millis() as i64,
        totals,
        deploy,
        target: merged[target].build.id.clone(),
        selector: None,
        builds: parts,
        instances: outcomes,
    };
    Ok(snap)
}

/// Stores a snapshot. The builds it refers to are stored: `App::build` stores a build
/// before it hands it out.
pub(crate) async fn store(app: &App, snap: &NewSnapshot) -> Result<i64, SnapshotError> {
    let stored = app.store.insert_snapshot(snap).await;
    stored_or_failed(app, snap, stored).map_err(SnapshotError::from)
}

/// Logs and counts a snapshot that was stored, or was not.
pub(crate) fn stored_or_failed<E>(
    app: &App,
    snap: &NewSnapshot,
    stored: Result<i64, E>,
) -> Result<i64, E> {
    match &stored {
        Ok(id) => {
            app.metrics
                .snapshot_stored(std::time::Duration::from_millis(
                    snap.duration_ms.max(0) as u64
                ));
            tracing::info!(
                service = snap.service,
                snapshot = id,
                kind = snap.window.kind,
                instances = snap.instances.len(),
                "snapshot stored"
            );
        }
        Err(_) => app.metrics.snapshot_failed(),
    }
    stored
}

fn outcome_row(
    inst: &InstanceRow,
    outcome: Outcome,
    message: Option<String>,
    duration_ms: i64,
) -> InstanceResult {
    InstanceResult {
        instance: inst.id.clone(),
        build: inst.build.clone(),
        address: inst.address.clone(),
        outcome: outcome.as_str().to_string(),
        message,
        duration_ms,
    }
}

/// A build's merged counters with their totals, per file and in all: of the window (`values`)
/// and since the instances started (`deploy`).
pub fn summarize(build: &Build, values: &[u32], deploy: &[u32], instances: i64) -> SnapshotBuild {
    let covered = |values: &[u32]| {
        values
            .iter()
            .zip(build.meta.files.iter().flat_map(|f| &f.blocks))
            .filter(|(c, _)| **c != 0)
            .fold((0i64, 0i64), |(b, s), (_, block)| {
                (b + 1, s + i64::from(block.num_stmt))
            })
    };
    let (deploy_blocks_covered, deploy_stmts_covered) = covered(deploy);
    let mut files = Vec::new();
    let (mut blocks_covered, mut stmts_covered) = (0i64, 0i64);
    for (f, file) in build.meta.files.iter().enumerate() {
        let counts = &values[build.offsets[f]..build.offsets[f] + file.blocks.len()];
        let (mut b, mut s) = (0i64, 0i64);
        for (block, &c) in file.blocks.iter().zip(counts) {
            if c != 0 {
                b += 1;
                s += i64::from(block.num_stmt);
            }
        }
        if b > 0 {
            files.push((f as i64, b, s));
            blocks_covered += b;
            stmts_covered += s;
        }
    }
    SnapshotBuild {
        build: build.id.clone(),
        mode: build.mode().as_str().to_string(),
        blocks: build.num_blocks() as i64,
        stmts: build.num_stmts() as i64,
        instances,
        blocks_covered,
        stmts_covered,
        counters: lcc::encode(&build.id, build.mode(), &build.shape, values),
        deploy_blocks_covered,
        deploy_stmts_covered,
        deploy_counters: lcc::encode(&build.id, build.mode(), &build.shape, deploy),
        files,
    }
}

/// The totals of `meta`'s blocks with `counts` (in its counter order).
pub fn totals(meta: &instrumenter::BuildMeta, counts: &[u32]) -> Totals {
    let (mut blocks, mut covered, mut stmts, mut stmts_covered) = (0i64, 0i64, 0i64, 0i64);
    for (b, &c) in meta.files.iter().flat_map(|f| &f.blocks).zip(counts) {
        blocks += 1;
        stmts += i64::from(b.num_stmt);
        if c != 0 {
            covered += 1;
            stmts_covered += i64::from(b.num_stmt);
        }
    }
    Totals::new(blocks, covered, stmts, stmts_covered)
}

/// A snapshot as listed.
pub fn info(s: &SnapshotRow) -> SnapshotInfo {
    SnapshotInfo {
        id: s.id,
        service: s.service.clone(),
        label: s.label.clone(),
        reset: s.reset,
        kind: s.window.kind.clone(),
        session: s.window.session.clone(),
        since: s.window.since.map(report::rfc3339),
        taken_at: report::rfc3339(s.taken_at),
        duration_ms: s.duration_ms,
        instances_ok: s.instances_ok,
        instances_failed: s.instances_failed,
        totals: s.totals.clone(),
        deploy: s.deploy.clone(),
        build: s.build.clone(),
        build_count: s.builds,
        selector: s.selector.clone(),
    }
}

/// The snapshots of `service`, newest first: at most `limit` (100 if not given, 1 to 1,000),
/// older than snapshot `before` if given, taken with `selector` if given.
pub async fn list(
    app: &App,
    service: String,
    limit: Option<i64>,
    before: Option<i64>,
    selector: Option<&Selector>,
) -> Result<SnapshotList, SnapshotError> {
    if !app.store.service_exists(&service).await? {
        return Err(SnapshotError::UnknownService(service));
    }
    let limit = limit.unwrap_or(100).clamp(1, 1000);
    let selector = selector.map(Selector::text);
    let rows = app
        .store
        .snapshots(&service, limit, before, selector.as_deref())
        .await?;
    Ok(SnapshotList {
        service,
        snapshots: rows.iter().map(info).collect(),
    })
}

/// A stored snapshot with its builds and what each instance answered.
pub async fn detail(app: &App, id: i64) -> Result<SnapshotDetail, SnapshotError> {
    let row = row(app, id).await?;
    let builds = app.store.snapshot_builds(id).await?;
    let instances = app.store.snapshot_instances(id).await?;
    let mut excluded = Vec::with_capacity(builds.len());
    for b in &builds {
        excluded.push(app.store.build_excluded(&b.build).await?);
    }
    Ok(SnapshotDetail {
        snapshot: info(&row),
        builds: builds
            .iter()
            .zip(excluded)
            .map(|(b, excluded)| BuildPart {
                build: b.build.clone(),
                mode: b.mode.clone(),
                instances: b.instances,
                totals: Totals::new(b.blocks, b.blocks_covered, b.stmts, b.stmts_covered),
                deploy: Totals::new(
                    b.blocks,
                    b.deploy_blocks_covered,
                    b.stmts,
                    b.deploy_stmts_covered,
                ),
                excluded,
            })
            .collect(),
        instance_results: instances,
    })
}

/// The stored snapshot `id`'s row.
pub async fn row(app: &App, id: i64) -> Result<SnapshotRow, SnapshotError> {
    app.store
        .snapshot(id)
        .await?
        .ok_or(SnapshotError::NotFound(id))
}

/// Which of a snapshot's two coverages to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum View {
    /// The window: the round, or the session.
    #[default]
    Window,
    /// Everything the instances ran since they started.
    Deploy,
}

impl std::str::FromStr for View {
    type Err = String;
    fn from_str(s: &str) -> Result<View, String> {
        match s {
            "window" => Ok(View::Window),
            "deploy" => Ok(View::Deploy),
            _ => Err(format!("view {s:?}: want window or deploy")),
        }
    }
}

/// A stored snapshot seen against one build: its row, its builds' counters (oldest first,
/// with the target added, its counters zero, when the snapshot did not run it) and which of
/// them is the target.
pub struct Projected {
    pub row: SnapshotRow,
    pub parts: Vec<(Arc<Build>, Vec<u32>)>,
    pub target: usize,
    /// Whether the snapshot's instances ran the target.
    pub ran_target: bool,
}

/// A build with its counters, dense, in its counter order.
pub type BuildCounts = (Arc<Build>, Vec<u32>);

/// Builds' counters seen against one of them: a stored snapshot ([`Projected`]) or a cycle
/// (`crate::cycle::CycleView`).
pub trait Against {
    /// The builds with their counters, oldest first, and which is the target.
    fn builds(&self) -> (&[BuildCounts], usize);

    fn parts(&self) -> Vec<report::Part<'_>> {
        self.builds()
            .0
            .iter()
            .map(|(b, v)| report::Part {
                build: &b.id,
                meta: &b.meta,
                values: v,
            })
            .collect()
    }

    fn target(&self) -> &Arc<Build> {
        let (parts, target) = self.builds();
        &parts[target].0
    }

    /// The view of every part against the target.
    fn project(&self) -> report::Projection {
        report::project::project(&self.parts(), self.builds().1)
    }
}

impl Against for Projected {
    fn builds(&self) -> (&[BuildCounts], usize) {
        (&self.parts, self.target)
    }
}

/// Snapshot `id`'s `view` against `build`, or against the build it was taken against (its
/// newest, for snapshots stored before that was recorded).
pub async fn projected(
    app: &App,
    id: i64,
    view: View,
    build: Option<&str>,
) -> Result<Projected, SnapshotError> {
    let (row, parts) = stored(app, id, view).await?;
    against(app, row, parts, build).await
}

/// A stored snapshot's row and parts ([`stored`]) against `build`, as [`projected`].
pub async fn against(
    app: &App,
    row: SnapshotRow,
    mut parts: Vec<(Arc<Build>, Vec<u32>)>,
    build: Option<&str>,
) -> Result<Projected, SnapshotError> {
    let want = build.or(row.build.as_deref());
    let ran = parts.len();
    let target = match want.and_then(|w| parts.iter().position(|(b, _)| b.id == w)) {
        Some(i) => i,
        None => match build {
            Some(b) => {
                let meta = known_build(app, b).await?;
                let n = meta.num_blocks();
                parts.push((meta, vec![0; n]));
                parts.len() - 1
            }
            None => parts.len() - 1,
        },
    };
    Ok(Projected {
        row,
        parts,
        target,
        ran_target: target < ran,
    })
}

/// A build the server stores, asked for by id.
pub async fn known_build(app: &App, build: &str) -> Result<Arc<Build>, SnapshotError> {
    if !crate::meta::is_build_id(build) {
        return Err(SnapshotError::Invalid(format!(
            "build {build:?}: want a build id, 64 lower-case hex digits"
        )));
    }
    match app.build(build, &[]).await {
        Ok(b) => Ok(b),
        Err(BuildError::Unreachable { .. }) => Err(SnapshotError::UnknownBuild(build.into())),
        Err(e) => Err(e.into()),
    }
}

/// A stored snapshot: its row and the merged counters of `view`, per build, oldest build
/// first.
pub async fn stored(
    app: &App,
    id: i64,
    view: View,
) -> Result<(SnapshotRow, Vec<(Arc<Build>, Vec<u32>)>), SnapshotError> {
    let row = row(app, id).await?;
    let mut out = Vec::new();
    for part in app.store.snapshot_builds(id).await? {
        let build = app.build(&part.build, &[]).await?;
        let body = match view {
            View::Window => &part.counters,
            View::Deploy => &part.deploy_counters,
        };
        let sparse = lcc::decode(body, &build.id, &build.shape).map_err(|source| {
            SnapshotError::Corrupt {
                id,
                build: build.id.clone(),
                source,
            }
        })?;
        let mut values = vec![0u32; build.num_blocks()];
        for (i, v) in sparse.nonzero {
            values[i as usize] = v;
        }
        out.push((build, values));
    }
    Ok((row, out))
}
