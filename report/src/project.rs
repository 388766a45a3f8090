//! One build's view of the counters of several: what a service's coverage is when its
//! instances ran more than one build (a rolling update, a redeploy, a QA cycle across many).
//!
//! A service's coverage is about its source, so every view is against one build, the
//! **target** (the newest, unless asked otherwise), and every other build's counts are carried
//! into it where the code is the same:
//!
//! - A **function** is the same in two builds when its file has the same name, its text the
//!   same hash (`instrumenter::Func::hash`), it is the same occurrence of that text in the
//!   file (two identical package-level literals pair in order), and its blocks have the same
//!   shape relative to its first block (same line offsets, columns and statement counts). A
//!   function that moved, because lines were added above it, is the same; its blocks map one
//!   to one, in position order.
//! - A function of the target that no other build has the same is **edited** (another build
//!   has a function of that name in that file) or **added**; what was measured on the old
//!   version is not claimed for it. A function whose text is unchanged but which another Go
//!   release cut into other blocks counts as edited too: its blocks cannot be mapped.
//! - A function that only other builds have is **gone** from the target: listed apart
//!   ([`Projection::gone`]), never in the totals.
//!
//! Counts combine like counters of one build ([`merge_count`], in the mode all the builds
//! merge in). Each block of the target records where its coverage came from ([`Origin`]) and
//! each function its [`State`], so a report can tell "ran on this build" from "ran on an
//! earlier build of the same code".

use std::collections::{HashMap, HashSet};

use instrumenter::{BuildMeta, FileMeta, Mode};

/// Merges `value` into `acc` the way counters of one build combine across instances:
/// set mode ORs (any non-zero is 1), count and atomic modes add, saturating.
pub fn merge_count(mode: Mode, acc: &mut u32, value: u32) {
    *acc = match mode {
        Mode::Set => u32::from(*acc != 0 || value != 0),
        Mode::Count | Mode::Atomic => acc.saturating_add(value),
    };
}

/// The mode counts of several builds merge in: theirs when they agree, else count.
pub fn merged_mode(modes: impl IntoIterator<Item = Mode>) -> Mode {
    let modes: Vec<Mode> = modes.into_iter().collect();
    if modes.windows(2).all(|w| w[0] == w[1]) {
        modes.first().copied().unwrap_or(Mode::Set)
    } else {
        Mode::Count
    }
}

/// One build's counters, dense, in its counter order.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    /// The build id.
    pub build: &'a str,
    pub meta: &'a BuildMeta,
    pub values: &'a [u32],
}

/// Where a block's coverage came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Not covered.
    #[default]
    None,
    /// Covered on the target build.
    Measured,
    /// Not covered on the target build, covered on another build of the same function.
    Carried,
}

/// A function of the target build as the view sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum State {
    /// Some of its blocks ran on the target build.
    Measured,
    /// None ran on the target build; some ran on another build of the same function.
    Carried,
    /// Edited or added ([`Change`]) and not covered yet.
    Changed,
    /// The same as in the other builds, and covered on none.
    #[default]
    Uncovered,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Measured => "measured",
            State::Carried => "carried",
            State::Changed => "changed",
            State::Uncovered => "uncovered",
        }
    }
}

/// How a function of one side relates to the builds of the other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Change {
    /// Another build has the same function (or there is no other build).
    #[default]
    Same,
    /// Other builds have a function of this name in this file, none the same.
    Edited,
    /// No other build has a function of this name in this file.
    Added,
    /// Only the other builds have it (in [`Projection::gone`]).
    Removed,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Same => "same",
            Change::Edited => "edited",
            Change::Added => "added",
            Change::Removed => "removed",
        }
    }
}

/// A function of the target build: its state and how it relates to the other builds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FuncView {
    pub state: State,
    pub change: Change,
}

/// A function only builds other than the target have, with what was measured on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone {
    pub file: String,
    pub func: String,
    /// The newest build that has it.
    pub build: String,
    /// [`Change::Edited`] when the target has a function of this name in this file, else
    /// [`Change::Removed`].
    pub change: Change,
    pub blocks: u32,
    pub stmts: u32,
    pub blocks_covered: u32,
    pub stmts_covered: u32,
}

