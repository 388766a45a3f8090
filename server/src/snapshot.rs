//! Taking a snapshot: pull every live instance of a service, merge per build, store whole.
//!
//! One instance that fails never fails the snapshot: its outcome is stored with the
//! snapshot. Only when no instance answers is nothing stored (and, with a reset, nothing was
//! reset). A snapshot taken with a reset holds the only copy of the counts it took, so when
//! the database fails to take it the server keeps it and stores it when the database is back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use crate::App;
use crate::BuildError;
use crate::lcc;
use crate::meta::Build;
use crate::pull::{Outcome, timed};
use crate::store::{InstanceRow, NewSnapshot, SnapshotBuild, SnapshotRow, StoreError, now_ms};
use crate::types::{BuildPart, InstanceResult, SnapshotDetail, SnapshotInfo, SnapshotList, Totals};

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
    /// No instance answered usably; nothing was stored.
    #[error("no instance of {service:?} answered, nothing stored: {why}")]
    NoAnswer { service: String, why: String },
    #[error("no snapshot {0}")]
    NotFound(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Storing a snapshot taken with a reset failed: the server holds its counts.
    #[error(
        "{source}; the counters the reset took are held by the server and will be stored \
         when the database is back"
    )]
    Held { source: StoreError },
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

/// Pulls every live instance of `service` and stores the merged counters under `label` (1 to
/// 1,024 bytes without control characters); with `reset`, the instances hand over their
/// counters and start again from zero. Returns the snapshot's id.
pub async fn take(
    app: &Arc<App>,
    service: &str,
    label: Option<String>,
    reset: bool,
) -> Result<i64, SnapshotError> {
    let started = Instant::now();
    if let Some(label) = &label {
        report::types::check_text("label", label, 1024).map_err(SnapshotError::Invalid)?;
    }
    if !app.store.service_exists(service).await? {
        return Err(SnapshotError::UnknownService(service.to_string()));
    }
    let live = app.store.instances(service, true).await?;
    if live.is_empty() {
        return Err(SnapshotError::NoLiveInstances(service.to_string()));
    }
    // Nothing is taken from an instance while the database is known to be away.
    app.store.ping().await?;
    let taken_at = now_ms();

    // The metadata of every build, fetched from the build's own instances if it is new.
    let mut by_build: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for i in &live {
        by_build
            .entry(&i.build)
            .or_default()
            .push(i.address.clone());
    }
    let mut builds: BTreeMap<String, Result<Arc<Build>, String>> = BTreeMap::new();
    for (build, addresses) in by_build {
        let got = match app.build(build, &addresses).await {
            Ok(b) => Ok(b),
            Err(BuildError::Store(e)) if e.is_unavailable() => return Err(e.into()),
            // What clients read of a server error: its cause is not theirs to see.
            Err(e @ BuildError::Stored { .. }) => {
                tracing::warn!(error = %crate::error::Chain(&e), "build of a live instance");
                Err(crate::error::INTERNAL.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        builds.insert(build.to_string(), got);
    }

    let pulls = futures::stream::iter(live.into_iter().map(|inst| {
        let build = builds[&inst.build].clone();
        let app = app.clone();
        async move {
            let build = match build {
                Ok(b) => b,
                Err(msg) => return (inst, Err((Outcome::Rejected, msg)), 0),
            };
            let (r, took) = timed(app.agents.counters(&inst.address, &build, reset)).await;
            app.metrics
                .pulled(r.as_ref().map_or_else(|f| f.outcome, |_| Outcome::Ok), took);
            let r = r.map(|c| (build, c)).map_err(|f| (f.outcome, f.message));
            (inst, r, took.as_millis() as i64)
        }
    }))
    .buffer_unordered(app.config.pull_concurrency.max(1))
    .collect::<Vec<_>>()
    .await;

    let mut merged: BTreeMap<String, (Arc<Build>, Vec<u32>, i64)> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(pulls.len());
    for (inst, result, duration_ms) in &pulls {
        let (inst, duration_ms) = (inst, *duration_ms);
        let (outcome, message) = match result {
            Ok((build, counters)) => {
                let mode = build.mode();
                let entry = merged
                    .entry(build.id.clone())
                    .or_insert_with(|| (build.clone(), vec![0; build.num_blocks()], 0));
                for &(i, v) in &counters.nonzero {
                    report::merge_count(mode, &mut entry.1[i as usize], v);
                }
                entry.2 += 1;
                (Outcome::Ok, None)
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
        outcomes.push(outcome_row(inst, outcome, message, duration_ms));
    }
    outcomes.sort_by(|a, b| a.instance.cmp(&b.instance));
    if merged.is_empty() {
        app.metrics.snapshot_failed();
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

    let (mut blocks, mut blocks_covered, mut stmts, mut stmts_covered) = (0i64, 0i64, 0i64, 0i64);
    let mut parts = Vec::with_capacity(merged.len());
    let mut used = Vec::with_capacity(merged.len());
    for (_, (build, values, instances)) in merged {
        let part = summarize(&build, &values, instances);
        blocks += part.blocks;
        blocks_covered += part.blocks_covered;
        stmts += part.stmts;
        stmts_covered += part.stmts_covered;
        parts.push(part);
        used.push(build);
    }
    let totals = Totals::new(blocks, blocks_covered, stmts, stmts_covered);
    let snap = NewSnapshot {
        service: service.to_string(),
        label,
        reset,
        taken_at,
        duration_ms: started.elapsed().as_millis() as i64,
        totals,
        builds: parts,
        instances: outcomes,
    };
    let stored = async {
        for b in &used {
            app.store.insert_build(b).await?;
        }
        app.store.insert_snapshot(&snap).await
    }
    .await;
    match stored {
        Ok(id) => {
            app.metrics.snapshot_stored(started.elapsed());
            tracing::info!(
                service,
                snapshot = id,
                reset,
                instances = snap.instances.len(),
                "snapshot stored"
            );
            Ok(id)
        }
        Err(e) => {
            app.metrics.snapshot_failed();
            if reset {
                app.pending.lock().await.push((snap, used));
                return Err(SnapshotError::Held { source: e });
            }
            Err(e.into())
        }
    }
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

/// A build's merged counters with their totals, per file and in all.
pub fn summarize(build: &Build, values: &[u32], instances: i64) -> SnapshotBuild {
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
        files,
    }
}

/// A snapshot as listed.
pub fn info(s: &SnapshotRow) -> SnapshotInfo {
    SnapshotInfo {
        id: s.id,
        service: s.service.clone(),
        label: s.label.clone(),
        reset: s.reset,
        taken_at: report::rfc3339(s.taken_at),
        duration_ms: s.duration_ms,
        instances_ok: s.instances_ok,
        instances_failed: s.instances_failed,
        totals: s.totals.clone(),
    }
}

/// The snapshots of `service`, newest first: at most `limit` (100 if not given, 1 to 1,000),
/// older than snapshot `before` if given.
pub async fn list(
    app: &App,
    service: String,
    limit: Option<i64>,
    before: Option<i64>,
) -> Result<SnapshotList, SnapshotError> {
    if !app.store.service_exists(&service).await? {
        return Err(SnapshotError::UnknownService(service));
    }
    let limit = limit.unwrap_or(100).clamp(1, 1000);
    let rows = app.store.snapshots(&service, limit, before).await?;
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
    Ok(SnapshotDetail {
        snapshot: info(&row),
        builds: builds
            .iter()
            .map(|b| BuildPart {
                build: b.build.clone(),
                mode: b.mode.clone(),
                instances: b.instances,
                totals: Totals::new(b.blocks, b.blocks_covered, b.stmts, b.stmts_covered),
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

/// The merged counters of a stored snapshot, per build, dense, with the build's metadata.
pub async fn counters(app: &App, id: i64) -> Result<Vec<(Arc<Build>, Vec<u32>)>, SnapshotError> {
    Ok(stored(app, id).await?.1)
}

/// A stored snapshot: its row and [`counters`].
pub async fn stored(
    app: &App,
    id: i64,
) -> Result<(SnapshotRow, Vec<(Arc<Build>, Vec<u32>)>), SnapshotError> {
    let row = row(app, id).await?;
    let mut out = Vec::new();
    for part in app.store.snapshot_builds(id).await? {
        let build = app.build(&part.build, &[]).await?;
        let sparse = lcc::decode(&part.counters, &build.id, &build.shape).map_err(|source| {
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
