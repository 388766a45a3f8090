//! Telling the compiler which variables are livecov's counters, so that it treats them as it
//! treats Go's own.
//!
//! The Go compiler knows its coverage counters: compiled with `-coveragecfg=FILE`, a package's
//! variables whose names start with the file's `CounterPrefix` are counters
//! (`cmd/compile/internal/coverage`), and the inliner charges nothing for an assignment to an
//! element of one or a `sync/atomic` add or store to it (`cmd/compile/internal/inline`). Without
//! that, every counter statement counts against a function's inlining budget, and instrumented
//! code inlines less than the plain build: measurably slower on hot code.
//!
//! livecov gives each instrumented package `-coveragecfg` through a per-package `-gcflags`.
//! The file says counter mode `testmain`, in which the compiler registers nothing with Go's
//! coverage runtime: it only marks the counters. Two things the compiler expects come with it:
//! a package initializer (the registration file's variable, not an `init` function, makes one)
//! and, in package `main`, a call it adds to `runtime/coverage.initHook`, which the agent
//! defines as a no-op (`zz_covhook.go`) unless the build links Go's own `runtime/coverage`;
//! then `main` packages go without.
//!
//! `go` applies, for each package, the flags of the last `-gcflags` whose pattern matches it,
//! so livecov's must come after the user's and include them: [`UserFlags::for_package`] finds
//! the user's flags for a package as `go` would (`cmd/go/internal/load`, `PerPackageFlag`,
//! `MatchPackage`).

use std::path::Path;

use crate::golist::Package;

/// The `-coveragecfg` file: constant, so its path (part of every compile's cache key) never
/// changes and `go`'s build cache keeps working.
pub const CONFIG: &str = r#"{"MetaVar":"_livecov_meta","MetaLen":0,"MetaHash":"00000000000000000000000000000000","Strategy":"normal","CounterPrefix":"_livecov_c_","PkgIdVar":"_livecov_pkgid","CounterMode":"testmain","CounterGranularity":"perblock"}
"#;

/// The name under which [`CONFIG`] is kept in the cache directory.
pub const CONFIG_NAME: &str = "coveragecfg-1.json";

/// Which packages a user's `-gcflags` applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// No pattern: the packages named on the command line.
    CommandLine,
    All,
    Std,
    Cmd,
    /// A directory pattern (`./…`, `../…`, `/…`): the directory part, made absolute, and what
    /// follows it (empty: that directory only).
    Dir(std::path::PathBuf, String),
    /// An import path pattern, `...` matching anything.
    ImportPath(String),
}

/// The `-gcflags` a user gave, from `GOFLAGS` and the command line, in the order `go` reads
/// them.
#[derive(Debug, Default)]
pub struct UserFlags {
    values: Vec<(Pattern, Vec<String>)>,
}

impl UserFlags {
    /// Reads every `-gcflags` of `goflags` (the `GOFLAGS` value) and `args` (the `go build` or
    /// `go test` arguments, up to `-args`), patterns relative to `cwd`. `None` if one
    /// cannot be read the way `go` reads it; `go` itself then reports the problem.
    pub fn parse(goflags: &str, args: &[String], cwd: &Path) -> Option<UserFlags> {
        let mut out = UserFlags::default();
        let from_env = split(goflags)?;
        for list in [&from_env[..], args] {
            let mut i = 0;
            while i < list.len() {
                let arg = &list[i];
                i += 1;
                if arg == "--" || arg == "-args" || arg == "--args" {
                    break;
                }
                let Some(rest) = arg
                    .strip_prefix("--gcflags")
                    .or_else(|| arg.strip_prefix("-gcflags"))
                else {
                    continue;
                };
                let value = match rest.strip_prefix('=') {
                    Some(v) => v.to_string(),
                    None if rest.is_empty() => {
                        i += 1;
                        list.get(i - 1)?.clone()
                    }
                    None => continue,
                };
                out.values.push(parse_value(&value, cwd)?);
            }
        }
        Some(out)
    }

