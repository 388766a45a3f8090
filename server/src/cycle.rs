//! The coverage of a QA cycle: every snapshot of a service from a chosen first one to a
//! chosen last one (default: the newest), across any number of builds, rounds and deploys,
//! seen against one build (the newest) by `report::project`. It answers what a QA lead asks
//! before a release: what of the code we ship has been exercised, by anything, since the
//! cycle began, and what changed and has not been covered since.
//!
//! A build's counts over the cycle are, per block, the largest any one of the cycle's
//! snapshots holds: covered in the cycle exactly when some snapshot covered it. Counts in
//! count mode are thus a lower bound of the runs (snapshots of one round overlap, so adding
//! them would count runs twice).

use std::collections::BTreeMap;
use std::sync::Arc;

use report::project::{Change, Origin, State};
use report::types::{Cycle, CycleBuild, CycleFile, GoneFunc, StateCounts, Totals};

use crate::App;
use crate::meta::Build;
use crate::snapshot::{Against, BuildCounts, SnapshotError, View, known_build, stored};

/// The most snapshots one cycle spans.
pub const MAX_SNAPSHOTS: i64 = 10_000;

/// A cycle's builds with their counts over it, oldest first, and the one it is seen against.
pub struct CycleView {
    pub service: String,
    pub from: i64,
    pub to: i64,
    pub snapshots: i64,
    /// Milliseconds since the Unix epoch: when the last snapshot was taken.
    pub taken_at: i64,
    pub parts: Vec<(Arc<Build>, Vec<u32>)>,
    pub target: usize,
    /// Per part: the first and last snapshots that hold it.
    pub spans: Vec<(i64, i64)>,
}

impl Against for CycleView {
    fn builds(&self) -> (&[BuildCounts], usize) {
        (&self.parts, self.target)
    }
}

/// The cycle of `service` from snapshot `from` to `to` (default: its newest), of each
/// snapshot's `view`, against `build` (default: the build its last snapshot was taken
/// against).
pub async fn load(
    app: &App,
    service: &str,
    from: i64,
    to: Option<i64>,
    view: View,
    build: Option<&str>,
) -> Result<CycleView, SnapshotError> {
    if !app.store.service_exists(service).await? {
        return Err(SnapshotError::UnknownService(service.to_string()));
    }
    let first = crate::snapshot::row(app, from).await?;
    if first.service != service {
        return Err(SnapshotError::Invalid(format!(
            "snapshot {from} is of service {:?}, not {service:?}",
            first.service
        )));
    }
    let to = to.unwrap_or(i64::MAX);
    if to < from {
        return Err(SnapshotError::Invalid(format!(
            "a cycle runs from a snapshot to a later one: {to} is before {from}"
        )));
    }
    let rows = app
        .store
        .snapshot_range(service, from, to, MAX_SNAPSHOTS + 1)
        .await?;
    if rows.len() as i64 > MAX_SNAPSHOTS {
        return Err(SnapshotError::Invalid(format!(
            "a cycle spans at most {MAX_SNAPSHOTS} snapshots; choose a later first one"
        )));
    }
    let last = rows.last().expect("the first snapshot is in the range");
    let (to, taken_at) = (last.id, last.taken_at);
    // Per build: its counts, merged over the snapshots by the largest; first seen order.
    let mut order: Vec<String> = Vec::new();
    let mut merged: BTreeMap<String, (Arc<Build>, Vec<u32>, i64, i64)> = BTreeMap::new();
    let mut last_builds = Vec::new();
    for row in &rows {
        let (_, parts) = stored(app, row.id, view).await?;
        last_builds = parts.iter().map(|(b, _)| b.id.clone()).collect();
        for (b, values) in parts {
            match merged.get_mut(&b.id) {
                Some((_, acc, _, last)) => {
                    for (a, v) in acc.iter_mut().zip(values) {
                        *a = (*a).max(v);
                    }
                    *last = row.id;
                }
                None => {
                    order.push(b.id.clone());
                    merged.insert(b.id.clone(), (b, values, row.id, row.id));
                }
            }
        }
    }
    let want = build
        .map(str::to_string)
        .or_else(|| last.build.clone())
        .or_else(|| last_builds.last().cloned());
    if let Some(w) = build.filter(|w| !merged.contains_key(*w)) {
        let b = known_build(app, w).await?;
        let n = b.num_blocks();
        order.push(b.id.clone());
        merged.insert(b.id.clone(), (b, vec![0; n], 0, 0));
    }
    let mut parts = Vec::with_capacity(order.len());
    let mut spans = Vec::with_capacity(order.len());
    for id in &order {
        let (b, v, first, last) = merged.remove(id).expect("every ordered build is merged");
        parts.push((b, v));
        spans.push((first, last));
    }
    let target = want
        .and_then(|w| order.iter().position(|id| *id == w))
        .unwrap_or(order.len() - 1);
    Ok(CycleView {
        service: service.to_string(),
        from,
        to,
        snapshots: rows.len() as i64,
        taken_at,
        parts,
        target,
        spans,
    })
}

