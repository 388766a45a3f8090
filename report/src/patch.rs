//! Patch coverage: of the executable lines a change added or modified, how many a snapshot
//! covers.
//!
//! Three steps: [`parse`] reads a unified diff (`git diff` output) into a [`Patch`], the lines
//! each file of the new side gained; [`match_file`] finds the metadata file (named by import
//! path) of each patch path (repo-relative); [`measure`] takes the changed lines that blocks cover (the
//! executable ones) and calls a line covered when the largest count of the blocks holding it is
//! not zero, as LCOV's `DA` records do.

use std::collections::{BTreeMap, BTreeSet};

use instrumenter::BuildMeta;

use crate::types::{PatchCoverage, PatchFile, PatchTotals, percent};
use crate::{Format, FormatError, LINE_FORMATS};

/// A unified diff (`git diff` or `diff -u` output), parsed: the files it changes, in its order.
/// ("Diff" alone, in livecov, is the comparison of two snapshots.)
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Patch {
    pub files: Vec<FileChange>,
}

impl std::ops::Deref for Patch {
    type Target = [FileChange];

    fn deref(&self) -> &[FileChange] {
        &self.files
    }
}

impl PartialEq<Vec<FileChange>> for Patch {
    fn eq(&self, other: &Vec<FileChange>) -> bool {
        &self.files == other
    }
}

/// One file of a patch, by its path on the new side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The file's path in the new tree, without the `b/` prefix.
    pub path: String,
    /// The path in the old tree when it differs (a rename or copy); `None` for a new file.
    pub old_path: Option<String>,
    /// Lines of the new file the diff added or modified (`+` lines), 1-based, ascending.
    pub added: BTreeSet<u32>,
    /// A binary file: its changes are not lines.
    pub binary: bool,
}

/// Why a diff does not parse: the 1-based line of the diff and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("diff line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        message: message.into(),
    })
}

/// A file being read: where its paths came from and the hunks so far.
#[derive(Default)]
struct Pending {
    git: bool,
    header_old: Option<String>,
    header_new: Option<String>,
    rename_from: Option<String>,
    rename_to: Option<String>,
    minus: Option<Option<String>>,
    plus: Option<Option<String>>,
    deleted: bool,
    binary: bool,
    added: BTreeSet<u32>,
    /// The first new-side line after the last hunk: hunks must come in order.
    next_new: u32,
}