/// The view of several builds' counters against one of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// Index of the target in the parts.
    pub target: usize,
    /// The mode all the parts' counts merge in.
    pub mode: Mode,
    /// Per block of the target, in its counter order.
    pub counts: Vec<u32>,
    pub origins: Vec<Origin>,
    /// Per file of the target, per function.
    pub funcs: Vec<Vec<FuncView>>,
    /// Functions only other builds have, by file and name.
    pub gone: Vec<Gone>,
    /// The number of parts: the target and the builds carried into it.
    pub builds: usize,
}

/// A function's blocks in position order, and their shape relative to the first: equal
/// shapes map block to block.
fn func_blocks(file: &FileMeta, func: usize, by_func: &[Vec<usize>]) -> Vec<usize> {
    let mut blocks = by_func[func].clone();
    blocks.sort_by_key(|&i| (file.blocks[i].start, file.blocks[i].end));
    blocks
}

fn same_shape(a: &FileMeta, ab: &[usize], b: &FileMeta, bb: &[usize]) -> bool {
    if ab.len() != bb.len() || ab.is_empty() {
        return false;
    }
    let (a0, b0) = (
        i64::from(a.blocks[ab[0]].start.line),
        i64::from(b.blocks[bb[0]].start.line),
    );
    ab.iter().zip(bb).all(|(&i, &j)| {
        let (x, y) = (&a.blocks[i], &b.blocks[j]);
        i64::from(x.start.line) - a0 == i64::from(y.start.line) - b0
            && i64::from(x.end.line) - a0 == i64::from(y.end.line) - b0
            && x.start.col == y.start.col
            && x.end.col == y.end.col
            && x.num_stmt == y.num_stmt
    })
}

/// Per function of a file, its block indexes (counter order).
fn blocks_by_func(file: &FileMeta) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); file.funcs.len()];
    for (i, b) in file.blocks.iter().enumerate() {
        if let Some(v) = out.get_mut(b.func as usize) {
            v.push(i);
        }
    }
    out
}

/// Each function's occurrence among the functions of the same text in its file.
fn occurrences(file: &FileMeta) -> Vec<([u8; 32], u32)> {
    let mut seen: HashMap<[u8; 32], u32> = HashMap::new();
    file.funcs
        .iter()
        .map(|f| {
            let k = seen.entry(f.hash).or_insert(0);
            *k += 1;
            (f.hash, *k - 1)
        })
        .collect()
}

fn offsets(meta: &BuildMeta) -> Vec<usize> {
    let mut at = 0;
    meta.files
        .iter()
        .map(|f| {
            let o = at;
            at += f.blocks.len();
            o
        })
        .collect()
}

/// How one other build's functions map onto the target's.
struct Mapped {
    /// Per (file, function) of the other build: the target's (file, function) it is.
    funcs: Vec<Vec<Option<(usize, usize)>>>,
    /// Per file of the other build: whether it is the target's file of that name, unchanged
    /// (all its functions are the target's, nothing of it is gone).
    identical: Vec<bool>,
}

/// The target's index: files by name, and per file its functions by (hash, occurrence).
struct Index<'a> {
    meta: &'a BuildMeta,
    files: HashMap<&'a str, usize>,
    /// Per file, per function: its blocks in position order.
    sorted: Vec<Vec<Vec<usize>>>,
    ids: Vec<HashMap<([u8; 32], u32), usize>>,
}