    /// The flags `go` gives the compiler for `pkg` from the user's `-gcflags`.
    pub fn for_package(&self, pkg: &Package) -> &[String] {
        self.values
            .iter()
            .rev()
            .find(|(pattern, _)| matches(pattern, pkg))
            .map_or(&[], |(_, flags)| flags)
    }
}

/// The `-gcflags` argument that gives `pkg` the user's flags and the counters' configuration
/// at `config`. `None` if the flags cannot be written in one argument.
pub fn for_package(user: &UserFlags, pkg: &Package, config: &Path) -> Option<String> {
    let mut flags: Vec<String> = user.for_package(pkg).to_vec();
    flags.push(format!("-coveragecfg={}", config.to_str()?));
    Some(format!("-gcflags={}={}", pkg.import_path, join(&flags)?))
}

fn parse_value(v: &str, cwd: &Path) -> Option<(Pattern, Vec<String>)> {
    let v = v.trim();
    if v.is_empty() {
        return Some((Pattern::CommandLine, Vec::new()));
    }
    if v.starts_with('-') {
        return Some((Pattern::CommandLine, split(v)?));
    }
    let (pattern, flags) = v.split_once('=')?;
    let pattern = pattern.trim();
    if pattern.is_empty() || pattern.starts_with(['\'', '"']) {
        return None;
    }
    let pattern = match pattern {
        "all" => Pattern::All,
        "std" => Pattern::Std,
        "cmd" => Pattern::Cmd,
        // `tool` and `work` name sets only `go` knows: livecov cannot tell whether they match.
        "tool" | "work" => return None,
        p if is_relative(p) => match p.find("...") {
            None => Pattern::Dir(cwd.join(p), String::new()),
            Some(i) => {
                let j = p[..i].rfind('/')?;
                Pattern::Dir(cwd.join(&p[..j]), p[j + 1..].to_string())
            }
        },
        p => Pattern::ImportPath(p.to_string()),
    };
    Some((pattern, split(flags)?))
}

/// `search.IsRelativePath`: `.`, `..`, or starting with `./` or `../`.
fn is_relative(p: &str) -> bool {
    p == "." || p == ".." || p.starts_with("./") || p.starts_with("../")
}

fn matches(pattern: &Pattern, pkg: &Package) -> bool {
    match pattern {
        Pattern::CommandLine => !pkg.dep_only,
        Pattern::All => true,
        Pattern::Std => pkg.standard,
        Pattern::Cmd => pkg.standard && pkg.import_path.starts_with("cmd/"),
        Pattern::Dir(dir, rest) => {
            let dir = normalize(dir);
            let pkg_dir = normalize(&pkg.dir);
            if rest.is_empty() {
                return pkg_dir == dir;
            }
            match pkg_dir.strip_prefix(&dir) {
                Ok(rel) => {
                    let rel = rel.to_string_lossy().replace('\\', "/");
                    let rel = if rel.is_empty() { "." } else { &rel };
                    glob(rest, rel)
                }
                Err(_) => false,
            }
        }
        Pattern::ImportPath(p) => glob(p, &pkg.import_path),
    }
}