/// Parses a unified diff: `git diff` output (`diff --git` headers, extended headers, renames,
/// binary notices) or plain `diff -u` output (`---`/`+++` headers). Lines before the first
/// file header (a commit message) are skipped. Deleted files are left out; every other file
/// is listed once, in diff order, with the lines it gained.
pub fn parse(text: &str) -> Result<Patch, ParseError> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    // `split` yields an empty last piece after the final newline.
    let n = if text.ends_with('\n') || text.is_empty() {
        lines.len() - 1
    } else {
        lines.len()
    };
    let mut out: Vec<FileChange> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut cur: Option<Pending> = None;
    let mut i = 0;
    let mut any_file = false;
    while i < n {
        let line = lines[i];
        let at = i + 1;
        if line.starts_with("diff --cc ") || line.starts_with("diff --combined ") {
            return err(at, "combined diffs (of merge commits) are not supported");
        }
        if let Some(rest) = line.strip_prefix("diff --git ") {
            if let Some(p) = cur.take() {
                finish(p, at - 1, &mut out, &mut seen)?;
            }
            let (old, new) = header_paths(rest);
            cur = Some(Pending {
                git: true,
                header_old: old,
                header_new: new,
                next_new: 1,
                ..Pending::default()
            });
            any_file = true;
            i += 1;
            continue;
        }
        if line.starts_with("--- ")
            && lines.get(i + 1).is_some_and(|l| l.starts_with("+++ "))
            && i + 1 < n
        {
            let reuse = cur.as_ref().is_some_and(|p| p.git && p.minus.is_none());
            if !reuse {
                if let Some(p) = cur.take() {
                    finish(p, at - 1, &mut out, &mut seen)?;
                }
                cur = Some(Pending {
                    next_new: 1,
                    ..Pending::default()
                });
                any_file = true;
            }
            let p = cur.as_mut().expect("a file is being read");
            p.minus = Some(file_path(&line[4..], "a/", at)?);
            p.plus = Some(file_path(&lines[i + 1][4..], "b/", at + 1)?);
            i += 2;
            continue;
        }
        let Some(p) = cur.as_mut() else {
            if line.starts_with("@@ ") {
                return err(at, "a hunk before any file header");
            }
            if line.starts_with("+++ ") || line.starts_with("--- ") {
                return err(at, format!("a lone file header {line:?}"));
            }
            i += 1; // a preamble: a commit message, an e-mail header
            continue;
        };
        if line.starts_with("@@ ") {
            if p.plus.is_none() {
                return err(at, "a hunk without `---` and `+++` lines before it");
            }
            i = hunk(&lines[..n], i, p)?;
            continue;
        }
        if line.starts_with('\\') && p.plus.is_some() {
            // `\ No newline at end of file`, after a hunk's last line.
            i += 1;
            continue;
        }
        if line == "-- " {
            break; // `git format-patch`'s signature: the version of git follows
        }
        if p.git && p.minus.is_none() && !p.binary {
            if let Some(v) = line.strip_prefix("rename from ") {
                p.rename_from = Some(unquote(v, at)?);
            } else if let Some(v) = line.strip_prefix("rename to ") {
                p.rename_to = Some(unquote(v, at)?);
            } else if let Some(v) = line.strip_prefix("copy from ") {
                p.rename_from = Some(unquote(v, at)?);
            } else if let Some(v) = line.strip_prefix("copy to ") {
                p.rename_to = Some(unquote(v, at)?);
            } else if line.starts_with("deleted file mode ") {
                p.deleted = true;
            } else if line.starts_with("Binary files ") && line.ends_with(" differ") {
                p.binary = true;
            } else if line == "GIT binary patch" {
                p.binary = true;
                // Literal or delta data until the next file.
                while i + 1 < n && !lines[i + 1].starts_with("diff --git ") {
                    i += 1;
                }
            } else if ![
                "old mode ",
                "new mode ",
                "new file mode ",
                "similarity index ",
                "dissimilarity index ",
                "index ",
            ]
            .iter()
            .any(|h| line.starts_with(h))
            {
                return err(at, format!("not a git extended header: {line:?}"));
            }
            i += 1;
            continue;
        }
        return err(
            at,
            format!("expected a hunk (`@@ -a,b +c,d @@`) or the next file, found {line:?}"),
        );
    }
    if let Some(p) = cur.take() {
        finish(p, n, &mut out, &mut seen)?;
    }
    if !any_file && lines[..n].iter().any(|l| !l.trim().is_empty()) {
        return err(
            1,
            "no file header (`diff --git` or `---`/`+++`) anywhere: not a unified diff",
        );
    }
    Ok(Patch { files: out })
}

/// Reads the hunk whose header is `lines[i]`; returns the index after it.
fn hunk(lines: &[&str], i: usize, p: &mut Pending) -> Result<usize, ParseError> {
    let at = i + 1;
    let header = lines[i];
    let bad = || {
        err::<(u32, u32, u32, u32)>(
            at,
            format!("a malformed hunk header {header:?}: want `@@ -a,b +c,d @@`"),
        )
    };
    let Some(rest) = header.strip_prefix("@@ -") else {
        return bad().map(|_| 0);
    };
    let Some((ranges, _section)) = rest.split_once(" @@") else {
        return bad().map(|_| 0);
    };
    let Some((old, new)) = ranges.split_once(" +") else {
        return bad().map(|_| 0);
    };
    let range = |s: &str| -> Option<(u32, u32)> {
        let (start, len) = match s.split_once(',') {
            Some((a, b)) => (a, b),
            None => (s, "1"),
        };
        let num = |x: &str| {
            if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                x.parse::<u32>().ok()
            }
        };
        Some((num(start)?, num(len)?))
    };
    let (Some((_, mut old_left)), Some((new_start, mut new_left))) = (range(old), range(new))
    else {
        return bad().map(|_| 0);
    };
    if (new_left > 0 && new_start == 0) || new_start.checked_add(new_left).is_none() {
        return bad().map(|_| 0);
    }
    // An empty new range names the line before it.
    let first = if new_left == 0 {
        new_start + 1
    } else {
        new_start
    };
    if first < p.next_new {
        return err(
            at,
            format!("hunk {header:?} starts before the end of the previous hunk"),
        );
    }
    let mut line_no = new_start;
    let mut j = i + 1;
    while old_left > 0 || new_left > 0 {
        let Some(&l) = lines.get(j) else {
            return err(
                j,
                format!(
                    "the diff ends inside the hunk of line {at}: {old_left} old and {new_left} \
                     new lines missing"
                ),
            );
        };
        match l.as_bytes().first() {
            Some(b'+') if new_left > 0 => {
                p.added.insert(line_no);
                line_no += 1;
                new_left -= 1;
            }
            Some(b'-') if old_left > 0 => old_left -= 1,
            // An empty line is a context line whose space an editor or mailer dropped.
            Some(b' ') | None if old_left > 0 && new_left > 0 => {
                line_no += 1;
                old_left -= 1;
                new_left -= 1;
            }
            Some(b'\\') => {}
            _ => {
                return err(
                    j + 1,
                    format!(
                        "{l:?} does not fit the hunk of line {at}: {old_left} old and \
                         {new_left} new lines were still due"
                    ),
                );
            }
        }
        j += 1;
    }
    p.next_new = line_no.max(first);
    Ok(j)
}

