//! A snapshot's coverage: every file's blocks in position order with their counts and
//! functions, against one build, with what other builds carried into it ([`Coverage::of`] a
//! [`Projection`](crate::project::Projection)), and restricted to some lines
//! ([`Coverage::restrict`]).

use std::collections::{BTreeMap, BTreeSet};

use instrumenter::{Block, BuildMeta, FileMeta, Func, Pos};

use crate::project::{FuncView, Gone, Origin, Part, Projection, project};

/// A snapshot's coverage: every file's blocks in position order, with counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    pub snapshot: i64,
    /// Milliseconds since the Unix epoch.
    pub taken_at: i64,
    /// Files by name.
    pub files: Vec<FileCov>,
    /// Functions that only builds other than the one reported have: in no total.
    pub gone: Vec<Gone>,
    /// How many builds the coverage draws on: 1, or the reported build and the builds
    /// carried into it.
    pub builds: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileCov {
    /// The coverprofile name, `importpath/file.go`.
    pub name: String,
    /// In position order.
    pub blocks: Vec<BlockCov>,
    /// The functions with blocks, in the order of their first block.
    pub funcs: Vec<FuncCov>,
    /// The only lines [`FileCov::lines`] and [`FileCov::lines_of`] list, when the coverage is
    /// restricted to some lines ([`Coverage::restrict`]); `None` lists every line.
    pub only: Option<BTreeSet<u32>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BlockCov {
    pub start: Pos,
    pub end: Pos,
    pub stmts: u32,
    pub count: u32,
    /// Measured on the build reported, or carried from another build of the same function.
    pub origin: Origin,
    /// Index in [`FileCov::funcs`].
    pub func: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FuncCov {
    pub name: String,
    /// Indexes of its blocks in [`FileCov::blocks`], in position order: the first is the
    /// function's entry.
    pub blocks: Vec<usize>,
    /// Measured, carried, changed or uncovered, and how it relates to other builds.
    pub view: FuncView,
}

impl FuncCov {
    /// The function's first line: the first line of its entry block.
    pub fn line(&self, file: &FileCov) -> u32 {
        file.blocks[self.blocks[0]].start.line
    }

    /// The count of the function's entry block: how often the function was entered (the
    /// count `go tool cover` shows for a function's opening line).
    pub fn count(&self, file: &FileCov) -> u32 {
        file.blocks[self.blocks[0]].count
    }
}

impl FileCov {
    /// The file as metadata: its blocks in position order, its functions without content
    /// hashes (a coverage does not carry them).
    pub fn meta(&self) -> FileMeta {
        FileMeta {
            name: self.name.clone(),
            blocks: self
                .blocks
                .iter()
                .map(|b| Block {
                    start: b.start,
                    end: b.end,
                    num_stmt: b.stmts,
                    func: b.func as u32,
                })
                .collect(),
            funcs: self
                .funcs
                .iter()
                .map(|f| Func {
                    name: f.name.clone(),
                    hash: [0; 32],
                })
                .collect(),
        }
    }

    /// Every line some block covers with its count: the largest count of the blocks on it.
    pub fn lines(&self) -> BTreeMap<u32, u32> {
        self.lines_of(0..self.blocks.len())
    }

    /// [`FileCov::lines`] of some blocks only.
    pub fn lines_of(&self, blocks: impl IntoIterator<Item = usize>) -> BTreeMap<u32, u32> {
        let mut out = BTreeMap::new();
        for i in blocks {
            let b = &self.blocks[i];
            for line in instrumenter::lines_between(b.start, b.end)
                .into_iter()
                .flatten()
            {
                if self.only.as_ref().is_some_and(|only| !only.contains(&line)) {
                    continue;
                }
                let c = out.entry(line).or_insert(0);
                *c = (*c).max(b.count);
            }
        }
        out
    }

    /// The file restricted to `keep`: `None` when no block covers any of those lines. The
    /// functions with a kept line stay, each with all its blocks, so that its first line and
    /// entry count stay what they are; the other functions and their blocks go.
    pub(crate) fn restrict(&self, keep: &BTreeSet<u32>) -> Option<FileCov> {
        let mut out = FileCov {
            name: self.name.clone(),
            blocks: Vec::new(),
            funcs: Vec::new(),
            only: Some(keep.clone()),
        };
        for f in &self.funcs {
            let own = self.lines_of(f.blocks.iter().copied());
            if !own.keys().any(|l| keep.contains(l)) {
                continue;
            }
            let func = out.funcs.len();
            let first = out.blocks.len();
            out.blocks.extend(f.blocks.iter().map(|&i| BlockCov {
                func,
                ..self.blocks[i].clone()
            }));
            out.funcs.push(FuncCov {
                name: f.name.clone(),
                blocks: (first..out.blocks.len()).collect(),
                view: f.view,
            });
        }
        (!out.funcs.is_empty()).then_some(out)
    }
}

impl Coverage {
    /// The coverage of the lines `keep` names per file (by coverprofile name) only, for the
    /// exports of a change's lines: the files with a kept executable line, in them the
    /// functions with one, and as lines ([`FileCov::lines`]) the kept ones alone, so that
    /// every total counts those only.
    pub fn restrict(&self, keep: &BTreeMap<String, BTreeSet<u32>>) -> Coverage {
        Coverage {
            snapshot: self.snapshot,
            taken_at: self.taken_at,
            files: self
                .files
                .iter()
                .filter_map(|f| f.restrict(keep.get(&f.name)?))
                .collect(),
            gone: Vec::new(),
            builds: self.builds,
        }
    }

    /// The coverage of one build with its counters (in counter order), every covered block
    /// measured on it.
    pub fn of_build(snapshot: i64, taken_at: i64, meta: &BuildMeta, values: &[u32]) -> Coverage {
        let parts = [Part {
            build: "",
            meta,
            values,
        }];
        Coverage::of(snapshot, taken_at, meta, &project(&parts, 0))
    }

    /// The coverage of a [`Projection`] against `meta`, its target: each block with its
    /// count and origin, each function with its state, and the functions only other builds
    /// have.
    pub fn of(snapshot: i64, taken_at: i64, meta: &BuildMeta, proj: &Projection) -> Coverage {
        let mut files: Vec<FileCov> = Vec::with_capacity(meta.files.len());
        let mut at = 0;
        for (fi, file) in meta.files.iter().enumerate() {
            let mut order: Vec<usize> = (0..file.blocks.len()).collect();
            order.sort_by_key(|&i| (file.blocks[i].start, file.blocks[i].end));
            let mut funcs: Vec<FuncCov> = Vec::new();
            let mut index: BTreeMap<u32, usize> = BTreeMap::new();
            let blocks = order
                .into_iter()
                .enumerate()
                .map(|(k, i)| {
                    let b = &file.blocks[i];
                    let f = *index.entry(b.func).or_insert_with(|| {
                        funcs.push(FuncCov {
                            name: file
                                .funcs
                                .get(b.func as usize)
                                .map_or_else(String::new, |f| f.name.clone()),
                            blocks: Vec::new(),
                            view: proj
                                .funcs
                                .get(fi)
                                .and_then(|v| v.get(b.func as usize))
                                .copied()
                                .unwrap_or_default(),
                        });
                        funcs.len() - 1
                    });
                    funcs[f].blocks.push(k);
                    BlockCov {
                        start: b.start,
                        end: b.end,
                        stmts: b.num_stmt,
                        count: proj.counts[at + i],
                        origin: proj.origins[at + i],
                        func: f,
                    }
                })
                .collect();
            at += file.blocks.len();
            files.push(FileCov {
                name: file.name.clone(),
                blocks,
                funcs,
                only: None,
            });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Coverage {
            snapshot,
            taken_at,
            files,
            gone: proj.gone.clone(),
            builds: proj.builds,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use instrumenter::Mode;

    use super::*;

    fn block(l0: u32, c0: u32, l1: u32, c1: u32, n: u32, func: u32) -> Block {
        Block {
            start: Pos { line: l0, col: c0 },
            end: Pos { line: l1, col: c1 },
            num_stmt: n,
            func,
        }
    }

    fn func(name: &str) -> Func {
        Func {
            name: name.into(),
            hash: [0; 32],
        }
    }

    /// Two files: `a/b.go` with `F` (entered 3 times, its `if` body never) and `T.M` (never
    /// entered), and `a/c/d.go` with `G & <x>` (entered once); `Unused` has no blocks.
    pub(crate) fn sample() -> Coverage {
        let meta = BuildMeta {
            mode: Mode::Count,
            files: vec![
                FileMeta {
                    name: "example.com/m/a/c/d.go".into(),
                    blocks: vec![block(3, 10, 5, 2, 2, 0)],
                    funcs: vec![func("G & <x>")],
                },
                FileMeta {
                    name: "example.com/m/a/b.go".into(),
                    // Counter order is not position order.
                    blocks: vec![
                        block(5, 14, 7, 3, 1, 0),
                        block(10, 20, 12, 2, 1, 2),
                        block(7, 3, 8, 2, 1, 0),
                        block(3, 13, 5, 14, 2, 0),
                    ],
                    funcs: vec![func("F"), func("Unused"), func("T.M")],
                },
            ],
        };
        // d.go's counter first, then b.go's four.
        let counts = vec![1, 0, 0, 3, 3];
        Coverage::of_build(7, 1_764_000_000_123, &meta, &counts)
    }

    /// [`sample`] restricted to lines 1, 6 and 7 of `a/b.go` (6 and 7 in `F`, 1 not
    /// executable), line 4 of `a/c/d.go` and a file no build has.
    pub(crate) fn restricted() -> Coverage {
        let keep = BTreeMap::from([
            (
                "example.com/m/a/b.go".to_string(),
                BTreeSet::from([1, 6, 7]),
            ),
            ("example.com/m/a/c/d.go".to_string(), BTreeSet::from([4])),
            ("example.com/m/x.go".to_string(), BTreeSet::from([1])),
        ]);
        sample().restrict(&keep)
    }

    #[test]
    fn restrict_keeps_changed_lines_and_their_functions() {
        let cov = restricted();
        let names: Vec<&str> = cov.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["example.com/m/a/b.go", "example.com/m/a/c/d.go"]);
        let b = &cov.files[0];
        // `F` keeps all three blocks, so its first line and entry count stay; `T.M` is gone.
        let funcs: Vec<(&str, u32, u32)> = b
            .funcs
            .iter()
            .map(|f| (f.name.as_str(), f.line(b), f.count(b)))
            .collect();
        assert_eq!(funcs, [("F", 3, 3)]);
        assert_eq!(b.funcs[0].blocks, [0, 1, 2]);
        assert!(b.blocks.iter().all(|x| x.func == 0));
        let lines: Vec<(u32, u32)> = b.lines().into_iter().collect();
        assert_eq!(lines, [(6, 0), (7, 3)]);
        let d: Vec<(u32, u32)> = cov.files[1].lines().into_iter().collect();
        assert_eq!(d, [(4, 1)]);
        // Changed lines no block holds keep nothing.
        let none = BTreeMap::from([
            (
                "example.com/m/a/b.go".to_string(),
                BTreeSet::from([1, 9, 13]),
            ),
            ("example.com/m/a/c/d.go".to_string(), BTreeSet::new()),
        ]);
        assert_eq!(sample().restrict(&none).files, []);
        // T.M alone: its blocks are renumbered from 0.
        let tm = sample().restrict(&BTreeMap::from([(
            "example.com/m/a/b.go".to_string(),
            BTreeSet::from([11]),
        )]));
        let f = &tm.files[0];
        assert_eq!((f.funcs.len(), f.funcs[0].name.as_str()), (1, "T.M"));
        assert_eq!((f.funcs[0].line(f), f.blocks.len()), (10, 1));
        assert_eq!(f.lines().into_iter().collect::<Vec<_>>(), [(11, 0)]);
    }

    #[test]
    fn merge_orders_blocks_and_groups_functions() {
        let cov = sample();
        let names: Vec<&str> = cov.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["example.com/m/a/b.go", "example.com/m/a/c/d.go"]);
        let b = &cov.files[0];
        let starts: Vec<(u32, u32)> = b.blocks.iter().map(|b| (b.start.line, b.count)).collect();
        assert_eq!(starts, [(3, 3), (5, 0), (7, 3), (10, 0)]);
        let funcs: Vec<(&str, u32, u32)> = b
            .funcs
            .iter()
            .map(|f| (f.name.as_str(), f.line(b), f.count(b)))
            .collect();
        assert_eq!(funcs, [("F", 3, 3), ("T.M", 10, 0)]);
        let lines: Vec<(u32, u32)> = b.lines().into_iter().collect();
        assert_eq!(
            lines,
            [
                (3, 3),
                (4, 3),
                (5, 3),
                (6, 0),
                (7, 3),
                (8, 3),
                (10, 0),
                (11, 0),
                (12, 0)
            ]
        );
    }
}