impl<'a> Index<'a> {
    fn new(meta: &'a BuildMeta) -> Index<'a> {
        Index {
            meta,
            files: meta
                .files
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name.as_str(), i))
                .collect(),
            sorted: meta
                .files
                .iter()
                .map(|f| {
                    let by_func = blocks_by_func(f);
                    (0..f.funcs.len())
                        .map(|g| func_blocks(f, g, &by_func))
                        .collect()
                })
                .collect(),
            ids: meta
                .files
                .iter()
                .map(|f| {
                    occurrences(f)
                        .into_iter()
                        .enumerate()
                        .map(|(i, k)| (k, i))
                        .collect()
                })
                .collect(),
        }
    }

    /// Maps `other`'s functions onto the target's, and calls `each(other block, target
    /// block)` for every pair of blocks that are the same.
    fn map(&self, other: &BuildMeta, mut each: impl FnMut(usize, usize)) -> Mapped {
        let (ot, oo) = (offsets(self.meta), offsets(other));
        let mut funcs = Vec::with_capacity(other.files.len());
        let mut identical = vec![false; other.files.len()];
        for (fi, file) in other.files.iter().enumerate() {
            let Some(&ti) = self.files.get(file.name.as_str()) else {
                funcs.push(vec![None; file.funcs.len()]);
                continue;
            };
            let target = &self.meta.files[ti];
            if target == file {
                for i in 0..file.blocks.len() {
                    each(oo[fi] + i, ot[ti] + i);
                }
                funcs.push((0..file.funcs.len()).map(|g| Some((ti, g))).collect());
                identical[fi] = true;
                continue;
            }
            let by_func = blocks_by_func(file);
            let mut row = Vec::with_capacity(file.funcs.len());
            for (g, id) in occurrences(file).into_iter().enumerate() {
                let same = self.ids[ti].get(&id).and_then(|&t| {
                    let tb = &self.sorted[ti][t];
                    let ob = func_blocks(file, g, &by_func);
                    same_shape(file, &ob, target, tb).then_some((t, ob, tb))
                });
                row.push(same.map(|(t, ob, tb)| {
                    for (&o, &t) in ob.iter().zip(tb) {
                        each(oo[fi] + o, ot[ti] + t);
                    }
                    (ti, t)
                }));
            }
            funcs.push(row);
        }
        Mapped { funcs, identical }
    }
}

