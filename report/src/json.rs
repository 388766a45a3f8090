//! The `json` export: a snapshot's coverage per file and per function, each function with its
//! blocks and their counts, for scripts. Its fields are documented in `docs/API.md` and in the
//! OpenAPI document (`ExportJson`).

use serde::{Deserialize, Serialize};

use instrumenter::Pos;

use crate::project::{Change, FuncView, Gone, Origin, State};
use crate::rfc3339;
use crate::{BlockCov, Coverage, FileCov, FuncCov, Options};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportJson {
    pub snapshot: i64,
    pub taken_at: String,
    pub stmts: u64,
    pub stmts_covered: u64,
    pub files: Vec<ExportFile>,
    /// Functions only other builds of the snapshot have (edited or removed since), with what
    /// was measured on them; in no total.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gone: Vec<ExportGone>,
    /// The files an `exclude=` filter took out of this export, before any total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded: Option<ExportExcluded>,
    /// What the builds left uninstrumented (`livecov build --exclude`, `--skip-generated`),
    /// as one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_when_built: Option<String>,
}

/// What an `exclude=` filter took out of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportExcluded {
    pub patterns: Vec<String>,
    /// How many files it took out.
    pub files: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportGone {
    pub file: String,
    pub name: String,
    /// `edited` (the reported build has a new version) or `removed`.
    pub change: String,
    /// The newest build that has it.
    pub build: String,
    pub stmts: u64,
    pub stmts_covered: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportFile {
    /// The coverprofile name, without the `strip` prefix.
    pub file: String,
    pub stmts: u64,
    pub stmts_covered: u64,
    pub functions: Vec<ExportFunc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportFunc {
    pub name: String,
    /// The first line of its entry block.
    pub line: u32,
    /// Its entry block's count: how often it was entered.
    pub count: u32,
    pub stmts: u64,
    pub stmts_covered: u64,
    /// `measured`, `carried`, `changed` or `uncovered` (see docs/ARCHITECTURE.md, "One
    /// service, many builds").
    #[serde(default = "uncovered")]
    pub state: String,
    /// `same`, `edited` or `added`: how the function relates to the other builds the
    /// coverage draws on.
    #[serde(default = "same")]
    pub change: String,
    pub blocks: Vec<ExportBlock>,
}

fn uncovered() -> String {
    "uncovered".into()
}

fn same() -> String {
    "same".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportBlock {
    pub start_line: u32,
    pub start_col: u32,
    pub end_line: u32,
    pub end_col: u32,
    pub stmts: u32,
    pub count: u32,
    /// Covered on another build of the same function only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub carried: bool,
}

pub fn build(cov: &Coverage, options: &Options) -> ExportJson {
    let files: Vec<ExportFile> = cov
        .files
        .iter()
        .map(|file| {
            let functions: Vec<ExportFunc> = file
                .funcs
                .iter()
                .map(|f| {
                    let blocks: Vec<ExportBlock> = f
                        .blocks
                        .iter()
                        .map(|&i| {
                            let b = &file.blocks[i];
                            ExportBlock {
                                start_line: b.start.line,
                                start_col: b.start.col,
                                end_line: b.end.line,
                                end_col: b.end.col,
                                stmts: b.stmts,
                                count: b.count,
                                carried: b.origin == Origin::Carried,
                            }
                        })
                        .collect();
                    let stmts = blocks.iter().map(|b| u64::from(b.stmts)).sum();
                    let stmts_covered = blocks
                        .iter()
                        .filter(|b| b.count > 0)
                        .map(|b| u64::from(b.stmts))
                        .sum();
                    ExportFunc {
                        name: f.name.clone(),
                        line: f.line(file),
                        count: f.count(file),
                        stmts,
                        stmts_covered,
                        state: f.view.state.as_str().to_string(),
                        change: f.view.change.as_str().to_string(),
                        blocks,
                    }
                })
                .collect();
            ExportFile {
                file: options.file_name(&file.name).to_string(),
                stmts: functions.iter().map(|f| f.stmts).sum(),
                stmts_covered: functions.iter().map(|f| f.stmts_covered).sum(),
                functions,
            }
        })
        .collect();
    ExportJson {
        snapshot: cov.snapshot,
        taken_at: rfc3339(cov.taken_at),
        stmts: files.iter().map(|f| f.stmts).sum(),
        stmts_covered: files.iter().map(|f| f.stmts_covered).sum(),
        files,
        gone: cov
            .gone
            .iter()
            .map(|g| ExportGone {
                file: options.file_name(&g.file).to_string(),
                name: g.func.clone(),
                change: g.change.as_str().to_string(),
                build: g.build.clone(),
                stmts: u64::from(g.stmts),
                stmts_covered: u64::from(g.stmts_covered),
            })
            .collect(),
        excluded: None,
        excluded_when_built: None,
    }
}

impl ExportJson {
    /// The facts the `html` report adds for what was excluded (see [`crate::Exclusions`]).
    pub fn notes(&self) -> Vec<(&'static str, String)> {
        let mut notes = Vec::new();
        if let Some(built) = &self.excluded_when_built {
            notes.push(("Excluded when built", built.clone()));
        }
        if let Some(e) = &self.excluded {
            let s = if e.files == 1 { "" } else { "s" };
            notes.push((
                "Excluded from this report",
                format!("{} file{s} ({})", e.files, e.patterns.join(", ")),
            ));
        }
        notes
    }

    /// The coverage this export was written from (file names as exported): the CLI renders
    /// the `html` report from it where the sources are at hand.
    pub fn coverage(&self) -> Coverage {
        let taken_at = humantime::parse_rfc3339(&self.taken_at)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        let files = self
            .files
            .iter()
            .map(|f| {
                let mut blocks: Vec<BlockCov> = f
                    .functions
                    .iter()
                    .enumerate()
                    .flat_map(|(i, func)| {
                        func.blocks.iter().map(move |b| BlockCov {
                            start: Pos {
                                line: b.start_line,
                                col: b.start_col,
                            },
                            end: Pos {
                                line: b.end_line,
                                col: b.end_col,
                            },
                            stmts: b.stmts,
                            count: b.count,
                            origin: match (b.count, b.carried) {
                                (0, _) => Origin::None,
                                (_, true) => Origin::Carried,
                                _ => Origin::Measured,
                            },
                            func: i,
                        })
                    })
                    .collect();
                blocks.sort_by_key(|b| (b.start, b.end));
                let mut funcs: Vec<FuncCov> = f
                    .functions
                    .iter()
                    .map(|func| FuncCov {
                        name: func.name.clone(),
                        blocks: Vec::new(),
                        view: FuncView {
                            state: parse_state(&func.state),
                            change: parse_change(&func.change),
                        },
                    })
                    .collect();
                for (i, b) in blocks.iter().enumerate() {
                    funcs[b.func].blocks.push(i);
                }
                FileCov {
                    name: f.file.clone(),
                    blocks,
                    funcs,
                    only: None,
                }
            })
            .collect();
        let builds = if self.gone.is_empty()
            && self
                .files
                .iter()
                .flat_map(|f| &f.functions)
                .all(|f| f.change == "same" && f.state != "carried")
        {
            1
        } else {
            2
        };
        Coverage {
            snapshot: self.snapshot,
            taken_at,
            files,
            gone: self
                .gone
                .iter()
                .map(|g| Gone {
                    file: g.file.clone(),
                    func: g.name.clone(),
                    build: g.build.clone(),
                    change: parse_change(&g.change),
                    blocks: 0,
                    stmts: g.stmts as u32,
                    blocks_covered: 0,
                    stmts_covered: g.stmts_covered as u32,
                })
                .collect(),
            builds,
        }
    }
}

fn parse_state(s: &str) -> State {
    match s {
        "measured" => State::Measured,
        "carried" => State::Carried,
        "changed" => State::Changed,
        _ => State::Uncovered,
    }
}

fn parse_change(s: &str) -> Change {
    match s {
        "edited" => Change::Edited,
        "added" => Change::Added,
        "removed" => Change::Removed,
        _ => Change::Same,
    }
}

pub fn write(cov: &Coverage, options: &Options) -> String {
    let mut s = serde_json::to_string_pretty(&build(cov, options)).expect("serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::tests::sample;

    #[test]
    fn structure() {
        let text = write(&sample(), &Options::default());
        let back: ExportJson = serde_json::from_str(&text).unwrap();
        assert_eq!(back.snapshot, 7);
        assert_eq!(back.taken_at, "2025-11-24T16:00:00.123Z");
        assert_eq!((back.stmts, back.stmts_covered), (7, 5));
        let b = &back.files[0];
        assert_eq!(b.file, "example.com/m/a/b.go");
        assert_eq!((b.stmts, b.stmts_covered), (5, 3));
        let names: Vec<&str> = b.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["F", "T.M"]);
        let f = &b.functions[0];
        assert_eq!((f.line, f.count, f.stmts, f.stmts_covered), (3, 3, 4, 3));
        assert_eq!(
            f.blocks[1],
            ExportBlock {
                start_line: 5,
                start_col: 14,
                end_line: 7,
                end_col: 3,
                stmts: 1,
                count: 0,
                carried: false,
            }
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5);
        // It reads back into the coverage it was written from.
        assert_eq!(back.coverage(), sample());
    }
}
