//! The coverage model and its reports, with no HTTP, storage or runtime: what the server and
//! the `livecov` CLI both write and read.
//!
//! # Brief overview
//!
//! - [`project`]: the one place where counts of several builds meet. A snapshot (or a QA
//!   cycle) that ran several builds is seen against one of them, the newest: unchanged
//!   functions carry what older builds measured, changed ones start afresh, functions only
//!   older builds have are listed apart ([`merge_count`] is how two counts of a block
//!   combine).
//! - [`Coverage`] ([`coverage`]): the blocks per file of such a view, with counts, where each
//!   block's coverage came from, and functions with their states.
//! - The writers, one module each: [`go`] (the coverprofile), [`lcov`], [`cobertura`],
//!   [`json`] and [`html`] (which also annotates sources); [`write`] picks one by [`Format`].
//! - [`patch`]: the unified-diff parser and patch coverage (the changed executable lines a
//!   snapshot covers).
//! - [`types`]: the JSON of the HTTP API, shared by the server and the CLI clients.
//! - [`gzip`]: the one gzip encoder and bounded decoder.
//!
//! Whether a source is the one a build was cut from is `instrumenter::cut_from`.
//!
//! # Example
//!
//! ```
//! use instrumenter::{Block, BuildMeta, FileMeta, Func, Mode, Pos};
//!
//! let meta = BuildMeta {
//!     mode: Mode::Count,
//!     files: vec![FileMeta {
//!         name: "example.com/m/a.go".into(),
//!         blocks: vec![Block {
//!             start: Pos { line: 3, col: 13 },
//!             end: Pos { line: 5, col: 2 },
//!             num_stmt: 2,
//!             func: 0,
//!         }],
//!         funcs: vec![Func { name: "F".into(), hash: [0; 32] }],
//!     }],
//! };
//! let parts = [report::Part { build: "b1", meta: &meta, values: &[4] }];
//! let text = report::write(report::Format::Go, &parts, 0, &report::Snapshot::default(), &report::Options::default());
//! assert_eq!(text, "mode: count\nexample.com/m/a.go:3.13,5.2 2 4\n");
//! ```

pub mod cobertura;
#[cfg(test)]
mod corpus_tests;
pub mod coverage;
pub mod filter;
pub mod go;
pub mod gzip;
pub mod html;
pub mod json;
pub mod lcov;
pub mod patch;
pub mod project;
pub mod types;

use instrumenter::BuildMeta;

pub use coverage::{BlockCov, Coverage, FileCov, FuncCov};
pub use filter::{Filter, FilterError};
pub use json::{ExportBlock, ExportFile, ExportFunc, ExportJson};
pub use project::{Part, Projection, merge_count, merged_mode};

/// A format name that is not supported where it was given: the message names the ones that
/// are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

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
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Format, FormatError> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                FormatError(format!(
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

/// What a report says about its snapshot besides the coverage.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub taken_at: i64,
    pub service: String,
    pub label: Option<String>,
}

/// A snapshot's builds in `format`, as the view against `parts[target]`
/// ([`project::project`]): every block of that build once, with what the other builds
/// carried into it.
pub fn write(
    format: Format,
    parts: &[Part],
    target: usize,
    snapshot: &Snapshot,
    options: &Options,
) -> String {
    let proj = project::project(parts, target);
    write_projected(format, parts[target].meta, &proj, snapshot, options)
}

/// [`write`] of a projection already made.
pub fn write_projected(
    format: Format,
    meta: &BuildMeta,
    proj: &Projection,
    snapshot: &Snapshot,
    options: &Options,
) -> String {
    write_excluding(
        format,
        meta,
        proj,
        snapshot,
        options,
        &Exclusions::default(),
    )
    .0
}

/// What a report leaves out, and says it leaves out, besides its [`Options`].
#[derive(Debug, Clone, Default)]
pub struct Exclusions {
    /// The files to take out before anything is counted (the exports' `exclude=`).
    pub filter: Filter,
    /// What the builds left uninstrumented ([`types::BuildExcluded::summary`]), for the
    /// `html` report to say ("Excluded when built").
    pub built: Option<String>,
}

impl Exclusions {
    /// The facts the `html` report adds for these exclusions, `files` being how many the
    /// filter took out.
    pub fn notes(&self, files: usize) -> Vec<(&'static str, String)> {
        let export = json::ExportJson {
            snapshot: 0,
            taken_at: String::new(),
            stmts: 0,
            stmts_covered: 0,
            files: Vec::new(),
            gone: Vec::new(),
            excluded: (!self.filter.is_empty()).then(|| json::ExportExcluded {
                patterns: self.filter.texts(),
                files,
            }),
            excluded_when_built: self.built.clone(),
        };
        export.notes()
    }
}

/// [`write_projected`] without the files `exclusions.filter` matches, taken out before
/// anything is counted, so that totals, tables and profiles agree; the `json` export names
/// the filter (`excluded`) and the `html` report says what was excluded. Answers the text
/// and how many files the filter took out.
pub fn write_excluding(
    format: Format,
    meta: &BuildMeta,
    proj: &Projection,
    snapshot: &Snapshot,
    options: &Options,
    exclusions: &Exclusions,
) -> (String, usize) {
    let filtered;
    let (meta, proj, dropped) = if exclusions.filter.is_empty() {
        (meta, proj, 0)
    } else {
        filtered = exclusions.filter.apply(meta, proj);
        (&filtered.0, &filtered.1, filtered.2)
    };
    let cov = || Coverage::of(snapshot.id, snapshot.taken_at, meta, proj);
    let text = match format {
        Format::Go => go::write(meta, proj.mode, &proj.counts),
        Format::Lcov => lcov::write(&cov(), options),
        Format::Cobertura => cobertura::write(&cov(), options),
        Format::Json => {
            let mut export = json::build(&cov(), options);
            if !exclusions.filter.is_empty() {
                export.excluded = Some(json::ExportExcluded {
                    patterns: exclusions.filter.texts(),
                    files: dropped,
                });
            }
            export.excluded_when_built = exclusions.built.clone();
            let mut s = serde_json::to_string_pretty(&export).expect("serializes");
            s.push('\n');
            s
        }
        Format::Html => {
            let notes = exclusions.notes(dropped);
            let header = html::Header {
                service: &snapshot.service,
                label: snapshot.label.as_deref(),
                notes: &notes,
            };
            html::write(&cov(), &header, options, html::Sources::None)
        }
    };
    (text, dropped)
}

/// The formats a restricted coverage ([`Coverage::restrict`]) is written in. Their lines,
/// functions and totals all come from [`FileCov::lines_of`], which keeps to the restriction;
/// `json` and `html` count the statements of whole blocks, which a line restriction cuts.
pub const LINE_FORMATS: [Format; 2] = [Format::Lcov, Format::Cobertura];

/// `cov`, restricted or not, in one of [`LINE_FORMATS`]; another format is an error naming
/// them.
pub fn write_lines(
    cov: &Coverage,
    format: Format,
    options: &Options,
) -> Result<String, FormatError> {
    match format {
        Format::Lcov => Ok(lcov::write(cov, options)),
        Format::Cobertura => Ok(cobertura::write(cov, options)),
        other => {
            let names: Vec<&str> = LINE_FORMATS.iter().map(|f| f.name()).collect();
            Err(FormatError(format!(
                "format {:?} cannot be restricted to lines; supported: {}",
                other.name(),
                names.join(", ")
            )))
        }
    }
}

/// Milliseconds since the Unix epoch as RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::tests::restricted;

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
