//! What one snapshot covers that another does not, per file and in total, against one build:
//! the newest of the second snapshot's builds. Both are seen as the projection of their
//! builds onto it (`report::project`), so snapshots of different builds compare by function
//! identity: unchanged functions block by block, edited, added and removed functions listed
//! as such. A block is covered when its count is not 0.

use std::collections::BTreeMap;

use crate::App;
use crate::meta::Build;
use crate::snapshot::{Against, SnapshotError, View, against, stored};
use crate::types::{BlockRef, Diff, DiffTotals, FileDiff, FuncDiff};
use report::project::Change;

/// Compares snapshots `a` and `b` against `build` (default: the build `b` was taken
/// against); with `blocks` false, files carry their totals only, not the lists of blocks (a
/// small answer for large builds).
pub async fn diff(
    app: &App,
    a: i64,
    b: i64,
    view: View,
    blocks: bool,
    build: Option<&str>,
) -> Result<Diff, SnapshotError> {
    // Both at once: the second's reads overlap the first's load of a build they share.
    let ((row_b, parts_b), (row_a, parts_a)) =
        tokio::try_join!(stored(app, b, view), stored(app, a, view))?;
    let right = against(app, row_b, parts_b, build).await?;
    let target = right.target().clone();
    let left = against(app, row_a, parts_a, Some(&target.id)).await?;
    let (pa, pb) = (left.project(), right.project());
    let (total, files) = diff_build(&target, &pa.counts, &pb.counts, blocks);
    let mut functions = Vec::new();
    if !left.ran_target {
        // The old versions of edited functions, and the removed ones, with a's coverage.
        let mut old: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
        for g in &pa.gone {
            let e = old.entry((&g.file, &g.func)).or_default();
            e.0 = e.0.max(i64::from(g.stmts));
            e.1 = e.1.max(i64::from(g.stmts_covered));
            if g.change == Change::Removed {
                functions.push(FuncDiff {
                    file: g.file.clone(),
                    name: g.func.clone(),
                    change: "removed".into(),
                    a_stmts: i64::from(g.stmts),
                    a_stmts_covered: i64::from(g.stmts_covered),
                    b_stmts: 0,
                    b_stmts_covered: 0,
                });
            }
        }
        for (fi, file) in target.meta.files.iter().enumerate() {
            let at = target.offsets[fi];
            for (g, func) in file.funcs.iter().enumerate() {
                let change = pa.funcs[fi][g].change;
                if change == Change::Same {
                    continue;
                }
                let (mut stmts, mut covered) = (0i64, 0i64);
                for (i, block) in file.blocks.iter().enumerate() {
                    if block.func as usize == g {
                        stmts += i64::from(block.num_stmt);
                        if pb.counts[at + i] != 0 {
                            covered += i64::from(block.num_stmt);
                        }
                    }
                }
                let (a_stmts, a_stmts_covered) = match change {
                    Change::Edited => old
                        .get(&(file.name.as_str(), func.name.as_str()))
                        .copied()
                        .unwrap_or_default(),
                    _ => (0, 0),
                };
                functions.push(FuncDiff {
                    file: file.name.clone(),
                    name: func.name.clone(),
                    change: change.as_str().into(),
                    a_stmts,
                    a_stmts_covered,
                    b_stmts: stmts,
                    b_stmts_covered: covered,
                });
            }
        }
        functions.sort_by(|x, y| (&x.file, &x.name).cmp(&(&y.file, &y.name)));
    }
    Ok(Diff {
        a,
        b,
        build: target.id.clone(),
        total,
        files,
        functions,
    })
}

/// Compares the counters `a` and `b` of one build; lists the blocks that differ if `blocks`.
pub fn diff_build(
    build: &Build,
    a: &[u32],
    b: &[u32],
    blocks: bool,
) -> (DiffTotals, Vec<FileDiff>) {
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
    (total, files)
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
