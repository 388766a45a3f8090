//! A snapshot's coverage: every file's blocks in position order with their counts and
//! functions, merged across the snapshot's builds ([`Coverage::merge`], the one place where
//! counts of several builds meet), and restricted to some lines ([`Coverage::restrict`]).

use std::collections::{BTreeMap, BTreeSet};

use instrumenter::{Block, BuildMeta, FileMeta, Func, Mode, Pos};

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

/// A snapshot's coverage: every file's blocks in position order, with counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    pub snapshot: i64,
    /// Milliseconds since the Unix epoch.
    pub taken_at: i64,
    /// Files by name.
    pub files: Vec<FileCov>,
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
    /// Index in [`FileCov::funcs`].
    pub func: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FuncCov {
    pub name: String,
    /// Indexes of its blocks in [`FileCov::blocks`], in position order: the first is the
    /// function's entry.
    pub blocks: Vec<usize>,
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
        }
    }

    /// The coverage of builds with their counters. Blocks that several builds share (same
    /// file, same position) are counted as one, their counts merged like counters of one
    /// build; a block's function is the one the first build holding it names.
    pub fn merge<'a>(
        snapshot: i64,
        taken_at: i64,
        builds: impl IntoIterator<Item = (&'a BuildMeta, &'a [u32])>,
    ) -> Coverage {
        let builds: Vec<_> = builds.into_iter().collect();
        let mode = merged_mode(builds.iter().map(|(m, _)| m.mode));
        type Key = (u32, u32, u32, u32, u32);
        let mut files: BTreeMap<&str, BTreeMap<Key, (u32, &str)>> = BTreeMap::new();
        for (meta, values) in &builds {
            let mut at = 0;
            for file in &meta.files {
                let blocks = files.entry(file.name.as_str()).or_default();
                for (i, b) in file.blocks.iter().enumerate() {
                    let key = (b.start.line, b.start.col, b.end.line, b.end.col, b.num_stmt);
                    let func = file
                        .funcs
                        .get(b.func as usize)
                        .map_or("", |f| f.name.as_str());
                    let entry = blocks.entry(key).or_insert((0, func));
                    merge_count(mode, &mut entry.0, values.get(at + i).copied().unwrap_or(0));
                }
                at += file.blocks.len();
            }
        }
        let files = files
            .into_iter()
            .map(|(name, blocks)| {
                let mut funcs: Vec<FuncCov> = Vec::new();
                let mut index: BTreeMap<&str, usize> = BTreeMap::new();
                let blocks = blocks
                    .into_iter()
                    .enumerate()
                    .map(|(i, ((l0, c0, l1, c1, n), (count, func)))| {
                        let f = *index.entry(func).or_insert_with(|| {
                            funcs.push(FuncCov {
                                name: func.to_string(),
                                blocks: Vec::new(),
                            });
                            funcs.len() - 1
                        });
                        funcs[f].blocks.push(i);
                        BlockCov {
                            start: Pos { line: l0, col: c0 },
                            end: Pos { line: l1, col: c1 },
                            stmts: n,
                            count,
                            func: f,
                        }
                    })
                    .collect();
                FileCov {
                    name: name.to_string(),
                    blocks,
                    funcs,
                    only: None,
                }
            })
            .collect();
        Coverage {
            snapshot,
            taken_at,
            files,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
        Coverage::merge(7, 1_764_000_000_123, [(&meta, counts.as_slice())])
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

    #[test]
    fn shared_blocks_of_two_builds_are_one() {
        let meta = |n: u32| BuildMeta {
            mode: Mode::Count,
            files: vec![FileMeta {
                name: "m/x.go".into(),
                blocks: vec![block(1, 1, 2, 2, 1, 0), block(3, 1, 4, 2, n, 0)],
                funcs: vec![func("F")],
            }],
        };
        let (a, b) = (meta(1), meta(2));
        let cov = Coverage::merge(1, 0, [(&a, &[2u32, 1][..]), (&b, &[5u32, 0][..])]);
        let counts: Vec<u32> = cov.files[0].blocks.iter().map(|b| b.count).collect();
        assert_eq!(counts, [7, 1, 0]);
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