/// The view of `parts` against `parts[target]`. Parts are given oldest first (the order
/// says which build a [`Gone`] function is named after); each build once.
pub fn project(parts: &[Part], target: usize) -> Projection {
    let mode = merged_mode(parts.iter().map(|p| p.meta.mode));
    let t = &parts[target];
    let n = t.meta.num_blocks();
    let mut counts = vec![0u32; n];
    let mut carried = vec![0u32; n];
    for (c, &v) in counts.iter_mut().zip(t.values) {
        merge_count(mode, c, v);
    }
    let index = Index::new(t.meta);
    let mut matched: Vec<Vec<bool>> = t
        .meta
        .files
        .iter()
        .map(|f| vec![false; f.funcs.len()])
        .collect();
    // Functions of other builds by (file, name), for edited and added; and the ones the
    // target does not have, newest first wins.
    let mut names: HashSet<(&str, &str)> = HashSet::new();
    let mut gone: HashMap<(&str, &str, [u8; 32]), Gone> = HashMap::new();
    for (pi, p) in parts.iter().enumerate().rev() {
        if pi == target {
            continue;
        }
        let mapped = index.map(p.meta, |o, t| {
            merge_count(mode, &mut carried[t], p.values.get(o).copied().unwrap_or(0))
        });
        let oo = offsets(p.meta);
        for (fi, file) in p.meta.files.iter().enumerate() {
            if mapped.identical[fi] {
                // Every function is the target's: matched, none gone, no name to add that
                // the target's own file does not have.
                for (ti, tf) in mapped.funcs[fi].iter().flatten() {
                    matched[*ti][*tf] = true;
                }
                continue;
            }
            // Grouped only if some function of the file is gone: most differing files merely
            // moved.
            let mut by_func: Option<Vec<Vec<usize>>> = None;
            for (g, func) in file.funcs.iter().enumerate() {
                names.insert((file.name.as_str(), func.name.as_str()));
                if let Some((ti, tf)) = mapped.funcs[fi][g] {
                    matched[ti][tf] = true;
                    continue;
                }
                let entry = gone
                    .entry((file.name.as_str(), func.name.as_str(), func.hash))
                    .or_insert_with(|| Gone {
                        file: file.name.clone(),
                        func: func.name.clone(),
                        build: p.build.to_string(),
                        change: Change::Removed,
                        blocks: 0,
                        stmts: 0,
                        blocks_covered: 0,
                        stmts_covered: 0,
                    });
                // Named after the newest build that has it; what older builds measured on
                // the same text only raises what it covers.
                let (mut b, mut s, mut bc, mut sc) = (0, 0, 0, 0);
                let by_func = by_func.get_or_insert_with(|| blocks_by_func(file));
                for &i in &by_func[g] {
                    let block = &file.blocks[i];
                    b += 1;
                    s += block.num_stmt;
                    if p.values.get(oo[fi] + i).is_some_and(|&v| v != 0) {
                        bc += 1;
                        sc += block.num_stmt;
                    }
                }
                if entry.build == p.build {
                    (entry.blocks, entry.stmts) = (b, s);
                }
                entry.blocks_covered = entry.blocks_covered.max(bc);
                entry.stmts_covered = entry.stmts_covered.max(sc);
            }
        }
    }
    let mut origins = vec![Origin::None; n];
    for i in 0..n {
        origins[i] = if counts[i] != 0 {
            Origin::Measured
        } else if carried[i] != 0 {
            Origin::Carried
        } else {
            Origin::None
        };
        let c = carried[i];
        merge_count(mode, &mut counts[i], c);
    }
    let others = parts.len() > 1;
    let to = offsets(t.meta);
    let funcs = t
        .meta
        .files
        .iter()
        .enumerate()
        .map(|(fi, file)| {
            let mut state = vec![FuncView::default(); file.funcs.len()];
            for (g, func) in file.funcs.iter().enumerate() {
                state[g].change = if !others || matched[fi][g] {
                    Change::Same
                } else if names.contains(&(file.name.as_str(), func.name.as_str())) {
                    Change::Edited
                } else {
                    Change::Added
                };
            }
            let mut seen = vec![Origin::None; file.funcs.len()];
            for (i, b) in file.blocks.iter().enumerate() {
                let (o, s) = (origins[to[fi] + i], &mut seen[b.func as usize]);
                if o == Origin::Measured || (o == Origin::Carried && *s == Origin::None) {
                    *s = o;
                }
            }
            for (v, o) in state.iter_mut().zip(seen) {
                v.state = match o {
                    Origin::Measured => State::Measured,
                    Origin::Carried => State::Carried,
                    Origin::None if v.change != Change::Same => State::Changed,
                    Origin::None => State::Uncovered,
                };
            }
            state
        })
        .collect();
    let target_names: HashSet<(&str, &str)> = t
        .meta
        .files
        .iter()
        .flat_map(|f| {
            f.funcs
                .iter()
                .map(move |g| (f.name.as_str(), g.name.as_str()))
        })
        .collect();
    let mut gone: Vec<Gone> = gone
        .into_values()
        .map(|mut g| {
            if target_names.contains(&(g.file.as_str(), g.func.as_str())) {
                g.change = Change::Edited;
            }
            g
        })
        .collect();
    gone.sort_by(|a, b| (&a.file, &a.func, &a.build).cmp(&(&b.file, &b.func, &b.build)));
    Projection {
        target,
        mode,
        counts,
        origins,
        funcs,
        gone,
        builds: parts.len(),
    }
}

#[cfg(test)]
mod tests {
    use instrumenter::{BuildMeta, Mode, Rules, analyze};

    use super::*;

    const V1: &str = "package p

func A(x int) int {
\tif x > 0 {
\t\treturn 1
\t}
\treturn 0
}

func B() int {
\treturn 2
}

func C() int {
\treturn 3
}
";

    /// `B` edited (one more line, so `C` moves down by one), `D` added.
    const V2: &str = "package p

func A(x int) int {
\tif x > 0 {
\t\treturn 1
\t}
\treturn 0
}

func B() int {
\ty := 2
\treturn y
}

func C() int {
\treturn 3
}

func D() int {
\treturn 4
}
";

    fn build(src: &str, rules: Rules) -> BuildMeta {
        BuildMeta {
            mode: Mode::Set,
            files: vec![analyze("m/p/p.go", src.as_bytes(), rules).unwrap()],
        }
    }

