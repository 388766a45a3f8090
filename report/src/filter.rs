//! Exclude filters: the patterns of `livecov build --exclude` and of the exports' `exclude=`,
//! and what they leave of a view.
//!
//! A pattern is either a package pattern in `go list` syntax (an import path where `...`
//! matches any string, `example.com/m/internal/mocks/...` matching that package and every one
//! below it), or, when it ends in `.go`, a glob on file paths (`*` and `?` within one path
//! element, `**` as a whole element for any number of them: `**/*_mock.go`,
//! `example.com/m/internal/gen/*.go`). A package pattern matches a file when it matches the
//! file's package (its coverprofile name `importpath/file.go` up to the last `/`); a glob
//! matches the coverprofile name itself (and, at build time, also the file's path relative
//! to the main module's root).
//!
//! [`Filter::apply`] drops the excluded files of a build and its [`Projection`] before
//! anything is counted, so that totals, per-file tables and profiles agree.

use instrumenter::BuildMeta;

use crate::project::Projection;

/// A pattern or a list of them that cannot be read: the message says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

/// One exclude pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    /// A file glob (ends in `.go`) rather than a package pattern.
    file: bool,
}

impl std::str::FromStr for Pattern {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Pattern, FilterError> {
        let bad = |why: &str| Err(FilterError(format!("exclude pattern {s:?}: {why}")));
        if s.is_empty() {
            return bad("empty");
        }
        if s.starts_with('/') || s.ends_with('/') || s.contains("//") {
            return bad(
                "an import path or a path relative to the module root has no leading, trailing or doubled /",
            );
        }
        if s.contains(['\\', '[', ']', '{', '}', ' ']) {
            return bad(
                "only *, ?, ** (file globs) and ... (package patterns) are wildcards; \\, [, ], {, } and spaces are not allowed",
            );
        }
        if s.split('/').any(|e| e == "." || e == "..") {
            return bad(
                "relative patterns (./, ../) are not supported: give the import path, such as example.com/m/internal/...",
            );
        }
        let file = s.ends_with(".go");
        if file {
            if s.contains("...") {
                return bad("a file glob (ending in .go) spans directories with **, not ...");
            }
            if s.split('/').any(|e| e.contains("**") && e != "**") {
                return bad("** must be a whole path element, as in **/*_mock.go");
            }
        } else if s.contains(['*', '?']) {
            return bad(
                "a package pattern uses ..., as go list does (example.com/m/mocks/...); end the pattern in .go for a file glob",
            );
        }
        Ok(Pattern {
            text: s.to_string(),
            file,
        })
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Pattern {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A file glob (ends in `.go`), not a package pattern.
    pub fn is_file_glob(&self) -> bool {
        self.file
    }

    /// Whether a package pattern matches the package `import_path`, as `go list` matches
    /// it (`...` matches any string; `x/...` matches `x` too). A file glob matches no
    /// package.
    pub fn matches_package(&self, import_path: &str) -> bool {
        if self.file {
            return false;
        }
        if let Some(prefix) = self.text.strip_suffix("/...")
            && wild(prefix.as_bytes(), import_path.as_bytes())
        {
            return true;
        }
        wild(self.text.as_bytes(), import_path.as_bytes())
    }

    /// Whether a file glob matches `path` (`/`-separated). A package pattern matches no path.
    pub fn matches_path(&self, path: &str) -> bool {
        if !self.file {
            return false;
        }
        let pat: Vec<&str> = self.text.split('/').collect();
        let name: Vec<&str> = path.split('/').collect();
        glob(&pat, &name)
    }

    /// Whether the pattern matches the file of coverprofile name `name` (`importpath/file.go`):
    /// a package pattern its package, a glob the name.
    pub fn matches_file(&self, name: &str) -> bool {
        if self.file {
            self.matches_path(name)
        } else {
            let package = name.rsplit_once('/').map_or("", |(p, _)| p);
            self.matches_package(package)
        }
    }
}

/// `...` matches any string (`/` included); everything else is literal.
fn wild(pat: &[u8], s: &[u8]) -> bool {
    match pat.windows(3).position(|w| w == b"...") {
        None => pat == s,
        Some(at) => {
            let (head, rest) = (&pat[..at], &pat[at + 3..]);
            s.starts_with(head) && (at..=s.len()).any(|i| wild(rest, &s[i..]))
        }
    }
}

/// Path elements against glob elements, `**` standing for any number of elements.
fn glob(pat: &[&str], name: &[&str]) -> bool {
    match pat.split_first() {
        None => name.is_empty(),
        Some((&"**", rest)) => (0..=name.len()).any(|i| glob(rest, &name[i..])),
        Some((p, rest)) => name
            .split_first()
            .is_some_and(|(n, more)| element(p.as_bytes(), n.as_bytes()) && glob(rest, more)),
    }
}

/// One path element against a glob element: `*` any run of characters, `?` one.
fn element(pat: &[u8], s: &[u8]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| element(rest, &s[i..])),
        Some((b'?', rest)) => {
            // One character, which may take several bytes.
            let len = std::str::from_utf8(s)
                .ok()
                .and_then(|t| t.chars().next())
                .map_or(1, char::len_utf8);
            !s.is_empty() && element(rest, &s[len.min(s.len())..])
        }
        Some((c, rest)) => s.first() == Some(c) && element(rest, &s[1..]),
    }
}

