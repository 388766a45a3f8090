//! Exports of a stored snapshot in the formats coverage tools read: `go` (the coverprofile,
//! see [`crate::profile`]), `lcov` (tracefiles, for `genhtml`), `cobertura` (XML, for CI
//! systems), `json` (for scripts) and `html` (a self-contained page for people). The last four
//! are written from one [`Coverage`]: the snapshot's blocks per file with their counts and
//! functions, merged across builds.

mod cobertura;
#[cfg(test)]
mod corpus_tests;
pub mod html;
mod json;
mod lcov;

use std::collections::{BTreeMap, BTreeSet};

use instrumenter::{Mode, Pos};

use crate::App;
use crate::error::ApiError;
use crate::lcc;
use crate::snapshot::counters;
use crate::store::SnapshotRow;

pub use json::{ExportBlock, ExportFile, ExportFunc, ExportJson};

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Go,
    Lcov,
    Cobertura,
    Json,
    Html,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Go,
        Format::Lcov,
        Format::Cobertura,
        Format::Json,
        Format::Html,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Go => "go",
            Format::Lcov => "lcov",
            Format::Cobertura => "cobertura",
            Format::Json => "json",
            Format::Html => "html",
        }
    }

    /// The file extension of a download.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Go => "cov",
            Format::Lcov => "info",
            Format::Cobertura => "xml",
            Format::Json => "json",
            Format::Html => "html",
        }
    }

    /// The media type of the answer.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Go | Format::Lcov => "text/plain; charset=utf-8",
            Format::Cobertura => "application/xml",
            Format::Json => "application/json",
            Format::Html => "text/html; charset=utf-8",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = ApiError;
    fn from_str(s: &str) -> Result<Format, ApiError> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                ApiError::BadRequest(format!(
                    "format {s:?} is not supported; supported: {}",
                    names.join(", ")
                ))
            })
    }
}

/// What the formats other than `go` take besides the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A prefix taken off file names (such as the module path), so that tools find the
    /// sources relative to a directory.
    pub strip: Option<String>,
    /// Cobertura's `<source>`: the directory file names are relative to (default `.`).
    pub source: Option<String>,
}

impl Options {
    /// `name` without the prefix to strip, and without the `/` that then leads it.
    pub fn file_name<'a>(&self, name: &'a str) -> &'a str {
        match &self.strip {
            Some(p) if !p.is_empty() => name
                .strip_prefix(p.as_str())
                .map_or(name, |rest| rest.trim_start_matches('/')),
            _ => name,
        }
    }
}

/// Snapshot `id` in `format`.
pub async fn export(
    app: &App,
    id: i64,
    format: Format,
    options: &Options,
) -> Result<String, ApiError> {
    if format == Format::Go {
        return crate::profile::go_profile(app, id).await;
    }
    let (row, cov) = load(app, id).await?;
    Ok(match format {
        Format::Go => unreachable!(),
        Format::Lcov => lcov::write(&cov, options),
        Format::Cobertura => cobertura::write(&cov, options),
        Format::Json => json::write(&cov, options),
        Format::Html => {
            let header = html::Header {
                service: &row.service,
                label: row.label.as_deref(),
            };
            html::write(&cov, &header, options, html::Sources::None)
        }
    })
}

/// Snapshot `id`'s row and its coverage merged across its builds.
pub async fn load(app: &App, id: i64) -> Result<(SnapshotRow, Coverage), ApiError> {
    let row = app
        .store
        .snapshot(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no snapshot {id}")))?;
    let parts = counters(app, id).await?;
    let cov = Coverage::merge(
        id,
        row.taken_at,
        parts.iter().map(|(b, v)| (&b.meta, v.as_slice())),
    );
    Ok((row, cov))
}

/// The formats a restricted coverage ([`Coverage::restrict`]) is written in. Their lines,
/// functions and totals all come from [`FileCov::lines_of`], which keeps to the restriction;
/// `json` and `html` count the statements of whole blocks, which a line restriction cuts.
pub const LINE_FORMATS: [Format; 2] = [Format::Lcov, Format::Cobertura];

/// `cov`, restricted or not, in one of [`LINE_FORMATS`]; another format is an error naming
/// them.
pub fn write_lines(cov: &Coverage, format: Format, options: &Options) -> Result<String, ApiError> {
    match format {
        Format::Lcov => Ok(lcov::write(cov, options)),
        Format::Cobertura => Ok(cobertura::write(cov, options)),
        other => {
            let names: Vec<&str> = LINE_FORMATS.iter().map(|f| f.name()).collect();
            Err(ApiError::BadRequest(format!(
                "format {:?} cannot be restricted to lines; supported: {}",
                other.name(),
                names.join(", ")
            )))
        }
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
    fn restrict(&self, keep: &BTreeSet<u32>) -> Option<FileCov> {
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
        builds: impl IntoIterator<Item = (&'a instrumenter::BuildMeta, &'a [u32])>,
    ) -> Coverage {
        let builds: Vec<_> = builds.into_iter().collect();
        let modes: Vec<Mode> = builds.iter().map(|(m, _)| m.mode).collect();
        let mode = if modes.windows(2).all(|w| w[0] == w[1]) {
            modes.first().copied().unwrap_or(Mode::Set)
        } else {
            Mode::Count
        };
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
                    lcc::merge(mode, &mut entry.0, values.get(at + i).copied().unwrap_or(0));
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
    use instrumenter::{Block, BuildMeta, FileMeta, Func};

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
    fn write_lines_takes_lcov_and_cobertura_only() {
        let o = Options::default();
        let cov = restricted();
        assert!(
            write_lines(&cov, Format::Lcov, &o)
                .unwrap()
                .starts_with("TN:")
        );
        assert!(
            write_lines(&cov, Format::Cobertura, &o)
                .unwrap()
                .starts_with("<?xml")
        );
        let err = write_lines(&cov, Format::Html, &o).unwrap_err().to_string();
        assert!(
            err.contains("\"html\"") && err.contains("lcov, cobertura"),
            "{err}"
        );
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
    fn formats_and_strip() {
        assert_eq!("lcov".parse::<Format>().unwrap(), Format::Lcov);
        assert_eq!("html".parse::<Format>().unwrap(), Format::Html);
        let err = "pdf".parse::<Format>().unwrap_err().to_string();
        assert!(err.contains("go, lcov, cobertura, json, html"), "{err}");
        let o = Options {
            strip: Some("example.com/m".into()),
            source: None,
        };
        assert_eq!(o.file_name("example.com/m/a/b.go"), "a/b.go");
        assert_eq!(o.file_name("other.org/x.go"), "other.org/x.go");
    }
}
