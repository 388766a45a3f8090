//! The simulated service's source at one build: files of functions of blocks, each function
//! known by a key that stands for its text (its hash is made from it), changed from one build
//! to the next; the counters of its instances; and what the view of several builds against
//! one of them must say, worked out from the keys alone, not with `report::project`.

use std::collections::{HashMap, HashSet};

use instrumenter::{Block, BuildMeta, FileMeta, Func, Mode, Pos};

use crate::common::unit;

pub(super) const FILES: usize = 500;
pub(super) const FUNCS_PER_FILE: usize = 10;
pub(super) const BLOCKS_PER_FUNC: u32 = 10;
const STMTS_PER_BLOCK: u32 = 2;
const HOT_FILES: usize = 50;
/// A hot file's block has popularity `u^HOT_EXPONENT`, `u` uniform in [0, 1).
const HOT_EXPONENT: i32 = 9;
/// The share of the other files' blocks that are rare paths, and their popularity.
const RARE_SHARE: f64 = 0.05;
const RARE_POPULARITY: f64 = 0.01;

#[derive(Clone)]
struct FuncSrc {
    name: String,
    /// Stands for the function's text: equal keys, equal texts (and so equal blocks).
    key: u64,
    blocks: u32,
}

#[derive(Clone)]
struct FileSrc {
    name: String,
    /// Lines above the first function.
    header: u32,
    funcs: Vec<FuncSrc>,
}

/// How a build differs from the one before it.
#[derive(Clone, Copy, Default)]
pub(super) struct Changes {
    /// Functions edited: a new text; one in three keeps its block count, the others gain or
    /// lose a block (which moves the functions after it in its file).
    pub(super) edited: usize,
    /// Functions added at a random place of a random file (those after it move).
    pub(super) added: usize,
    /// Files whose functions all move down 1 to 3 lines.
    pub(super) shifted: usize,
}

/// The source of the service at one build.
#[derive(Clone)]
pub(super) struct Code {
    files: Vec<FileSrc>,
    next_key: u64,
}

impl Code {
    /// The first build: `FILES` files of `FUNCS_PER_FILE` functions of `BLOCKS_PER_FUNC`
    /// blocks, every function a text of its own.
    pub(super) fn first() -> Code {
        let mut next_key = 1;
        let files = (0..FILES)
            .map(|f| FileSrc {
                name: format!("example.com/svc/pkg{:02}/file{f}.go", f / 10),
                header: 0,
                funcs: (0..FUNCS_PER_FILE)
                    .map(|g| {
                        next_key += 1;
                        FuncSrc {
                            name: format!("F{g}"),
                            key: next_key - 1,
                            blocks: BLOCKS_PER_FUNC,
                        }
                    })
                    .collect(),
            })
            .collect();
        Code { files, next_key }
    }

    /// The next build, with `c`'s changes at places `seed` picks.
    pub(super) fn next(&self, seed: u64, c: Changes) -> Code {
        let mut code = self.clone();
        let pick = |what: u64, i: usize, n: usize| {
            ((unit(&[seed, what, i as u64]) * n as f64) as usize).min(n - 1)
        };
        for i in 0..c.edited {
            let key = code.next_key;
            code.next_key += 1;
            let file = &mut code.files[pick(1, i, FILES)];
            let g = pick(2, i, file.funcs.len());
            let func = &mut file.funcs[g];
            func.key = key;
            func.blocks = match pick(3, i, 3) {
                0 => func.blocks,
                1 => func.blocks + 1,
                _ => (func.blocks - 1).max(2),
            };
        }
        for i in 0..c.added {
            let key = code.next_key;
            code.next_key += 1;
            let file = &mut code.files[pick(4, i, FILES)];
            let at = pick(5, i, file.funcs.len() + 1);
            file.funcs.insert(
                at,
                FuncSrc {
                    name: format!("N{key}"),
                    key,
                    blocks: BLOCKS_PER_FUNC,
                },
            );
        }
        for i in 0..c.shifted {
            code.files[pick(6, i, FILES)].header += 1 + pick(7, i, 3) as u32;
        }
        code
    }

    /// The build's metadata, as the instrumenter would make it: blocks in position order,
    /// three lines each, a function's first block on the line after its signature.
    pub(super) fn meta(&self) -> BuildMeta {
        let files = self
            .files
            .iter()
            .map(|file| {
                let mut blocks = Vec::new();
                let mut line = 3 + file.header;
                for (g, func) in file.funcs.iter().enumerate() {
                    line += 1;
                    for _ in 0..func.blocks {
                        blocks.push(Block {
                            start: Pos { line, col: 2 },
                            end: Pos {
                                line: line + 2,
                                col: 3,
                            },
                            num_stmt: STMTS_PER_BLOCK,
                            func: g as u32,
                        });
                        line += 3;
                    }
                    line += 2;
                }
                FileMeta {
                    name: file.name.clone(),
                    blocks,
                    funcs: file
                        .funcs
                        .iter()
                        .map(|f| Func {
                            name: f.name.clone(),
                            hash: hash_of(f.key),
                        })
                        .collect(),
                }
            })
            .collect();
        BuildMeta {
            mode: Mode::Set,
            files,
        }
    }