    /// The counts of `meta` with the blocks of the named functions at the given positions
    /// (in position order within the function) set to 1.
    fn hits(meta: &BuildMeta, hit: &[(&str, usize)]) -> Vec<u32> {
        let file = &meta.files[0];
        let mut values = vec![0; file.blocks.len()];
        for &(name, k) in hit {
            let f = file.funcs.iter().position(|f| f.name == name).unwrap();
            let mut own: Vec<usize> = (0..file.blocks.len())
                .filter(|&i| file.blocks[i].func as usize == f)
                .collect();
            own.sort_by_key(|&i| file.blocks[i].start);
            values[own[k]] = 1;
        }
        values
    }

    fn view(meta: &BuildMeta, proj: &Projection, name: &str) -> (FuncView, Vec<u32>) {
        let file = &meta.files[0];
        let f = file.funcs.iter().position(|f| f.name == name).unwrap();
        let mut own: Vec<usize> = (0..file.blocks.len())
            .filter(|&i| file.blocks[i].func as usize == f)
            .collect();
        own.sort_by_key(|&i| file.blocks[i].start);
        (
            proj.funcs[0][f],
            own.iter().map(|&i| proj.counts[i]).collect(),
        )
    }

    #[test]
    fn unchanged_moved_edited_and_added_functions() {
        let (v1, v2) = (build(V1, Rules::Go120), build(V2, Rules::Go120));
        // A: entry and tail ran on v1, entry and the if body on v2; B and C ran on v1 only.
        let c1 = hits(&v1, &[("A", 0), ("A", 2), ("B", 0), ("C", 0)]);
        let c2 = hits(&v2, &[("A", 0), ("A", 1)]);
        let parts = [
            Part {
                build: "v1",
                meta: &v1,
                values: &c1,
            },
            Part {
                build: "v2",
                meta: &v2,
                values: &c2,
            },
        ];
        let p = project(&parts, 1);
        let (a, counts) = view(&v2, &p, "A");
        assert_eq!(
            (a.state, a.change, counts),
            (State::Measured, Change::Same, vec![1, 1, 1])
        );
        // A's tail is v1's: carried.
        let file = &v2.files[0];
        let tail = (0..file.blocks.len())
            .max_by_key(|&i| (file.blocks[i].func == 0, file.blocks[i].start))
            .unwrap();
        assert_eq!(p.origins[tail], Origin::Carried);
        // B changed: what v1 measured on it is not claimed; its old version is listed.
        let (b, counts) = view(&v2, &p, "B");
        assert_eq!(
            (b.state, b.change, counts),
            (State::Changed, Change::Edited, vec![0])
        );
        // C moved down a line: the same function, carried.
        let (c, counts) = view(&v2, &p, "C");
        assert_eq!(
            (c.state, c.change, counts),
            (State::Carried, Change::Same, vec![1])
        );
        let (d, _) = view(&v2, &p, "D");
        assert_eq!((d.state, d.change), (State::Changed, Change::Added));
        assert_eq!(
            p.gone,
            [Gone {
                file: "m/p/p.go".into(),
                func: "B".into(),
                build: "v1".into(),
                change: Change::Edited,
                blocks: 1,
                stmts: 1,
                blocks_covered: 1,
                stmts_covered: 1,
            }]
        );
        // Statements: A 3 of 3, B 0 of 2, C 1 of 1, D 0 of 1: one build's blocks, once.
        let cov = crate::Coverage::of(1, 0, &v2, &p);
        let (stmts, covered) = cov.files[0].blocks.iter().fold((0, 0), |(s, c), b| {
            (s + b.stmts, c + if b.count > 0 { b.stmts } else { 0 })
        });
        assert_eq!((stmts, covered), (7, 4));
        let profile = crate::go::write(&v2, p.mode, &p.counts);
        assert_eq!(profile.lines().count(), 1 + v2.num_blocks());

        // Against v1 instead: v2's B and D are not v1's, v1's B is edited.
        let back = project(&parts, 0);
        let (b, counts) = view(&v1, &back, "B");
        assert_eq!(
            (b.state, b.change, counts),
            (State::Measured, Change::Edited, vec![1])
        );
        let names: Vec<(&str, Change)> = back
            .gone
            .iter()
            .map(|g| (g.func.as_str(), g.change))
            .collect();
        assert_eq!(names, [("B", Change::Edited), ("D", Change::Removed)]);
    }

