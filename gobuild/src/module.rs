//! Making the agent a dependency of the build without touching the user's go.mod, go.sum or
//! go.work.
//!
//! The agent is a real module on disk, `livecov.dev/agent`, written per build into the cache.
//! `go` learns about it from a copy of the user's module file (`-modfile`, with a `require` and
//! a `replace` pointing at the agent's directory; `go` then keeps its sums in the copy's go.sum)
//! or, in a workspace, from a copy of the user's go.work (`GOWORK`) that also `use`s the agent.
//! A real directory matters: `go vet` and the vet step of `go test` run inside every package's
//! directory, which an overlay-only package does not have.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::Error;

/// The agent's module path, and its only package's import path.
pub const AGENT_MODULE: &str = "livecov.dev/agent";

/// What the go command needs to see the agent: extra flags and environment.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// A dependency module whose packages are instrumented (`--coverpkg`): `go` refuses overlays
/// in the module cache, so the module is copied and the copy replaces it.
#[derive(Debug, Clone)]
pub struct Copied {
    pub path: String,
    pub version: Option<String>,
    pub dir: PathBuf,
}

impl Copied {
    fn directive(&self) -> String {
        match &self.version {
            Some(v) => format!("replace {} {v} => {}\n", self.path, quote_path(&self.dir)),
            None => format!("replace {} => {}\n", self.path, quote_path(&self.dir)),
        }
    }
}

/// Writes the module or workspace file that adds the agent at `agent_dir` (and the `copied`
/// dependencies) to the build run in `dir`, into `build_dir`.
pub fn setup(
    dir: &Path,
    env: &GoEnv,
    build_dir: &Path,
    agent_dir: &Path,
    copied: &[Copied],
) -> Result<Setup, Error> {
    let gowork = env.gowork.as_str();
    if !gowork.is_empty() && gowork != "off" {
        return workspace(dir, Path::new(gowork), build_dir, agent_dir, copied);
    }
    let gomod = env.gomod.clone();
    if gomod.is_empty() || gomod == "/dev/null" || gomod == "NUL" {
        return Err(Error::Usage(
            "not in a Go module: livecov builds modules (run it where go.mod is, or below)".into(),
        ));
    }
    let gomod = PathBuf::from(gomod);
    let text = std::fs::read_to_string(&gomod).map_err(|e| Error::io(&gomod, e))?;
    let modfile = build_dir.join("go.mod");
    let mut added = format!(
        "{text}\n\nrequire {AGENT_MODULE} v0.0.0\n\nreplace {AGENT_MODULE} => {}\n",
        quote_path(agent_dir)
    );
    for c in copied {
        added.push_str(&c.directive());
    }
    crate::cache::write_atomic(&modfile, added.as_bytes())?;
    let gosum = gomod.with_file_name("go.sum");
    let sums = match std::fs::read(&gosum) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(&gosum, e)),
    };
    crate::cache::write_atomic(&build_dir.join("go.sum"), &sums)?;
    Ok(Setup {
        args: vec![format!("-modfile={}", modfile.display())],
        env: Vec::new(),
    })
}

