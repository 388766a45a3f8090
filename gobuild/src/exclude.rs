//! `--exclude` and `--skip-generated`: the files of instrumented packages that are compiled as
//! they are, with no counters and no blocks in the metadata.
//!
//! Patterns are [`report::filter::Pattern`]s: a package pattern matches the files of the
//! packages it names; a file glob (ending in `.go`) matches a file by its path relative to
//! the root of its module or by its coverprofile name (`importpath/file.go`). A pattern that
//! matches no file the build would instrument is an error, so that a typo does not silently
//! leave everything in.

use std::path::{Path, PathBuf};

use report::filter::Filter;
use report::types::BuildExcluded;

use crate::Error;
use crate::golist::Package;

/// `jobs` (package index, path, profile name) without the excluded files, the packages left
/// with a file (jobs renumbered to them), and what was excluded (`None`: nothing was asked).
#[allow(clippy::type_complexity)]
pub(crate) fn apply<'a>(
    patterns: &[String],
    generated: bool,
    packages: Vec<&'a Package>,
    jobs: Vec<(usize, PathBuf, String)>,
) -> Result<
    (
        Vec<&'a Package>,
        Vec<(usize, PathBuf, String)>,
        Option<BuildExcluded>,
    ),
    Error,
> {
    let filter = Filter::parse(patterns).map_err(|e| Error::Usage(format!("--exclude: {e}")))?;
    if filter.is_empty() && !generated {
        return Ok((packages, jobs, None));
    }
    let mut used = vec![false; filter.patterns().len()];
    let mut kept = Vec::with_capacity(jobs.len());
    let mut files = Vec::new();
    for (p, path, name) in jobs {
        let pkg = packages[p];
        let rel = pkg
            .module
            .as_ref()
            .and_then(|m| m.dir.as_deref())
            .and_then(|root| relative_slash(root, &path));
        let mut out = false;
        for (i, pattern) in filter.patterns().iter().enumerate() {
            let hit = if pattern.is_file_glob() {
                pattern.matches_path(&name)
                    || rel.as_deref().is_some_and(|r| pattern.matches_path(r))
            } else {
                pattern.matches_package(&pkg.import_path)
            };
            if hit {
                used[i] = true;
                out = true;
            }
        }
        if !out && generated {
            let src = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            out = is_generated(&src);
        }
        if out {
            files.push(name);
        } else {
            kept.push((p, path, name));
        }
    }
    let unused: Vec<&str> = filter
        .patterns()
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(p, _)| p.as_str())
        .collect();
    if !unused.is_empty() {
        return Err(Error::Usage(format!(
            "--exclude {} matches no file that the build instruments (package patterns are \
             import paths as go list takes them, such as example.com/m/internal/mocks/...; \
             file globs end in .go and match paths relative to the module root or \
             coverprofile names, such as **/*_mock.go)",
            unused.join(", ")
        )));
    }
    if kept.is_empty() {
        return Err(Error::Usage(
            "--exclude and --skip-generated leave no file of the build to instrument".into(),
        ));
    }
    // Renumber to the packages that keep a file.
    let mut index = vec![None; packages.len()];
    let mut left = Vec::new();
    for job in &mut kept {
        let p = *index[job.0].get_or_insert_with(|| {
            left.push(packages[job.0]);
            left.len() - 1
        });
        job.0 = p;
    }
    let excluded = BuildExcluded {
        patterns: filter.texts(),
        generated,
        files,
    };
    Ok((left, kept, Some(excluded)))
}

/// `path` relative to `root`, `/`-separated, if it is inside it.
fn relative_slash(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// Whether Go considers the file generated, as `go/ast.IsGenerated` does: a comment before
/// the package clause holds a line `// Code generated … DO NOT EDIT.`.
pub(crate) fn is_generated(src: &[u8]) -> bool {
    let mut rest = src.strip_prefix(b"\xef\xbb\xbf").unwrap_or(src);
    loop {
        let start = rest
            .iter()
            .position(|b| !b" \t\r\n".contains(b))
            .unwrap_or(rest.len());
        rest = &rest[start..];
        let (comment, after) = if rest.starts_with(b"//") {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        } else if rest.starts_with(b"/*") {
            match rest.windows(2).skip(2).position(|w| w == b"*/") {
                Some(at) => (&rest[..at + 4], &rest[at + 4..]),
                None => return false,
            }
        } else {
            // The package clause, or anything else: no comment before it said so.
            return false;
        };
        let generated = comment.split(|&b| b == b'\n').any(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            line.starts_with(b"// Code generated ") && line.ends_with(b" DO NOT EDIT.")
        });
        if generated {
            return true;
        }
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use instrumenter::{Block, BuildMeta, FileMeta, Func, Mode, Pos};

    use super::*;

    #[test]
    fn the_metadata_says_what_was_excluded_outside_the_build_id() {
        let meta = BuildMeta {
            mode: Mode::Set,
            files: vec![FileMeta {
                name: "example.com/m/a.go".into(),
                blocks: vec![Block {
                    start: Pos { line: 3, col: 10 },
                    end: Pos { line: 5, col: 2 },
                    num_stmt: 1,
                    func: 0,
                }],
                funcs: vec![Func {
                    name: "F".into(),
                    hash: [7; 32],
                }],
            }],
        };
        let id = meta.build_id();
        let plain = crate::meta_json(&meta, &id);
        assert_eq!(crate::meta_json_excluding(&meta, &id, None), plain);
        assert!(!plain.contains("excluded"), "{plain}");
        let excluded = BuildExcluded {
            patterns: vec!["**/*_mock.go".into()],
            generated: true,
            files: vec!["example.com/m/a_mock.go".into()],
        };
        let with = crate::meta_json_excluding(&meta, &id, Some(&excluded));
        let json: serde_json::Value = serde_json::from_str(&with).unwrap();
        assert_eq!(json["build"], id.as_str());
        let back: BuildExcluded = serde_json::from_value(json["excluded"].clone()).unwrap();
        assert_eq!(back, excluded);
    }

    #[test]
    fn generated_files_are_found_as_go_ast_finds_them() {
        assert!(is_generated(
            b"// Code generated by mockgen. DO NOT EDIT.\n\npackage mocks\n"
        ));
        assert!(is_generated(
            b"// Copyright x\n\n//go:build linux\n\n// Code generated by x. DO NOT EDIT.\r\npackage a\n"
        ));
        assert!(is_generated(
            b"/*\n// Code generated by y. DO NOT EDIT.\n*/\npackage a\n"
        ));
        // After the package clause, or not the whole line: not generated.
        assert!(!is_generated(
            b"package a\n\n// Code generated by x. DO NOT EDIT.\n"
        ));
        assert!(!is_generated(
            b"// Code generated by x. DO NOT EDIT. Really.\npackage a\n"
        ));
        assert!(!is_generated(
            b"// code generated by x. DO NOT EDIT.\npackage a\n"
        ));
        assert!(!is_generated(b"/* unterminated"));
        assert!(!is_generated(b""));
    }
}