/// A path with `.` and `..` taken out, as `filepath.Join` cleans it.
fn normalize(p: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// `pkgpattern.MatchPattern`: `...` matches any string, and a trailing `/...` matches the
/// empty string too (`net/...` matches `net`).
fn glob(pattern: &str, name: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix("/...")
        && glob(prefix, name)
    {
        return true;
    }
    let parts: Vec<&str> = pattern.split("...").collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if name.len() < first.len() + last.len() || !name.starts_with(first) || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// `quoted.Split`: fields separated by spaces, each optionally in `'…'` or `"…"`.
fn split(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut s = s.trim_start_matches([' ', '\t', '\n', '\r']);
    while !s.is_empty() {
        if let Some(q) = s.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let end = s[1..].find(q)?;
            out.push(s[1..1 + end].to_string());
            s = &s[end + 2..];
        } else {
            let end = s.find([' ', '\t', '\n', '\r']).unwrap_or(s.len());
            out.push(s[..end].to_string());
            s = &s[end..];
        }
        s = s.trim_start_matches([' ', '\t', '\n', '\r']);
    }
    Some(out)
}

/// `quoted.Join`: the inverse of [`split`]; `None` for a flag holding a space and both quotes.
fn join(flags: &[String]) -> Option<String> {
    let mut out = Vec::with_capacity(flags.len());
    for f in flags {
        let space = f.contains([' ', '\t', '\n', '\r']);
        let single = f.contains('\'');
        let double = f.contains('"');
        out.push(
            match (space || single || double || f.is_empty(), single, double) {
                (false, _, _) => f.clone(),
                (true, false, _) => format!("'{f}'"),
                (true, true, false) => format!("\"{f}\""),
                (true, true, true) => return None,
            },
        );
    }
    Some(out.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(import_path: &str, dir: &str, dep_only: bool) -> Package {
        serde_json::from_value(serde_json::json!({
            "Dir": dir, "ImportPath": import_path, "Name": "p", "DepOnly": dep_only,
        }))
        .unwrap()
    }

    fn flags(goflags: &str, args: &[&str]) -> UserFlags {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        UserFlags::parse(goflags, &args, Path::new("/m")).unwrap()
    }

    #[test]
    fn patterns_match_as_go_matches_them() {
        assert!(glob("example.com/m/...", "example.com/m"));
        assert!(glob("example.com/m/...", "example.com/m/a/b"));
        assert!(!glob("example.com/m/...", "example.com/mx"));
        assert!(glob("example.com/.../b", "example.com/a/b"));
        assert!(!glob("example.com/.../b", "example.com/a/c"));
        assert!(glob("example.com/m", "example.com/m"));
        assert!(glob("...", "anything"));
    }

    #[test]
    fn the_last_matching_gcflags_wins() {
        let main = pkg("example.com/m", "/m", false);
        let dep = pkg("example.com/m/internal/x", "/m/internal/x", true);
        let other = pkg("github.com/o/p", "/gomod/github.com/o/p", true);
        let f = flags(
            "-gcflags=all=-d=ssa/check/on",
            &["-gcflags", "-N -l", "-gcflags=./internal/...=-m", "./..."],
        );
        assert_eq!(f.for_package(&main), ["-N", "-l"]);
        assert_eq!(f.for_package(&dep), ["-m"]);
        assert_eq!(f.for_package(&other), ["-d=ssa/check/on"]);
        let f = flags("", &["-gcflags=github.com/o/...='-m=2' -l"]);
        assert_eq!(f.for_package(&other), ["-m=2", "-l"]);
        assert!(f.for_package(&main).is_empty());
        // An empty value resets the command line's packages.
        let f = flags("", &["-gcflags=-N", "-gcflags="]);
        assert!(f.for_package(&main).is_empty());
        // Nothing after the patterns or `-args` is go's.
        let f = flags("", &["-args", "-gcflags=-N"]);
        assert!(f.for_package(&main).is_empty());
    }

    #[test]
    fn livecovs_flag_carries_the_users() {
        let main = pkg("example.com/m", "/m", false);
        let f = flags("", &["-gcflags=all='-trimpath=/a b' -N"]);
        assert_eq!(
            for_package(&f, &main, Path::new("/c/cfg.json")).unwrap(),
            "-gcflags=example.com/m='-trimpath=/a b' -N -coveragecfg=/c/cfg.json"
        );
        assert_eq!(
            split(&join(&["a b".into(), "it's".into(), "x".into()]).unwrap()).unwrap(),
            ["a b", "it's", "x"]
        );
        assert!(join(&["a '\"".into()]).is_none());
    }

    #[test]
    fn unreadable_flags_are_not_guessed() {
        let args = vec!["-gcflags=work=-N".to_string()];
        assert!(UserFlags::parse("", &args, Path::new("/m")).is_none());
        let args = vec!["-gcflags='-N".to_string()];
        assert!(UserFlags::parse("", &args, Path::new("/m")).is_none());
    }
}