/// Exclude patterns: a file is excluded when one of them matches it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    patterns: Vec<Pattern>,
}

impl Filter {
    /// The patterns of `values`, each a pattern or a comma-separated list of them (as
    /// `--exclude` and `exclude=` take them, repeated or not). Empty items are skipped; a
    /// pattern given twice counts once.
    pub fn parse<S: AsRef<str>>(
        values: impl IntoIterator<Item = S>,
    ) -> Result<Filter, FilterError> {
        let mut patterns: Vec<Pattern> = Vec::new();
        for value in values {
            for item in value.as_ref().split(',').map(str::trim) {
                if item.is_empty() {
                    continue;
                }
                let p: Pattern = item.parse()?;
                if !patterns.contains(&p) {
                    patterns.push(p);
                }
            }
        }
        Ok(Filter { patterns })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// The patterns as given.
    pub fn texts(&self) -> Vec<String> {
        self.patterns.iter().map(|p| p.text.clone()).collect()
    }

    /// Whether the file of coverprofile name `name` is excluded.
    pub fn excludes(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| p.matches_file(name))
    }

    /// `meta` and its projection `proj` without the excluded files (their blocks, counts,
    /// functions, and the functions only other builds had in them), and how many files went.
    pub fn apply(&self, meta: &BuildMeta, proj: &Projection) -> (BuildMeta, Projection, usize) {
        let mut files = Vec::with_capacity(meta.files.len());
        let mut out = Projection {
            target: proj.target,
            mode: proj.mode,
            counts: Vec::with_capacity(proj.counts.len()),
            origins: Vec::with_capacity(proj.origins.len()),
            funcs: Vec::with_capacity(proj.funcs.len()),
            gone: proj
                .gone
                .iter()
                .filter(|g| !self.excludes(&g.file))
                .cloned()
                .collect(),
            builds: proj.builds,
        };
        let mut at = 0;
        let mut dropped = 0;
        for (i, f) in meta.files.iter().enumerate() {
            let n = f.blocks.len();
            if self.excludes(&f.name) {
                dropped += 1;
            } else {
                files.push(f.clone());
                out.counts.extend_from_slice(&proj.counts[at..at + n]);
                out.origins.extend_from_slice(&proj.origins[at..at + n]);
                out.funcs
                    .push(proj.funcs.get(i).cloned().unwrap_or_default());
            }
            at += n;
        }
        let meta = BuildMeta {
            mode: meta.mode,
            files,
        };
        (meta, out, dropped)
    }
}

#[cfg(test)]
mod tests {
    use instrumenter::{Block, FileMeta, Func, Mode, Pos};

    use super::*;
    use crate::project::{Part, project};

    fn p(s: &str) -> Pattern {
        s.parse().unwrap()
    }