fn finish(
    p: Pending,
    last: usize,
    out: &mut Vec<FileChange>,
    seen: &mut BTreeSet<String>,
) -> Result<(), ParseError> {
    if p.minus.is_some() != p.plus.is_some() {
        return err(last, "a file header without both `---` and `+++`");
    }
    let deleted = p.deleted || matches!(p.plus, Some(None));
    if deleted {
        return Ok(());
    }
    let path = match (&p.plus, &p.rename_to, &p.header_new) {
        (Some(Some(plus)), _, _) => plus.clone(),
        (_, Some(to), _) => to.clone(),
        (_, _, Some(new)) => new.clone(),
        _ => {
            if p.added.is_empty() {
                return Ok(()); // nothing to measure, and no name to give
            }
            return err(last, "a file whose new path cannot be read from its header");
        }
    };
    let old_path = match (&p.minus, &p.rename_from, &p.header_old) {
        (Some(None), _, _) => None,
        (Some(Some(minus)), _, _) => Some(minus.clone()),
        (_, Some(from), _) => Some(from.clone()),
        (_, _, old) => old.clone(),
    }
    .filter(|o| *o != path);
    if !seen.insert(path.clone()) {
        return err(last, format!("file {path:?} appears twice in the diff"));
    }
    out.push(FileChange {
        path,
        old_path,
        added: p.added,
        binary: p.binary,
    });
    Ok(())
}

/// The path of a `---`/`+++` line: `None` for `/dev/null`; a trailing tab and timestamp
/// dropped; the `a/`/`b/` prefix dropped (for `git diff`, when the path has it).
fn file_path(v: &str, prefix: &str, at: usize) -> Result<Option<String>, ParseError> {
    let raw = if v.starts_with('"') {
        unquote(v, at)?
    } else {
        v.split('\t').next().unwrap_or(v).to_string()
    };
    if raw == "/dev/null" {
        return Ok(None);
    }
    if raw.is_empty() {
        return err(at, "a file header without a path");
    }
    Ok(Some(raw.strip_prefix(prefix).unwrap_or(&raw).to_string()))
}

/// The two paths of a `diff --git a/X b/Y` line, prefixes dropped, when they can be told
/// apart: quoted paths, or the same path on both sides (the header is ambiguous for renames
/// of paths with spaces, whose `rename from`/`rename to` lines name them anyway).
fn header_paths(rest: &str) -> (Option<String>, Option<String>) {
    let strip = |s: String, p: &str| s.strip_prefix(p).map(String::from).unwrap_or(s);
    if rest.starts_with('"') {
        let Some(end) = closing_quote(rest) else {
            return (None, None);
        };
        let old = unquote(&rest[..=end], 0).ok();
        let tail = rest[end + 1..].trim_start();
        let new = if tail.starts_with('"') {
            unquote(tail, 0).ok()
        } else {
            Some(tail.to_string())
        };
        return (old.map(|o| strip(o, "a/")), new.map(|n| strip(n, "b/")));
    }
    if let Some(q) = rest.find(" \"") {
        let new = unquote(&rest[q + 1..], 0).ok();
        return (
            Some(strip(rest[..q].to_string(), "a/")),
            new.map(|n| strip(n, "b/")),
        );
    }
    // `a/NAME b/NAME`: the middle space splits it in two equal names.
    if rest.len() % 2 == 1 {
        let half = rest.len() / 2;
        if rest.is_char_boundary(half) && rest.as_bytes()[half] == b' ' {
            let (a, b) = (&rest[..half], &rest[half + 1..]);
            let (sa, sb) = (
                a.strip_prefix("a/").unwrap_or(a),
                b.strip_prefix("b/").unwrap_or(b),
            );
            if sa == sb {
                return (Some(sa.to_string()), Some(sb.to_string()));
            }
        }
    }
    (None, None)
}

fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut k = 1;
    while k < b.len() {
        match b[k] {
            b'\\' => k += 2,
            b'"' => return Some(k),
            _ => k += 1,
        }
    }
    None
}

/// A path as git writes it: as is, or C-quoted (`"dir/caf\303\251.go"`).
fn unquote(v: &str, at: usize) -> Result<String, ParseError> {
    if !v.starts_with('"') {
        return Ok(v.to_string());
    }
    let bad = || err(at, format!("a badly quoted path {v:?}"));
    let Some(end) = closing_quote(v) else {
        return bad();
    };
    if !v[end + 1..].is_empty() && !v[end + 1..].starts_with('\t') {
        return bad();
    }
    let b = &v.as_bytes()[1..end];
    let mut out = Vec::with_capacity(b.len());
    let mut k = 0;
    while k < b.len() {
        if b[k] != b'\\' {
            out.push(b[k]);
            k += 1;
            continue;
        }
        let Some(&c) = b.get(k + 1) else {
            return bad();
        };
        k += 2;
        out.push(match c {
            b'a' => 7,
            b'b' => 8,
            b't' => b'\t',
            b'n' => b'\n',
            b'v' => 11,
            b'f' => 12,
            b'r' => b'\r',
            b'"' => b'"',
            b'\\' => b'\\',
            b'0'..=b'3' => {
                let digits = b
                    .get(k..k + 2)
                    .filter(|d| d.iter().all(|x| (b'0'..=b'7').contains(x)));
                let Some(d) = digits else {
                    return bad();
                };
                k += 2;
                (c - b'0') * 64 + (d[0] - b'0') * 8 + (d[1] - b'0')
            }
            _ => return bad(),
        });
    }
    String::from_utf8(out).or_else(|_| bad())
}

/// The metadata file of `diff_path` among `names`: the one named `module/diff_path` when a
/// module is given, else the one ending in `/diff_path`. `Ok(None)` when none does; an error
/// when two do.
pub fn match_file<'a>(
    diff_path: &str,
    names: impl IntoIterator<Item = &'a str>,
    module: Option<&str>,
) -> Result<Option<&'a str>, String> {
    let want = module.map(|m| format!("{}/{diff_path}", m.trim_end_matches('/')));
    let suffix = format!("/{diff_path}");
    let mut found: Vec<&str> = names
        .into_iter()
        .filter(|n| match &want {
            Some(w) => n == w,
            None => n.ends_with(&suffix),
        })
        .collect();
    found.sort_unstable();
    found.dedup();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        [a, b, ..] => Err(format!(
            "{diff_path} matches {a} and {b}{}: name the module with ?module=",
            if found.len() > 2 {
                format!(" (and {} more)", found.len() - 2)
            } else {
                String::new()
            }
        )),
    }
}

/// The largest count of the blocks holding each of `changed` (the executable changed lines),
/// for one file over the builds that have it: `(blocks with their counts)`.
pub fn line_counts<'a>(
    changed: &BTreeSet<u32>,
    blocks: impl IntoIterator<Item = (&'a instrumenter::Block, u32)>,
) -> BTreeMap<u32, u32> {
    let mut out: BTreeMap<u32, u32> = BTreeMap::new();
    for (block, count) in blocks {
        // //line directives can put a block's end before its start: its extent is unknown.
        let Some(lines) = block.lines().filter(|_| block.end.line >= block.start.line) else {
            continue;
        };
        for &line in changed.range(lines) {
            let c = out.entry(line).or_insert(0);
            *c = (*c).max(count);
        }
    }
    out
}