/// The cycle's summary: totals, statements measured and carried, functions by state, per
/// file, and the functions only earlier builds have.
pub fn summary(c: &CycleView) -> Cycle {
    let proj = c.project();
    let build = c.target();
    let mut all = Acc::default();
    let mut files = Vec::with_capacity(build.meta.files.len());
    for (fi, file) in build.meta.files.iter().enumerate() {
        let at = build.offsets[fi];
        let mut acc = Acc::default();
        for (i, b) in file.blocks.iter().enumerate() {
            acc.block(b.num_stmt, proj.counts[at + i], proj.origins[at + i]);
        }
        for v in &proj.funcs[fi] {
            acc.func(v.state);
        }
        all.add(&acc);
        files.push(CycleFile {
            file: file.name.clone(),
            totals: acc.totals(),
            stmts_measured: acc.measured,
            stmts_carried: acc.carried,
            functions: acc.states.clone(),
        });
    }
    files.sort_by(|a, b| a.file.cmp(&b.file));
    Cycle {
        service: c.service.clone(),
        from: c.from,
        to: c.to,
        snapshots: c.snapshots,
        build: build.id.clone(),
        builds: c
            .parts
            .iter()
            .zip(&c.spans)
            .filter(|(_, s)| s.0 != 0)
            .map(|((b, _), &(first, last))| CycleBuild {
                build: b.id.clone(),
                first_snapshot: first,
                last_snapshot: last,
            })
            .collect(),
        totals: all.totals(),
        stmts_measured: all.measured,
        stmts_carried: all.carried,
        functions: all.states,
        files,
        gone: proj
            .gone
            .iter()
            .map(|g| GoneFunc {
                file: g.file.clone(),
                name: g.func.clone(),
                change: match g.change {
                    Change::Edited => "edited",
                    _ => "removed",
                }
                .into(),
                build: g.build.clone(),
                stmts: i64::from(g.stmts),
                stmts_covered: i64::from(g.stmts_covered),
            })
            .collect(),
    }
}

/// Totals, statements by origin and functions by state, of a file or all.
#[derive(Default)]
struct Acc {
    blocks: i64,
    blocks_covered: i64,
    stmts: i64,
    measured: i64,
    carried: i64,
    states: StateCounts,
}

impl Acc {
    fn block(&mut self, stmts: u32, count: u32, origin: Origin) {
        let stmts = i64::from(stmts);
        self.blocks += 1;
        self.stmts += stmts;
        if count != 0 {
            self.blocks_covered += 1;
        }
        match origin {
            Origin::Measured => self.measured += stmts,
            Origin::Carried => self.carried += stmts,
            Origin::None => {}
        }
    }

    fn func(&mut self, state: State) {
        match state {
            State::Measured => self.states.measured += 1,
            State::Carried => self.states.carried += 1,
            State::Changed => self.states.changed += 1,
            State::Uncovered => self.states.uncovered += 1,
        }
    }

    fn add(&mut self, o: &Acc) {
        self.blocks += o.blocks;
        self.blocks_covered += o.blocks_covered;
        self.stmts += o.stmts;
        self.measured += o.measured;
        self.carried += o.carried;
        self.states.measured += o.states.measured;
        self.states.carried += o.states.carried;
        self.states.changed += o.states.changed;
        self.states.uncovered += o.states.uncovered;
    }

    fn totals(&self) -> Totals {
        Totals::new(
            self.blocks,
            self.blocks_covered,
            self.stmts,
            self.measured + self.carried,
        )
    }
}