    #[test]
    fn package_patterns_match_as_go_list_does() {
        let mocks = p("example.com/m/internal/mocks/...");
        assert!(mocks.matches_package("example.com/m/internal/mocks"));
        assert!(mocks.matches_package("example.com/m/internal/mocks/db"));
        assert!(!mocks.matches_package("example.com/m/internal/mocksx"));
        assert!(!mocks.matches_package("example.com/m/internal"));
        let exact = p("example.com/m/gen");
        assert!(exact.matches_package("example.com/m/gen"));
        assert!(!exact.matches_package("example.com/m/gen/sub"));
        let mid = p("example.com/.../mocks");
        assert!(mid.matches_package("example.com/m/a/mocks"));
        assert!(!mid.matches_package("example.com/m/a/mocks/x"));
        assert!(p("...").matches_package("anything/at/all"));
        // On profile names: the package is the name up to the last /.
        assert!(mocks.matches_file("example.com/m/internal/mocks/db/store.go"));
        assert!(!exact.matches_file("example.com/m/gen/sub/x.go"));
        assert!(exact.matches_file("example.com/m/gen/x.go"));
        assert!(!mocks.matches_path("internal/mocks/db/store.go"));
    }

    #[test]
    fn file_globs_match_within_and_across_elements() {
        let mock = p("**/*_mock.go");
        assert!(mock.matches_path("store_mock.go"));
        assert!(mock.matches_path("internal/db/store_mock.go"));
        assert!(mock.matches_file("example.com/m/internal/db/store_mock.go"));
        assert!(!mock.matches_file("example.com/m/internal/db/store.go"));
        let generated = p("internal/gen/*.go");
        assert!(generated.matches_path("internal/gen/api.go"));
        assert!(!generated.matches_path("internal/gen/sub/api.go"));
        assert!(!generated.matches_path("x/internal/gen/api.go"));
        assert!(!generated.matches_package("internal/gen"));
        let q = p("a/?.go");
        assert!(q.matches_path("a/é.go"));
        assert!(!q.matches_path("a/ab.go"));
        assert!(p("**/gen/**/*.go").matches_path("x/gen/y/z/w.go"));
        assert!(p("**/gen/**/*.go").matches_path("gen/w.go"));
        assert!(p("*.go").matches_path("main.go"));
        assert!(!p("*.go").matches_path("cmd/main.go"));
    }

    #[test]
    fn bad_patterns_say_why() {
        for (bad, says) in [
            ("", "empty"),
            ("./internal/...", "relative"),
            ("example.com/m/*", "uses ..."),
            ("**...x.go", "not ..."),
            ("a/b**/c.go", "whole path element"),
            ("/abs/x.go", "leading"),
            ("a/[ab].go", "not allowed"),
        ] {
            let err = bad.parse::<Pattern>().unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let f = Filter::parse(["a/...,**/x.go", " a/... ", ""]).unwrap();
        assert_eq!(f.texts(), ["a/...", "**/x.go"]);
        assert!(Filter::parse(["ok/...,./no"]).is_err());
        assert!(Filter::parse::<&str>([]).unwrap().is_empty());
    }

    #[test]
    fn apply_drops_files_before_anything_is_counted() {
        let block = |line, n| Block {
            start: Pos { line, col: 1 },
            end: Pos { line, col: 9 },
            num_stmt: n,
            func: 0,
        };
        let file = |name: &str, blocks| FileMeta {
            name: name.into(),
            blocks,
            funcs: vec![Func {
                name: "F".into(),
                hash: [0; 32],
            }],
        };
        let meta = BuildMeta {
            mode: Mode::Count,
            files: vec![
                file("example.com/m/a.go", vec![block(3, 1), block(4, 2)]),
                file("example.com/m/mocks/m.go", vec![block(3, 5)]),
                file("example.com/m/z_mock.go", vec![block(3, 1)]),
            ],
        };
        let values = [1, 0, 7, 2];
        let parts = [Part {
            build: "b",
            meta: &meta,
            values: &values,
        }];
        let proj = project(&parts, 0);
        let f = Filter::parse(["example.com/m/mocks/...", "**/*_mock.go"]).unwrap();
        let (m, pr, dropped) = f.apply(&meta, &proj);
        assert_eq!(dropped, 2);
        assert_eq!(m.files.len(), 1);
        assert_eq!(pr.counts, [1, 0]);
        assert_eq!(
            crate::go::write(&m, pr.mode, &pr.counts),
            "mode: count\nexample.com/m/a.go:3.1,3.9 1 1\nexample.com/m/a.go:4.1,4.9 2 0\n"
        );
        let cov = crate::Coverage::of(1, 0, &m, &pr);
        assert_eq!(cov.files.len(), 1);
        // Nothing excluded: the same view.
        let (same, all, none) = Filter::default().apply(&meta, &proj);
        assert_eq!(
            (same, all.counts, none),
            (meta.clone(), proj.counts.clone(), 0)
        );
    }
}
