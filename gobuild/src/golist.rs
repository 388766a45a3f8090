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

/// `go list -json MODE FLAGS PATTERNS` in `dir`. `mode` is `-deps` for every package a build
/// compiles, `-deps -test` for every package its tests compile, or nothing for the packages the
/// patterns name.
pub fn list(
    dir: &Path,
    mode: &[&str],
    flags: &[String],
    patterns: &[String],
) -> Result<Vec<Package>, Error> {
    let out = Command::new("go")
        .arg("list")
        .args(mode)
        .arg("-json=Dir,ImportPath,Name,Standard,DepOnly,GoFiles,CgoFiles,TestGoFiles,XTestGoFiles,ForTest,Module,Error")
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
    let mut packages = Vec::new();
    for pkg in serde_json::Deserializer::from_slice(&out.stdout).into_iter::<Package>() {
        let pkg = pkg.map_err(|e| Error::Go(format!("unexpected go list output: {e}")))?;
        if let Some(err) = &pkg.error {
            return Err(Error::Go(format!("{}: {}", pkg.import_path, err.err)));
        }
        packages.push(pkg);
    }
    Ok(packages)
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