    /// Every block in counter order: its file, its function's key and its place in it.
    fn blocks(&self) -> impl Iterator<Item = (usize, u64, u32)> + '_ {
        self.files.iter().enumerate().flat_map(|(f, file)| {
            file.funcs
                .iter()
                .flat_map(move |func| (0..func.blocks).map(move |k| (f, func.key, k)))
        })
    }

    pub(super) fn num_blocks(&self) -> usize {
        self.files
            .iter()
            .flat_map(|f| &f.funcs)
            .map(|f| f.blocks as usize)
            .sum()
    }

    pub(super) fn num_funcs(&self) -> usize {
        self.files.iter().map(|f| f.funcs.len()).sum()
    }

    /// The counters of instances `seeds` (see the module `builds`' documentation).
    pub(super) fn counters(&self, seeds: impl Iterator<Item = u64>) -> Vec<Vec<u32>> {
        let hot = hot_files();
        let popularity: Vec<(u64, u32, f64)> = self
            .blocks()
            .map(|(f, key, k)| {
                let p = if hot[f] {
                    unit(&[0x909, key, u64::from(k)]).powi(HOT_EXPONENT)
                } else if unit(&[0x4a4e, key, u64::from(k)]) < RARE_SHARE {
                    RARE_POPULARITY
                } else {
                    0.0
                };
                (key, k, p)
            })
            .collect();
        seeds
            .map(|seed| {
                popularity
                    .iter()
                    .map(|&(key, k, p)| u32::from(unit(&[0x1257, seed, key, u64::from(k)]) < p))
                    .collect()
            })
            .collect()
    }
}

/// A function's hash: its key, then a tag.
fn hash_of(key: u64) -> [u8; 32] {
    let mut h = [0x6c; 32];
    h[..8].copy_from_slice(&key.to_le_bytes());
    h
}

/// Whether each file is hot: `HOT_FILES` files, at random.
fn hot_files() -> Vec<bool> {
    let mut order: Vec<usize> = (0..FILES).collect();
    order.sort_by(|&x, &y| unit(&[0x407, x as u64]).total_cmp(&unit(&[0x407, y as u64])));
    let mut hot = vec![false; FILES];
    for &f in &order[..HOT_FILES] {
        hot[f] = true;
    }
    hot
}

/// What the view of several builds' merged counters against one of them must say.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Expected {
    pub(super) blocks: i64,
    pub(super) stmts: i64,
    pub(super) blocks_covered: i64,
    pub(super) stmts_covered: i64,
    /// Statements covered on the target itself, and on other builds only.
    pub(super) stmts_measured: i64,
    pub(super) stmts_carried: i64,
    /// Functions of the target: measured, carried, changed (a text no other build has, not
    /// covered), uncovered.
    pub(super) funcs: [i64; 4],
}

/// The view of `builds` (each with its merged counters) against `builds[target]`: a block of
/// the target is covered if it is on the target, or on another build that has its function's
/// text (the same key: same file, same blocks relative to the first).
pub(super) fn expected(builds: &[(&Code, &[u32])], target: usize) -> Expected {
    let mut covered: HashMap<u64, Vec<bool>> = HashMap::new();
    let mut others: HashSet<u64> = HashSet::new();
    for (i, (code, values)) in builds.iter().enumerate() {
        if i == target {
            continue;
        }
        for ((_, key, k), &v) in code.blocks().zip(values.iter()) {
            others.insert(key);
            let c = covered.entry(key).or_default();
            if c.len() <= k as usize {
                c.resize(k as usize + 1, false);
            }
            c[k as usize] |= v != 0;
        }
    }
    let (code, values) = builds[target];
    let mut e = Expected::default();
    let mut at = 0;
    let stmts = i64::from(STMTS_PER_BLOCK);
    for func in code.files.iter().flat_map(|f| &f.funcs) {
        let (mut measured, mut carried) = (false, false);
        for k in 0..func.blocks as usize {
            e.blocks += 1;
            e.stmts += stmts;
            if values[at + k] != 0 {
                measured = true;
                e.stmts_measured += stmts;
            } else if covered.get(&func.key).is_some_and(|c| c[k]) {
                carried = true;
                e.stmts_carried += stmts;
            } else {
                continue;
            }
            e.blocks_covered += 1;
            e.stmts_covered += stmts;
        }
        at += func.blocks as usize;
        let state = if measured {
            0
        } else if carried {
            1
        } else if builds.len() > 1 && !others.contains(&func.key) {
            2
        } else {
            3
        };
        e.funcs[state] += 1;
    }
    e
}
