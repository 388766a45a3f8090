//! Asking `go list` which packages a build compiles, and which of them are the user's.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::Error;

/// The fields of `go list -json` output livecov uses.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Package {
    pub dir: PathBuf,
    pub import_path: String,
    pub name: String,
    #[serde(default)]
    pub standard: bool,
    /// Listed only as a dependency of the packages the patterns name.
    #[serde(default)]
    pub dep_only: bool,
    #[serde(default)]
    pub go_files: Vec<String>,
    #[serde(default)]
    pub cgo_files: Vec<String>,
    #[serde(default)]
    pub test_go_files: Vec<String>,
    #[serde(default)]
    pub x_test_go_files: Vec<String>,
    /// The import paths the package's files import.
    #[serde(default)]
    pub imports: Vec<String>,
    /// Set on the variant of a package compiled for another package's test.
    #[serde(default)]
    pub for_test: String,
    pub module: Option<Module>,
    pub error: Option<PackageError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Module {
    pub path: String,
    pub version: Option<String>,
    #[serde(default)]
    pub main: bool,
    /// Where the module's files are: its directory, or that of its replacement.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PackageError {
    pub err: String,
}

/// `go list -json MODE FLAGS PATTERNS` in `dir` (`mode` is `-deps` for every package a build
/// compiles, `-deps -test` for every package its tests compile, or nothing for the packages
/// the patterns name), answered from `cache` when nothing `go list` reads has changed since it
/// last ran with the same settings (`env`), so that a rebuild with no change costs no
/// `go list`.
///
/// The key is everything the answer depends on but files: livecov's version, the Go settings,
/// the directory, the mode, the flags and the patterns. Files are checked on every use: the
/// answer is kept with a [`Stamp`] of the files it was read from, and used only while the
/// stamp still holds. An answer is not kept if any of its files changed less than two seconds
/// before `go list` started, so a file edited while `go list` read it cannot leave a stale
/// answer behind its new timestamp.
pub fn list_cached(
    cache: &Path,
    env: &crate::module::GoEnv,
    dir: &Path,
    mode: &[&str],
    flags: &[String],
    patterns: &[String],
) -> Result<Vec<Package>, Error> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(concat!(
        "livecov ",
        env!("CARGO_PKG_VERSION"),
        " go list 2\n"
    ));
    h.update(&env.raw);
    for part in [dir.to_string_lossy().as_ref(), "\0"]
        .into_iter()
        .chain(mode.iter().copied())
        .chain(["\0"])
        .chain(flags.iter().map(String::as_str))
        .chain(["\0"])
        .chain(patterns.iter().map(String::as_str))
    {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    let path = cache
        .join("golist")
        .join(instrumenter::hex(&h.finalize()[..16]));
    if let Ok(kept) = std::fs::read(&path)
        && let Some(split) = kept.windows(2).position(|w| w == b"\n\n")
        && let Ok(packages) = parse(&kept[split + 2..])
        && Stamp::of(&packages, env).text.as_bytes() == &kept[..split + 1]
    {
        return Ok(packages);
    }
    let started = std::time::SystemTime::now();
    let out = run(dir, mode, flags, patterns)?;
    let packages = parse(&out)?;
    let stamp = Stamp::of(&packages, env);
    let settled = started
        .checked_sub(std::time::Duration::from_secs(2))
        .is_some_and(|t| stamp.newest < t);
    if settled {
        // The stamp's lines, an empty line, the answer.
        let mut kept = stamp.text.into_bytes();
        kept.push(b'\n');
        kept.extend_from_slice(&out);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        // A cache that cannot be written only costs the next build a `go list`.
        let _ = crate::cache::write_atomic(&path, &kept);
    }
    Ok(packages)
}

