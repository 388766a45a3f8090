//! Helpers shared by livecov's tests, conformance and benchmark tools: running the Go
//! toolchain, fetching the pinned real-world modules that both measure against, fresh
//! PostgreSQL databases, and [`LiveServer`], a `livecov server` process.
//!
//! Not part of the product: nothing here is used by the `livecov` executable.

mod server;

pub use server::{LiveServer, free_port};

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Real-world modules at pinned versions, fetched through the Go module proxy.
pub const MODULES: &[&str] = &[
    "github.com/google/uuid@v1.6.0",
    "github.com/go-chi/chi/v5@v5.2.3",
    "github.com/BurntSushi/toml@v1.6.0",
    "golang.org/x/sync@v0.11.0",
    "github.com/hashicorp/golang-lru/v2@v2.0.7",
    "github.com/spf13/cobra@v1.10.2",
];

/// Runs `go ARGS` in `dir` and returns its standard output. The local toolchain is used as is
/// (`GOTOOLCHAIN=local`), and missing `go.sum` lines are filled in (`GOFLAGS=-mod=mod`).
pub fn go(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("go")
        .args(args)
        .current_dir(dir)
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .output()
        .with_context(|| format!("cannot run `go {}`: is Go on PATH?", args.join(" ")))?;
    if !out.status.success() {
        // go test reports failing tests on stdout: keep its end too.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = stdout.lines().rev().take(40).collect();
        bail!(
            "go {} (in {}) failed:\n{}{}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `go mod download -json MODULE@VERSION`: the module's (read-only) directory in the cache.
pub fn download(module: &str) -> Result<PathBuf> {
    // From the temp dir, outside any go.mod, so that no caller's module gets in the way.
    let json = go(&std::env::temp_dir(), &["mod", "download", "-json", module])?;
    let dir = json_string_field(&json, "Dir")
        .with_context(|| format!("no Dir in `go mod download -json {module}`: {json}"))?;
    Ok(PathBuf::from(dir))
}

/// The directory of the standard library's source, `$GOROOT/src`.
pub fn goroot_src() -> Result<PathBuf> {
    let root = go(&std::env::temp_dir(), &["env", "GOROOT"])?;
    Ok(Path::new(root.trim()).join("src"))
}

/// Every non-test `.go` file under `root`, sorted; `testdata` directories are skipped when
/// `skip_testdata` is set.
pub fn go_files(root: &Path, skip_testdata: bool) -> Result<Vec<PathBuf>> {
    fn walk(path: &Path, skip_testdata: bool, out: &mut Vec<PathBuf>) -> Result<()> {
        if path.is_dir() {
            if skip_testdata && path.file_name().is_some_and(|n| n == "testdata") {
                return Ok(());
            }
            for entry in std::fs::read_dir(path).with_context(|| format!("{}", path.display()))? {
                walk(&entry?.path(), skip_testdata, out)?;
            }
        } else {
            let name = path.to_string_lossy();
            if name.ends_with(".go") && !name.ends_with("_test.go") {
                out.push(path.to_path_buf());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, skip_testdata, &mut out)?;
    out.sort();
    Ok(out)
}

/// Copies a directory tree, leaving every copy writable (the module cache is read-only).
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::write(&dst, std::fs::read(&src)?)?;
        }
    }
    Ok(())
}

/// The string value of `"key": "…"` in `go`'s JSON output.
pub fn json_string_field(json: &str, key: &str) -> Option<String> {
    let after_key = &json[json.find(&format!("\"{key}\":"))? + key.len() + 3..];
    let mut chars = after_key.trim_start().strip_prefix('"')?.chars();
    let mut value = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(value),
            '\\' => match chars.next()? {
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    value.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                c @ ('"' | '\\' | '/') => value.push(c),
                _ => return None,
            },
            c => value.push(c),
        }
    }
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c < ' ' => out += &format!("\\u{:04x}", c as u32),
            c => out.push(c),
        }
    }
    out + "\""
}

/// The PostgreSQL server the tests may use: `LIVECOV_TEST_POSTGRES`, a URL whose role can
/// create databases (`scripts/postgres.sh` prints one). None when unset.
pub fn test_postgres() -> Option<String> {
    std::env::var("LIVECOV_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Creates a fresh, empty database on the PostgreSQL server of `admin_url` (with `psql`,
/// which comes with the server) and returns its URL.
pub fn fresh_postgres(admin_url: &str) -> Result<String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "livecov_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        let out = Command::new("psql")
            .args(["-q", "-v", "ON_ERROR_STOP=1", admin_url, "-c", &sql])
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let (base, _) = admin_url
        .rsplit_once('/')
        .context("LIVECOV_TEST_POSTGRES: want postgres://user:password@host:port/database")?;
    Ok(format!("{base}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let s = "a \"b\" \\ c\u{1}";
        let json = format!("{{\n\t\"Dir\": {}\n}}", json_string(s));
        assert_eq!(json_string_field(&json, "Dir").as_deref(), Some(s));
        assert_eq!(json_string_field(&json, "Nope"), None);
    }
}