    #[test]
    fn one_build_is_itself() {
        let v1 = build(V1, Rules::Go120);
        let c1 = hits(&v1, &[("A", 0), ("C", 0)]);
        let p = project(
            &[Part {
                build: "v1",
                meta: &v1,
                values: &c1,
            }],
            0,
        );
        assert_eq!(p.counts, c1);
        assert!(p.gone.is_empty());
        let states: Vec<State> = p.funcs[0].iter().map(|v| v.state).collect();
        assert_eq!(states, [State::Measured, State::Uncovered, State::Measured]);
        assert!(p.funcs[0].iter().all(|v| v.change == Change::Same));
    }

    #[test]
    fn counts_add_and_identical_files_map_whole() {
        let v1 = build(V1, Rules::Go120);
        let mut count = v1.clone();
        count.mode = Mode::Count;
        let (a, b) = (vec![1, 2, 0, 4, 5], vec![10, 0, 0, 1, 0]);
        let parts = [
            Part {
                build: "x",
                meta: &count,
                values: &a,
            },
            Part {
                build: "y",
                meta: &count,
                values: &b,
            },
        ];
        let p = project(&parts, 1);
        assert_eq!(p.counts, [11, 2, 0, 5, 5]);
        assert_eq!(p.origins[1], Origin::Carried);
        assert_eq!(p.origins[0], Origin::Measured);
        // Modes that differ merge as counts.
        let p = project(
            &[
                Part {
                    build: "x",
                    meta: &v1,
                    values: &a,
                },
                Part {
                    build: "y",
                    meta: &count,
                    values: &b,
                },
            ],
            1,
        );
        assert_eq!(p.mode, Mode::Count);
    }

    #[test]
    fn another_cut_of_the_same_text_is_not_carried() {
        // A blank line inside a block: Go 1.27 cuts it in two, Go 1.26 does not.
        let src = "package p\n\nfunc F() {\n\ta := 1\n\n\t_ = a\n}\n";
        let (old, new) = (build(src, Rules::Go120), build(src, Rules::Go127));
        assert_ne!(old.files[0].blocks.len(), new.files[0].blocks.len());
        let (c_old, c_new) = (vec![1; old.num_blocks()], vec![0; new.num_blocks()]);
        let p = project(
            &[
                Part {
                    build: "old",
                    meta: &old,
                    values: &c_old,
                },
                Part {
                    build: "new",
                    meta: &new,
                    values: &c_new,
                },
            ],
            1,
        );
        assert_eq!(p.funcs[0][0].change, Change::Edited);
        assert!(p.counts.iter().all(|&c| c == 0));
    }

    #[test]
    fn moved_functions_map_block_to_block() {
        let (v1, v2) = (build(V1, Rules::Go120), build(V2, Rules::Go120));
        let mut map = vec![None; v1.num_blocks()];
        let mapped = Index::new(&v2).map(&v1, |o, t| map[o] = Some(t));
        let mut same = vec![vec![false; v2.files[0].funcs.len()]];
        for (ti, tf) in mapped.funcs.into_iter().flatten().flatten() {
            same[ti][tf] = true;
        }
        let f1 = &v1.files[0];
        let f2 = &v2.files[0];
        for (i, to) in map.iter().enumerate() {
            let name = &f1.funcs[f1.blocks[i].func as usize].name;
            match to {
                Some(j) => {
                    assert_eq!(&f2.funcs[f2.blocks[*j].func as usize].name, name);
                    let shift = if name == "C" { 1 } else { 0 };
                    assert_eq!(f2.blocks[*j].start.line, f1.blocks[i].start.line + shift);
                }
                None => assert_eq!(name, "B"),
            }
        }
        assert_eq!(same, [vec![true, false, true, false]]);
    }

    #[test]
    fn merging() {
        let mut v = 0;
        merge_count(Mode::Set, &mut v, 5);
        assert_eq!(v, 1);
        merge_count(Mode::Set, &mut v, 0);
        assert_eq!(v, 1);
        let mut c = u32::MAX - 1;
        merge_count(Mode::Count, &mut c, 5);
        assert_eq!(c, u32::MAX);
    }
}