/// Runs `go list -json MODE FLAGS PATTERNS` in `dir` and returns its output.
fn run(dir: &Path, mode: &[&str], flags: &[String], patterns: &[String]) -> Result<Vec<u8>, Error> {
    let out = Command::new("go")
        .arg("list")
        .args(mode)
        .arg("-json=Dir,ImportPath,Name,Standard,DepOnly,GoFiles,CgoFiles,TestGoFiles,XTestGoFiles,Imports,ForTest,Module,Error")
        .args(flags)
        .args(patterns)
        .current_dir(dir)
        .output()
        .map_err(|e| Error::Go(format!("cannot run go ({e}): is Go installed and on PATH?")))?;
    if !out.status.success() {
        return Err(Error::Go(format!(
            "go list failed:\n{}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        )));
    }
    Ok(out.stdout)
}

/// The packages of `go list -json` output.
fn parse(out: &[u8]) -> Result<Vec<Package>, Error> {
    let mut packages = Vec::new();
    for pkg in serde_json::Deserializer::from_slice(out).into_iter::<Package>() {
        let pkg = pkg.map_err(|e| Error::Go(format!("unexpected go list output: {e}")))?;
        if let Some(err) = &pkg.error {
            return Err(Error::Go(format!("{}: {}", pkg.import_path, err.err)));
        }
        packages.push(pkg);
    }
    Ok(packages)
}

/// What `go list` read from disk, as sizes and modification times: the Go, assembly and C
/// files, `go.mod`, `go.sum`, `go.work` and `vendor/modules.txt` of every main module (the
/// whole tree, where a new directory is a new package), of every package outside the module
/// cache and the standard library (a module replaced by a local directory), and the
/// workspace's files. The module cache and GOROOT never change under a version.
struct Stamp {
    text: String,
    newest: std::time::SystemTime,
}

impl Stamp {
    fn of(packages: &[Package], env: &crate::module::GoEnv) -> Stamp {
        let mut stamp = Stamp {
            text: String::new(),
            newest: std::time::UNIX_EPOCH,
        };
        let mut trees: Vec<&Path> = packages
            .iter()
            .filter_map(|p| p.module.as_ref())
            .filter(|m| m.main)
            .filter_map(|m| m.dir.as_deref())
            .collect();
        trees.sort();
        trees.dedup();
        for tree in &trees {
            stamp.walk(tree, true);
        }
        let mut dirs: Vec<&Path> = packages
            .iter()
            .filter(|p| !p.standard)
            .map(|p| p.dir.as_path())
            .filter(|d| !d.starts_with(&env.gomodcache) && !trees.iter().any(|t| d.starts_with(t)))
            .collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            stamp.walk(dir, false);
        }
        for file in [&env.gomod, &env.gowork] {
            if !file.is_empty() && file != "off" && file != "/dev/null" {
                let file = Path::new(file);
                stamp.file(file);
                stamp.file(&file.with_extension("sum"));
            }
        }
        stamp
    }

    fn file(&mut self, path: &Path) {
        use std::fmt::Write as _;
        match std::fs::metadata(path) {
            Ok(m) => {
                let modified = m.modified().unwrap_or(std::time::UNIX_EPOCH);
                self.newest = self.newest.max(modified);
                let ns = modified
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                let _ = writeln!(self.text, "{} {} {ns}", path.display(), m.len());
            }
            Err(_) => {
                let _ = writeln!(self.text, "{} -", path.display());
            }
        }
    }

    /// Stamps the files of `dir` that `go` reads, and with `deep` those of its subdirectories
    /// that `go` would look in (not `testdata`, nor names starting with `.` or `_`).
    fn walk(&mut self, dir: &Path, deep: bool) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            self.file(dir);
            return;
        };
        let mut entries: Vec<(std::ffi::OsString, bool)> = entries
            .flatten()
            .map(|e| (e.file_name(), e.file_type().is_ok_and(|t| t.is_dir())))
            .collect();
        entries.sort();
        for (name, is_dir) in entries {
            let text = name.to_string_lossy();
            if is_dir {
                let skip = text.starts_with(['.', '_']) || text == "testdata";
                if deep && !skip {
                    self.walk(&dir.join(&name), true);
                } else if text == "vendor" {
                    self.file(&dir.join("vendor").join("modules.txt"));
                }
                continue;
            }
            let read_by_go = [
                ".go", ".s", ".S", ".c", ".h", ".cc", ".cpp", ".cxx", ".hh", ".hpp", ".syso",
            ]
            .iter()
            .any(|ext| text.ends_with(ext))
                || matches!(
                    &*text,
                    "go.mod" | "go.sum" | "go.work" | "go.work.sum" | "modules.txt"
                );
            if read_by_go {
                self.file(&dir.join(&name));
            }
        }
    }
}

impl Package {
    /// Whether the package belongs to one of the main modules (the module, or a workspace's),
    /// as itself: not a test variant, not a generated test main.
    pub fn in_main_module(&self) -> bool {
        self.module.as_ref().is_some_and(|m| m.main) && self.is_itself()
    }

    /// Whether this is the package itself, not a test variant or a generated test main.
    pub fn is_itself(&self) -> bool {
        !self.standard
            && self.for_test.is_empty()
            && !self.import_path.contains(' ')
            && !self.import_path.ends_with(".test")
    }

    /// The Go files the build compiles, cgo files included.
    pub fn files(&self) -> impl Iterator<Item = &String> {
        self.go_files.iter().chain(&self.cgo_files)
    }
}
