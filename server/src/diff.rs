//! What one snapshot covers that another does not, per build they share, per file and in
//! total. A block is covered when its count is not zero.

use crate::App;
use crate::meta::Build;
use crate::snapshot::{SnapshotError, View, stored};
use crate::types::{BlockRef, BuildDiff, Diff, DiffTotals, FileDiff};

/// Why two snapshots were not compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("snapshots {a} and {b} share no build: a diff compares counters of the same build")]
    NoSharedBuild { a: i64, b: i64 },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// Compares snapshots `a` and `b`; with `blocks` false, files carry their totals only, not
/// the lists of blocks (a small answer for large builds).
pub async fn diff(app: &App, a: i64, b: i64, view: View, blocks: bool) -> Result<Diff, DiffError> {
    // Both at once: the second's reads overlap the first's load of a build they share.
    let (left, right) = tokio::try_join!(stored(app, a, view), stored(app, b, view))?;
    let (left, right) = (left.1, right.1);
    let mut total = DiffTotals::default();
    let mut builds = Vec::new();
    for (build, va) in &left {
        let Some((_, vb)) = right.iter().find(|(r, _)| r.id == build.id) else {
            continue;
        };
        let d = diff_build(build, va, vb, blocks);
        add(&mut total, &d.total);
        builds.push(d);
    }
    if builds.is_empty() {
        return Err(DiffError::NoSharedBuild { a, b });
    }
    let only = |x: &[(std::sync::Arc<Build>, Vec<u32>)],
                y: &[(std::sync::Arc<Build>, Vec<u32>)]| {
        x.iter()
            .filter(|(bx, _)| !y.iter().any(|(by, _)| by.id == bx.id))
            .map(|(bx, _)| bx.id.clone())
            .collect::<Vec<_>>()
    };
    Ok(Diff {
        a,
        b,
        total,
        only_in_a: only(&left, &right),
        only_in_b: only(&right, &left),
        builds,
    })
}

/// Compares the counters `a` and `b` of one build; lists the blocks that differ if `blocks`.
pub fn diff_build(build: &Build, a: &[u32], b: &[u32], blocks: bool) -> BuildDiff {
    let mut total = DiffTotals::default();
    let mut files = Vec::new();
    for (f, file) in build.meta.files.iter().enumerate() {
        let at = build.offsets[f];
        let mut t = DiffTotals::default();
        let mut newly = Vec::new();
        let mut lost = Vec::new();
        for (i, block) in file.blocks.iter().enumerate() {
            let (ca, cb) = (a[at + i] != 0, b[at + i] != 0);
            let stmts = i64::from(block.num_stmt);
            t.blocks += 1;
            t.stmts += stmts;
            t.a_blocks_covered += i64::from(ca);
            t.b_blocks_covered += i64::from(cb);
            t.a_stmts_covered += if ca { stmts } else { 0 };
            t.b_stmts_covered += if cb { stmts } else { 0 };
            if ca != cb {
                if cb {
                    t.newly_covered += 1;
                    t.newly_covered_stmts += stmts;
                } else {
                    t.no_longer_covered += 1;
                    t.no_longer_covered_stmts += stmts;
                }
                if !blocks {
                    continue;
                }
                let r = BlockRef {
                    start_line: block.start.line,
                    start_col: block.start.col,
                    end_line: block.end.line,
                    end_col: block.end.col,
                    stmts: block.num_stmt,
                    func: file.funcs[block.func as usize].name.clone(),
                };
                if cb { newly.push(r) } else { lost.push(r) }
            }
        }
        add(&mut total, &t);
        if t.newly_covered > 0 || t.no_longer_covered > 0 {
            files.push(FileDiff {
                file: file.name.clone(),
                total: t,
                newly_covered: newly,
                no_longer_covered: lost,
            });
        }
    }
    BuildDiff {
        build: build.id.clone(),
        total,
        files,
    }
}

fn add(to: &mut DiffTotals, t: &DiffTotals) {
    to.blocks += t.blocks;
    to.stmts += t.stmts;
    to.a_blocks_covered += t.a_blocks_covered;
    to.b_blocks_covered += t.b_blocks_covered;
    to.a_stmts_covered += t.a_stmts_covered;
    to.b_stmts_covered += t.b_stmts_covered;
    to.newly_covered += t.newly_covered;
    to.no_longer_covered += t.no_longer_covered;
    to.newly_covered_stmts += t.newly_covered_stmts;
    to.no_longer_covered_stmts += t.no_longer_covered_stmts;
}