/// `go work edit -json`: the fields used here.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WorkFile {
    go: Option<String>,
    toolchain: Option<String>,
    // `go work edit -json` writes null for an empty list.
    #[serde(rename = "Use")]
    use_: Option<Vec<WorkUse>>,
    replace: Option<Vec<WorkReplace>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WorkUse {
    disk_path: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WorkReplace {
    old: WorkModule,
    new: WorkModule,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WorkModule {
    path: String,
    version: Option<String>,
}

fn workspace(
    dir: &Path,
    gowork: &Path,
    build_dir: &Path,
    agent_dir: &Path,
    copied: &[Copied],
) -> Result<Setup, Error> {
    let out = Command::new("go")
        .args(["work", "edit", "-json"])
        .current_dir(dir)
        .output()
        .map_err(|e| Error::Go(format!("cannot run go work edit: {e}")))?;
    if !out.status.success() {
        return Err(Error::Go(format!(
            "go work edit -json failed:\n{}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        )));
    }
    let work: WorkFile = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Go(format!("unexpected go work edit -json output: {e}")))?;
    let base = gowork.parent().unwrap_or(Path::new("/"));
    let abs = |p: &str| {
        let p = Path::new(p);
        // Components drop the `.` of `./app`: go compares these paths with directories.
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        };
        joined.components().collect::<PathBuf>()
    };
    let mut text = String::new();
    if let Some(go) = &work.go {
        text.push_str(&format!("go {go}\n\n"));
    }
    if let Some(tc) = &work.toolchain {
        text.push_str(&format!("toolchain {tc}\n\n"));
    }
    text.push_str("use (\n");
    for u in work.use_.iter().flatten() {
        text.push_str(&format!("\t{}\n", quote_path(&abs(&u.disk_path))));
    }
    text.push_str(&format!("\t{}\n)\n", quote_path(agent_dir)));
    for r in work.replace.iter().flatten() {
        let old = match &r.old.version {
            Some(v) => format!("{} {v}", r.old.path),
            None => r.old.path.clone(),
        };
        let new = match &r.new.version {
            Some(v) => format!("{} {v}", r.new.path),
            None => quote_path(&abs(&r.new.path)),
        };
        text.push_str(&format!("\nreplace {old} => {new}\n"));
    }
    for c in copied {
        text.push_str(&c.directive());
    }
    let file = build_dir.join("go.work");
    crate::cache::write_atomic(&file, text.as_bytes())?;
    Ok(Setup {
        args: Vec::new(),
        env: vec![("GOWORK".into(), file.to_string_lossy().into_owned())],
    })
}

/// A path as go.mod and go.work syntax spells it (quoted, so spaces are fine).
fn quote_path(p: &Path) -> String {
    format!("{:?}", p.to_string_lossy())
}

/// The `go env` settings livecov needs, read with one `go env -json` run.
/// The settings livecov reads from `go env`: the four it uses, and every other one that can
/// change which packages and files `go list` reports. Not all of `go env`: some of it
/// (`GOGCCFLAGS`) runs the C compiler and names a new temporary directory on every call.
const SETTINGS: &[&str] = &[
    "GOVERSION",
    "GOWORK",
    "GOMOD",
    "GOMODCACHE",
    "GOROOT",
    "GOPATH",
    "GOOS",
    "GOARCH",
    "GOFLAGS",
    "CGO_ENABLED",
    "GOEXPERIMENT",
    "GOTOOLCHAIN",
    "GO111MODULE",
    "GODEBUG",
    "GOAMD64",
    "GOARM",
    "GOARM64",
    "GO386",
    "GOMIPS",
    "GOMIPS64",
    "GOPPC64",
    "GORISCV64",
    "GOWASM",
    "GOFIPS140",
    "CC",
    "CXX",
    "GOPROXY",
    "GONOSUMDB",
    "GOPRIVATE",
    "GOINSECURE",
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub struct GoEnv {
    #[serde(default)]
    pub goversion: String,
    #[serde(default)]
    pub gowork: String,
    #[serde(default)]
    pub gomod: String,
    #[serde(default)]
    pub gomodcache: String,
    /// `go env -json` of [`SETTINGS`]: what `go list` answers by, for its cache key.
    #[serde(skip)]
    pub raw: Vec<u8>,
}

impl GoEnv {
    pub fn read(dir: &Path) -> Result<GoEnv, Error> {
        let out = Command::new("go")
            .args(["env", "-json"])
            .args(SETTINGS)
            .current_dir(dir)
            .output()
            .map_err(|e| Error::Go(format!("cannot run go ({e}): is Go installed and on PATH?")))?;
        if !out.status.success() {
            return Err(Error::Go(format!(
                "go env failed:\n{}",
                String::from_utf8_lossy(&out.stderr).trim_end()
            )));
        }
        let mut env: GoEnv = serde_json::from_slice(&out.stdout)
            .map_err(|e| Error::Go(format!("unexpected go env -json output: {e}")))?;
        env.raw = out.stdout;
        Ok(env)
    }
}