/// Line numbers as ranges: `[12, 13, 14, 20]` → `12-14,20`.
pub fn ranges(lines: &[u32]) -> String {
    let mut out = String::new();
    let mut k = 0;
    while k < lines.len() {
        let start = lines[k];
        let mut end = start;
        while k + 1 < lines.len() && lines[k + 1] == end + 1 {
            k += 1;
            end = lines[k];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if end == start {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        k += 1;
    }
    out
}

/// The files of `files` that gained lines, each with the metadata file among `names` it is
/// (see [`match_file`]), or `None` when no build has it.
fn matched<'f, 'n>(
    names: &BTreeSet<&'n str>,
    files: &'f [FileChange],
    module: Option<&str>,
) -> Result<Vec<(&'f FileChange, Option<&'n str>)>, String> {
    files
        .iter()
        .filter(|f| !f.added.is_empty() && !f.binary)
        .map(|f| Ok((f, match_file(&f.path, names.iter().copied(), module)?)))
        .collect()
}

/// The lines each file of `files` (a [`Patch`]'s) gained, by the metadata name among `names` it matches:
/// what an export of the change's coverage keeps ([`crate::Coverage::restrict`]).
/// Files no build has are left out.
pub fn changed_lines(
    names: &BTreeSet<&str>,
    files: &[FileChange],
    module: Option<&str>,
) -> Result<BTreeMap<String, BTreeSet<u32>>, String> {
    Ok(matched(names, files, module)?
        .into_iter()
        .filter_map(|(change, name)| Some((name?.to_string(), change.added.clone())))
        .collect())
}

/// Measures the changes `files` (a [`Patch`]'s) against the counters of a snapshot's builds.
pub fn measure(
    snapshot: i64,
    builds: &[(&BuildMeta, &[u32])],
    files: &[FileChange],
    module: Option<&str>,
) -> Result<PatchCoverage, String> {
    let names: BTreeSet<&str> = builds
        .iter()
        .flat_map(|(b, _)| b.files.iter().map(|f| f.name.as_str()))
        .collect();
    let mut out = Vec::new();
    let mut not_measured = Vec::new();
    let (mut lines, mut covered) = (0i64, 0i64);
    for (change, name) in matched(&names, files, module)? {
        let Some(name) = name else {
            not_measured.push(change.path.clone());
            continue;
        };
        let blocks = builds.iter().flat_map(|&(build, values)| {
            let offsets = build.files.iter().scan(0, |at, f| {
                let start = *at;
                *at += f.blocks.len();
                Some(start)
            });
            build
                .files
                .iter()
                .zip(offsets)
                .filter(|(f, _)| f.name == name)
                .flat_map(move |(file, at)| {
                    file.blocks
                        .iter()
                        .enumerate()
                        .map(move |(k, b)| (b, values[at + k]))
                })
        });
        let counts = line_counts(&change.added, blocks);
        if counts.is_empty() {
            continue; // no executable line changed
        }
        let uncovered: Vec<u32> = counts
            .iter()
            .filter(|(_, c)| **c == 0)
            .map(|(l, _)| *l)
            .collect();
        let n = counts.len() as i64;
        let c = n - uncovered.len() as i64;
        lines += n;
        covered += c;
        out.push(PatchFile {
            file: name.to_string(),
            diff_path: change.path.clone(),
            lines: n,
            covered: c,
            uncovered: ranges(&uncovered),
            uncovered_lines: uncovered,
        });
    }
    out.sort_by(|a, b| a.diff_path.cmp(&b.diff_path));
    not_measured.sort();
    Ok(PatchCoverage {
        snapshot,
        total: PatchTotals {
            lines,
            covered,
            coverage: percent(covered, lines),
        },
        files: out,
        not_measured,
    })
}

/// The answer's format: `None` for the JSON [`PatchCoverage`], else an export of the changed
/// lines (one of [`LINE_FORMATS`]).
pub fn answer_format(name: Option<&str>) -> Result<Option<Format>, FormatError> {
    let name = name.unwrap_or("json");
    if name == "json" {
        return Ok(None);
    }
    name.parse::<Format>()
        .ok()
        .filter(|f| LINE_FORMATS.contains(f))
        .map(Some)
        .ok_or_else(|| {
            let names: Vec<&str> = LINE_FORMATS.iter().map(|f| f.name()).collect();
            FormatError(format!(
                "format {name:?} is not supported for patch coverage; supported: json, {}",
                names.join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use instrumenter::{Block, Pos};

    /// `git diff HEAD~1` of a commit that changes a binary file, deletes one, renames and
    /// changes one, changes a file without a final newline, changes a Go file in two places,
    /// adds a Go file, renames one unchanged and changes a mode.
    const GIT_DIFF: &str = "diff --git a/bin.dat b/bin.dat
index bdc955b..8835708 100644
Binary files a/bin.dat and b/bin.dat differ
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
index 3367afd..0000000
--- a/gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-old
diff --git a/old_name.txt b/new_name.txt
similarity index 78%
rename from old_name.txt
rename to new_name.txt
index 5fcb7b1..de45cbb 100644
--- a/old_name.txt
+++ b/new_name.txt
@@ -3,4 +3,4 @@ line2
 line3
 line4
 line5
-line6
+CHANGED
diff --git a/nonl.txt b/nonl.txt
index c1b0730..e25f181 100644
--- a/nonl.txt
+++ b/nonl.txt
@@ -1 +1 @@
-x
\\ No newline at end of file
+y
\\ No newline at end of file
diff --git a/pkg/a.go b/pkg/a.go
index 47e76cf..f5ec9a6 100644
--- a/pkg/a.go
+++ b/pkg/a.go
@@ -1,9 +1,11 @@
 package pkg
 
+// A is one.
 func A() int {
-\treturn 1
+\treturn 10
 }
 
 func B() int {
-\treturn 2
+\tx := 2
+\treturn x
 }
diff --git a/pkg/c.go b/pkg/c.go
new file mode 100644
index 0000000..c33ba99
--- /dev/null
+++ b/pkg/c.go
@@ -0,0 +1,3 @@
+package pkg
+
+func C() {}
diff --git a/same.go b/moved/same.go
similarity index 100%
rename from same.go
rename to moved/same.go
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
";

    fn lines(v: &[u32]) -> BTreeSet<u32> {
        v.iter().copied().collect()
    }

    fn change(path: &str, old: Option<&str>, added: &[u32], binary: bool) -> FileChange {
        FileChange {
            path: path.into(),
            old_path: old.map(String::from),
            added: lines(added),
            binary,
        }
    }

    #[test]
    fn parses_git_diff() {
        let files = parse(GIT_DIFF).unwrap();
        assert_eq!(
            files,
            vec![
                change("bin.dat", None, &[], true),
                change("new_name.txt", Some("old_name.txt"), &[6], false),
                change("nonl.txt", None, &[1], false),
                change("pkg/a.go", None, &[3, 5, 9, 10], false),
                change("pkg/c.go", None, &[1, 2, 3], false),
                change("moved/same.go", Some("same.go"), &[], false),
                change("run.sh", None, &[], false),
            ]
        );
        // CRLF line ends and a preamble (`git show`) read the same.
        let shown = format!("commit 0123\nAuthor: t <t@t>\n\n    two\n\n{GIT_DIFF}");
        assert_eq!(parse(&shown).unwrap(), files);
        // `git format-patch`: an e-mail, a diffstat after `---`, a signature after the diff.
        let mail = format!(
            "From 0123 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] two\n\n---\n \
             pkg/a.go | 5 +++--\n\n{GIT_DIFF}-- \n2.43.0\n\n"
        );
        assert_eq!(parse(&mail).unwrap(), files);
        assert_eq!(parse(&GIT_DIFF.replace('\n', "\r\n")).unwrap(), files);
        assert_eq!(parse("").unwrap(), vec![]);
    }

    #[test]
    fn parses_plain_and_quoted() {
        let plain = "--- old/x.go\t2026-01-01 00:00:00\n+++ new/x.go\t2026-01-02 00:00:00\n\
                     @@ -1,2 +1,3 @@\n a\n+b\n c\n@@ -10 +11,0 @@\n-z\n";
        assert_eq!(
            parse(plain).unwrap(),
            vec![change("new/x.go", Some("old/x.go"), &[2], false)]
        );
        let quoted = "diff --git \"a/caf\\303\\251 x.go\" \"b/caf\\303\\251 x.go\"\n\
                      --- \"a/caf\\303\\251 x.go\"\n+++ \"b/caf\\303\\251 x.go\"\n\
                      @@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(
            parse(quoted).unwrap(),
            vec![change("café x.go", None, &[1], false)]
        );
        // An empty context line (its space dropped) still counts.
        let dropped = "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n\n-c\n+d\n";
        assert_eq!(
            parse(dropped).unwrap(),
            vec![change("x", None, &[3], false)]
        );
    }

    #[test]
    fn rejects_malformed() {
        let cases: [(&str, usize, &str); 9] = [
            // (diff, line named, part of the message)
            (
                "--- a/x\n+++ b/x\n@@ -1 +1 @\n-a\n+b\n",
                3,
                "malformed hunk header",
            ),
            (
                "--- a/x\n+++ b/x\n@@ -1,x +1 @@\n-a\n+b\n",
                3,
                "malformed hunk header",
            ),
            (
                "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\n",
                5,
                "diff ends inside",
            ),
            (
                "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n+c\n",
                6,
                "expected a hunk",
            ),
            (
                "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n*b\n",
                5,
                "does not fit the hunk",
            ),
            (
                "--- a/x\n+++ b/x\n@@ -5 +5 @@\n-a\n+b\n@@ -1 +1 @@\n-a\n+b\n",
                6,
                "before the end of the previous hunk",
            ),
            ("@@ -1 +1 @@\n-a\n+b\n", 1, "hunk before any file header"),
            ("hello, world\n", 1, "not a unified diff"),
            (
                "diff --git a/x b/x\nbogus header\n",
                2,
                "not a git extended header",
            ),
        ];
        for (diff, line, what) in cases {
            let e = parse(diff).unwrap_err();
            assert_eq!(e.line, line, "{diff:?}: {e}");
            assert!(e.to_string().contains(what), "{diff:?}: {e}");
        }
        let twice =
            "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n";
        assert!(parse(twice).unwrap_err().message.contains("twice"));
        let huge = "--- a/x\n+++ b/x\n@@ -1 +4294967295,2 @@\n-a\n+b\n+c\n";
        assert!(
            parse(huge)
                .unwrap_err()
                .message
                .contains("malformed hunk header")
        );
        let combined = "diff --cc x.go\nindex 1,2..3\n";
        assert!(parse(combined).unwrap_err().message.contains("combined"));
    }

    #[test]
    fn changed_lines_by_metadata_name() {
        let names = BTreeSet::from(["example.com/m/a/b.go", "example.com/m/a/c/d.go"]);
        let files = vec![
            change("a/b.go", None, &[1, 6, 7], false),
            change("c/d.go", None, &[], false),   // nothing added
            change("a/c/d.go", None, &[4], true), // binary
            change("README.md", None, &[1], false),
        ];
        let got = changed_lines(&names, &files, None).unwrap();
        assert_eq!(
            got,
            BTreeMap::from([("example.com/m/a/b.go".to_string(), lines(&[1, 6, 7]))])
        );
        let named = changed_lines(&names, &files, Some("example.com/m")).unwrap();
        assert_eq!(named, got);
        let two = BTreeSet::from(["example.com/m/b.go", "example.com/n/b.go"]);
        let e = changed_lines(&two, &[change("b.go", None, &[1], false)], None).unwrap_err();
        assert!(e.contains("?module="), "{e}");
    }

    /// A diff to the export's sample file, through the export path: parsed, matched,
    /// restricted, written as lcov.
    #[test]
    fn diff_to_restricted_lcov() {
        let diff = "--- a/a/b.go\n+++ b/a/b.go\n@@ -5,2 +5,4 @@\n x\n+y\n-z\n+w\n+v\n";
        let files = parse(diff).unwrap();
        let cov = crate::coverage::tests::sample();
        let names: BTreeSet<&str> = cov.files.iter().map(|f| f.name.as_str()).collect();
        let keep = changed_lines(&names, &files, None).unwrap();
        let options = crate::Options {
            strip: Some("example.com/m".into()),
            source: None,
        };
        assert_eq!(
            crate::write_lines(&cov.restrict(&keep), Format::Lcov, &options).unwrap(),
            "TN:\nSF:a/b.go\nFN:3,F\nFNDA:3,F\nFNF:1\nFNH:1\nDA:6,0\nDA:7,3\nDA:8,3\n\
             LF:3\nLH:2\nend_of_record\n"
        );
    }

    #[test]
    fn answer_formats() {
        assert_eq!(answer_format(None).unwrap(), None);
        assert_eq!(answer_format(Some("json")).unwrap(), None);
        assert_eq!(answer_format(Some("lcov")).unwrap(), Some(Format::Lcov));
        assert_eq!(
            answer_format(Some("cobertura")).unwrap(),
            Some(Format::Cobertura)
        );
        for bad in ["go", "html", "pdf", ""] {
            let e = answer_format(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("supported: json, lcov, cobertura"), "{bad}: {e}");
        }
    }

    #[test]
    fn matches_paths() {
        let names = [
            "example.com/m/pkg/file.go",
            "example.com/m/cmd/app/main.go",
            "example.com/m/main.go",
        ];
        let m = |p: &str, module: Option<&str>| match_file(p, names, module);
        assert_eq!(m("pkg/file.go", None), Ok(Some(names[0])));
        assert_eq!(m("cmd/app/main.go", None), Ok(Some(names[1])));
        assert_eq!(m("file.go", None), Ok(Some(names[0])));
        assert_eq!(m("ile.go", None), Ok(None));
        assert_eq!(m("README.md", None), Ok(None));
        let e = m("main.go", None).unwrap_err();
        assert!(
            e.contains("example.com/m/cmd/app/main.go") && e.contains("example.com/m/main.go"),
            "{e}"
        );
        assert_eq!(m("main.go", Some("example.com/m")), Ok(Some(names[2])));
        assert_eq!(m("main.go", Some("example.com/m/")), Ok(Some(names[2])));
        assert_eq!(m("file.go", Some("example.com/m")), Ok(None));
    }

    fn block(l0: u32, l1: u32) -> Block {
        Block {
            start: Pos { line: l0, col: 2 },
            end: Pos { line: l1, col: 3 },
            num_stmt: 1,
            func: 0,
        }
    }

    #[test]
    fn executable_lines_take_the_largest_count() {
        let blocks = [block(3, 6), block(6, 8), block(12, 12)];
        let counts = [0u32, 4, 0];
        let changed = lines(&[1, 4, 6, 7, 10, 12]);
        let got = line_counts(&changed, blocks.iter().zip(counts));
        // 1 and 10 are in no block; 6 is in two, the covered one wins.
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            vec![(4, 0), (6, 4), (7, 4), (12, 0)]
        );
        assert_eq!(ranges(&[12, 13, 14, 20]), "12-14,20");
        assert_eq!(ranges(&[1, 3, 4]), "1,3-4");
        assert_eq!(ranges(&[]), "");
    }

    fn build(files: Vec<(&str, Vec<Block>)>) -> BuildMeta {
        instrumenter::BuildMeta {
            mode: instrumenter::Mode::Count,
            files: files
                .into_iter()
                .map(|(name, blocks)| instrumenter::FileMeta {
                    name: name.into(),
                    blocks,
                    funcs: vec![instrumenter::Func {
                        name: "F".into(),
                        hash: [0; 32],
                    }],
                })
                .collect(),
        }
    }

    #[test]
    fn measures_across_builds() {
        // Two builds of one file: line 5 is covered in the second only; line 9 in neither.
        let one = build(vec![
            ("example.com/m/pkg/a.go", vec![block(4, 6), block(8, 10)]),
            ("example.com/m/main.go", vec![block(3, 3)]),
        ]);
        let two = build(vec![("example.com/m/pkg/a.go", vec![block(5, 5)])]);
        let builds = [(&one, &[0, 0, 1][..]), (&two, &[2][..])];
        let files = vec![
            change("pkg/a.go", None, &[1, 5, 6, 9], false),
            change("docs/x.md", None, &[1], false),
            change("main.go", None, &[7], false), // known, nothing executable changed
            change("gone.go", None, &[], false),
        ];
        let got = measure(4, &builds, &files, None).unwrap();
        assert_eq!(got.snapshot, 4);
        assert_eq!(
            got.files,
            vec![PatchFile {
                file: "example.com/m/pkg/a.go".into(),
                diff_path: "pkg/a.go".into(),
                lines: 3,
                covered: 1,
                uncovered: "6,9".into(),
                uncovered_lines: vec![6, 9],
            }]
        );
        assert_eq!(
            got.total,
            PatchTotals {
                lines: 3,
                covered: 1,
                coverage: 33.33
            }
        );
        assert_eq!(got.not_measured, vec!["docs/x.md".to_string()]);
        // A module that is not the build's measures nothing.
        let other = measure(4, &builds, &files, Some("example.com/x")).unwrap();
        assert_eq!(other.total.lines, 0);
        assert_eq!(other.not_measured, ["docs/x.md", "main.go", "pkg/a.go"]);
    }
}
