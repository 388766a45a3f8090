/*!
Driving the `go` command with instrumented sources: what `livecov build` does.

The user's tree is never written. livecov asks `go list` which packages the build compiles,
instruments the files of the main module's packages (cached on disk by content), adds the Go
agent as a package of the main module and a small registration file to every instrumented
package, and hands all of it to `go build` through `-overlay`: a JSON map from the paths `go`
would read to the files it should read instead (or add), with a `-gcflags` per instrumented
package that tells the compiler which variables are counters (`gcflags.rs`). `go list`'s
answer is kept between builds while the files it read are unchanged.

# Brief overview

* [`prepare`] does everything up to the overlay and returns a [`Prepared`] build: the overlay
  path and the build's [`BuildMeta`].
* [`Prepared::command`] is the `go` command to run with it: the overlay, and livecov's
  `-gcflags` after the user's flags.

# Example

```no_run
use gobuild::{Options, prepare};
let opts = Options::new(instrumenter::Mode::Set, std::env::temp_dir().join("livecov-cache"));
let args = vec!["-o".to_string(), "app".to_string(), "./cmd/app".to_string()];
let prepared = prepare(&opts, std::path::Path::new("."), &args).unwrap();
let status = prepared.command("build", &args).status().unwrap();
```
*/

mod args;
mod cache;
mod exclude;
mod gcflags;
mod golist;
mod module;
mod testmain;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use instrumenter::{BuildMeta, FileMeta, Mode, Rules};

include!(concat!(env!("OUT_DIR"), "/agent_files.rs"));

pub use module::AGENT_MODULE;

/// Why a build could not be prepared.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The go command failed or said something livecov did not expect.
    Go(String),
    /// A source file is not valid Go.
    Syntax {
        /// The file as `go build` would name it: relative to the directory it runs in when
        /// that is shorter (`./main.go`).
        path: PathBuf,
        error: instrumenter::Error,
    },
    /// Reading or writing a file failed.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The arguments cannot work with livecov.
    Usage(String),
}

impl Error {
    pub(crate) fn io(path: &Path, error: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Go(msg) | Error::Usage(msg) => f.write_str(msg),
            Error::Syntax { path, error } => write!(f, "{}:{error}", path.display()),
            Error::Io { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

/// The position of a syntax error is part of its message (`path:line:col: …`), so a
/// [`Error::Syntax`] shows its cause itself; an [`Error::Io`] names the path and leaves the
/// cause to [`source`](std::error::Error::source), which `{:#}` and logs print after it.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { error, .. } => Some(error),
            Error::Go(_) | Error::Usage(_) | Error::Syntax { .. } => None,
        }
    }
}

/// How to instrument a build.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// Service name baked into the binary (`LIVECOV_SERVICE` overrides it at run time).
    pub service: Option<String>,
    /// Server URL baked into the binary (`LIVECOV_SERVER` overrides it at run time).
    pub server: Option<String>,
    /// Package patterns (as `go list` takes them) of packages outside the main module to
    /// instrument too.
    pub coverpkg: Vec<String>,
    /// Where instrumented files and per-build files are kept.
    pub cache_dir: PathBuf,
    /// Whose block rules to cut by; `None`: those of the Go that builds (`go env GOVERSION`).
    pub rules: Option<Rules>,
    /// Files left uninstrumented (`--exclude`): package patterns and file globs, see
    /// [`report::filter`]. A pattern that matches no file is an error.
    pub exclude: Vec<String>,
    /// Leave uninstrumented the files Go considers generated (`--skip-generated`).
    pub skip_generated: bool,
}

impl Options {
    pub fn new(mode: Mode, cache_dir: PathBuf) -> Options {
        Options {
            mode,
            service: None,
            server: None,
            coverpkg: Vec::new(),
            cache_dir,
            rules: None,
            exclude: Vec::new(),
            skip_generated: false,
        }
    }
}

/// A build ready to run: the overlay and what it counts.
#[derive(Debug)]
pub struct Prepared {
    pub overlay: PathBuf,
    pub meta: BuildMeta,
    pub build_id: String,
    pub packages: usize,
    /// Files taken from the cache rather than instrumented anew.
    pub reused: usize,
    /// Where each file of the metadata was read from, in metadata order.
    pub sources: Vec<PathBuf>,
    /// The block rules the files were cut by.
    pub rules: Rules,
    /// The Go release that builds, as `go env GOVERSION` says.
    pub go_version: String,
    /// The `-gcflags` that tell the compiler which variables are counters (`gcflags.rs`), one
    /// per instrumented package, to go after the user's flags.
    pub gcflags: Vec<String>,
    /// What `--exclude` and `--skip-generated` left uninstrumented, when given.
    pub excluded: Option<report::types::BuildExcluded>,
    dir: PathBuf,
    setup: module::Setup,
}

impl Prepared {
    /// `go SUBCOMMAND -overlay=… ARGS`, to run in the directory the build was prepared in.
    /// `args` are the ones the build was prepared with; livecov's `-gcflags` go after their
    /// flags, so that they win where `go` picks one `-gcflags` per package.
    pub fn command(&self, subcommand: &str, args: &[String]) -> Command {
        let at = args::parse(args).flags_end;
        let mut cmd = Command::new("go");
        cmd.arg(subcommand)
            .arg(format!("-overlay={}", self.overlay.display()))
            .args(&self.setup.args)
            .args(&args[..at])
            .args(&self.gcflags)
            .args(&args[at..])
            .envs(self.setup.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir);
        cmd
    }
}

/// Instruments the main module's packages that `go build ARGS` (run in `dir`) compiles and
/// writes the overlay that makes `go` use them.
pub fn prepare(opts: &Options, dir: &Path, go_args: &[String]) -> Result<Prepared, Error> {
    let (parsed, env, rules) = parse_args(opts, dir, go_args)?;
    let cache = &opts.cache_dir;
    let packages = golist::list_cached(
        cache,
        &env,
        dir,
        &["-deps"],
        &parsed.list_flags,
        &parsed.patterns,
    )?;
    let extra = coverpkg(opts, &env, dir, &parsed.list_flags)?;
    let mut plan = Plan::new(opts, dir, &packages, &parsed.patterns, &extra)?;
    plan.env = env;
    plan.rules = rules;
    plan.compiler(&parsed, go_args, &packages);
    if parsed.vendor {
        plan.vendor_agent()?;
    }
    plan.write(&[])
}

/// The import paths `--coverpkg` names. The standard library cannot be instrumented: the agent
/// itself is built from it.
fn coverpkg(
    opts: &Options,
    env: &module::GoEnv,
    dir: &Path,
    flags: &[String],
) -> Result<std::collections::HashSet<String>, Error> {
    if opts.coverpkg.is_empty() {
        return Ok(Default::default());
    }
    let listed = golist::list_cached(&opts.cache_dir, env, dir, &[], flags, &opts.coverpkg)?;
    if let Some(std) = listed.iter().find(|p| p.standard) {
        return Err(Error::Usage(format!(
            "--coverpkg matches {}, a standard library package: livecov instruments module code only",
            std.import_path
        )));
    }
    Ok(listed.into_iter().map(|p| p.import_path).collect())
}

/// A `go test` run prepared by [`prepare_test`].
#[derive(Debug)]
pub struct PreparedTest {
    pub build: Prepared,
    /// Indices (into `build.meta.files`) of the files of the packages under test: the ones a
    /// coverprofile of this run lists, as `go test -coverprofile` would.
    pub reported: Vec<usize>,
}

/// Like [`prepare`] for `go test ARGS`: also makes every test binary write the counters of
/// its package when its tests are done (see `testmain.rs`), into the directory named by
/// `LIVECOV_TEST_DIR` when it runs.
pub fn prepare_test(opts: &Options, dir: &Path, go_args: &[String]) -> Result<PreparedTest, Error> {
    let (parsed, env, rules) = parse_args(opts, dir, go_args)?;
    if parsed.vendor {
        // go test vets every dependency inside its directory, and a vendored agent exists
        // only in the overlay.
        return Err(Error::Usage(
            "livecov test does not support vendored modules yet: run it with -- -mod=mod".into(),
        ));
    }
    let cache = &opts.cache_dir;
    let packages = golist::list_cached(
        cache,
        &env,
        dir,
        &["-deps", "-test"],
        &parsed.list_flags,
        &parsed.patterns,
    )?;
    let tested = golist::list_cached(cache, &env, dir, &[], &parsed.list_flags, &parsed.patterns)?;
    let extra = coverpkg(opts, &env, dir, &parsed.list_flags)?;
    let mut plan = Plan::new(opts, dir, &packages, &parsed.patterns, &extra)?;
    plan.env = env;
    plan.rules = rules;
    plan.compiler(&parsed, go_args, &packages);
    plan.tests = true;

    let mut extra = Vec::new();
    for pkg in tested.iter().filter(|p| p.in_main_module()) {
        // `go test` compiles a package's external test package with the package's compiler
        // flags, and the compiler wants an initializer in a package given `-coveragecfg`.
        if !pkg.x_test_go_files.is_empty() && plan.marks_counters() {
            extra.push((
                pkg.dir.join("livecov_xinit_test.go"),
                format!(
                    "package {}_test\n\nimport _livecov_os \"os\"\n\n// An initializer, which the compiler wants in a package compiled with -coveragecfg.\nvar _livecov_xinit = len(_livecov_os.Args)\n",
                    pkg.name
                )
                .into_bytes(),
            ));
        }
        let mut hooked = false;
        for file in pkg.test_go_files.iter().chain(&pkg.x_test_go_files) {
            let path = pkg.dir.join(file);
            let src = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            if let Some(found) = testmain::find(&src) {
                let text = testmain::wrap(
                    &src,
                    &found,
                    &plan.agent_import,
                    &pkg.import_path,
                    path.to_str(),
                );
                extra.push((path, text));
                hooked = true;
                break;
            }
        }
        let has_tests = !pkg.test_go_files.is_empty() || !pkg.x_test_go_files.is_empty();
        if has_tests && !hooked {
            let text = testmain::generated(&pkg.name, &plan.agent_import, &pkg.import_path);
            extra.push((pkg.dir.join("livecov_testmain_test.go"), text.into_bytes()));
        }
    }
    let tested_paths: std::collections::HashSet<&str> = tested
        .iter()
        .filter(|p| p.in_main_module())
        .map(|p| p.import_path.as_str())
        .collect();
    let reported = plan
        .jobs
        .iter()
        .enumerate()
        .filter(|(_, job)| tested_paths.contains(plan.packages[job.0].import_path.as_str()))
        .map(|(i, _)| i)
        .collect();
    Ok(PreparedTest {
        build: plan.write(&extra)?,
        reported,
    })
}

/// Runs `go test ARGS` in `dir` with livecov's counters and writes the Go coverprofile of the
/// packages under test to `coverprofile`, as `go test -coverprofile` does. Returns how `go
/// test` exited; the profile is written whatever it was.
pub fn test(
    opts: &Options,
    dir: &Path,
    go_args: &[String],
    coverprofile: &Path,
) -> Result<std::process::ExitStatus, Error> {
    let prepared = prepare_test(opts, dir, go_args)?;
    let fragments = std::env::temp_dir().join(format!(
        "livecov-test-{}-{}",
        std::process::id(),
        &prepared.build.build_id[..12]
    ));
    std::fs::create_dir_all(&fragments).map_err(|e| Error::io(&fragments, e))?;
    let status = prepared
        .build
        .command("test", go_args)
        .env("LIVECOV_TEST_DIR", &fragments)
        .status()
        .map_err(|e| Error::Go(format!("cannot run go test: {e}")));
    let counts = read_fragments(&fragments, opts.mode);
    let _ = std::fs::remove_dir_all(&fragments);
    let (status, counts) = (status?, counts?);
    let files: Vec<FileMeta> = prepared
        .reported
        .iter()
        .map(|&i| prepared.build.meta.files[i].clone())
        .collect();
    let mut out = instrumenter::profile::header(opts.mode);
    instrumenter::profile::write_textual(&mut out, &files, |f, i| {
        counts
            .get(&instrumenter::profile::block(&files[f], i))
            .copied()
            .unwrap_or(0)
    });
    std::fs::write(coverprofile, out).map_err(|e| Error::io(coverprofile, e))?;
    Ok(status)
}

/// Merges the profile fragments test binaries wrote: set mode ORs, the others add.
fn read_fragments(dir: &Path, mode: Mode) -> Result<std::collections::HashMap<String, u64>, Error> {
    let mut counts = std::collections::HashMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with("mode:"))
        {
            let (block, count) = line
                .rsplit_once(' ')
                .and_then(|(b, c)| Some((b, c.parse::<u64>().ok()?)))
                .ok_or_else(|| {
                    Error::Go(format!("{}: bad profile line {line:?}", path.display()))
                })?;
            let slot: &mut u64 = counts.entry(block.to_string()).or_insert(0);
            *slot = match mode {
                Mode::Set => (*slot).max(count.min(1)),
                Mode::Count | Mode::Atomic => slot.saturating_add(count),
            };
        }
    }
    Ok(counts)
}

fn parse_args(
    opts: &Options,
    dir: &Path,
    go_args: &[String],
) -> Result<(args::GoArgs, module::GoEnv, Rules), Error> {
    let mut parsed = args::parse(go_args);
    if let Some(flag) = &parsed.conflicting {
        return Err(Error::Usage(format!(
            "{flag} cannot be combined with livecov: livecov instruments the build itself through -overlay"
        )));
    }
    if let Some(flag) = parsed.list_flags.iter().find(|f| f.starts_with("-modfile")) {
        return Err(Error::Usage(format!(
            "{flag} is not supported: livecov passes its own -modfile (a copy of go.mod that adds the agent)"
        )));
    }
    parsed.vendor = vendor_mode(dir, &parsed.list_flags);
    let env = module::GoEnv::read(dir)?;
    let rules = rules_for(&env.goversion, opts.rules)?;
    Ok((parsed, env, rules))
}

/// Whether `go` will read dependencies from `vendor/`: `-mod=vendor` given (on the command line
/// or in GOFLAGS), or no `-mod` at all and a vendor/modules.txt next to a go.mod that says
/// go 1.14 or later.
fn vendor_mode(dir: &Path, flags: &[String]) -> bool {
    let goflags = std::env::var("GOFLAGS").unwrap_or_default();
    // The command line overrides GOFLAGS: look at it last.
    let given = goflags
        .split_whitespace()
        .chain(flags.iter().map(String::as_str))
        .filter_map(|f| f.strip_prefix("-mod="))
        .next_back();
    if let Some(mode) = given {
        return mode == "vendor";
    }
    let Some(root) = dir.ancestors().find(|d| d.join("go.mod").is_file()) else {
        return false;
    };
    let go_minor = std::fs::read_to_string(root.join("go.mod"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.trim().strip_prefix("go 1.").map(str::to_string))
        .and_then(|v| {
            v.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u32>()
                .ok()
        })
        .unwrap_or(0);
    go_minor >= 14 && root.join("vendor").join("modules.txt").is_file()
}

/// The packages to instrument and where the agent goes.
struct Plan<'a> {
    opts: &'a Options,
    dir: PathBuf,
    packages: Vec<&'a golist::Package>,
    /// Every file: (index into `packages`, path, profile name), in metadata order.
    jobs: Vec<(usize, PathBuf, String)>,
    agent_import: String,
    /// In vendor mode, where the agent package goes instead of a module of its own: a
    /// directory of the main module that exists only in the overlay (`go` reads
    /// vendor/modules.txt from disk, so no new module can be vendored through the overlay).
    vendor_agent_dir: Option<PathBuf>,
    /// `go env` as read once by [`parse_args`].
    env: module::GoEnv,
    /// The block rules of that Go (or the ones asked for).
    rules: Rules,
    /// Whether the build runs under the race detector.
    race: bool,
    /// The user's `-gcflags`, if livecov can read them as `go` does; without them, the
    /// compiler is not told which variables are counters (correct, only slower).
    user_gcflags: Option<gcflags::UserFlags>,
    /// Whether the build links Go's own `runtime/coverage`, which defines the hook the
    /// compiler calls from a `main` package given `-coveragecfg`.
    links_go_coverage: bool,
    /// A `go test` build.
    tests: bool,
    /// What `--exclude` and `--skip-generated` left out of `jobs`.
    excluded: Option<report::types::BuildExcluded>,
    /// Whether a package of the build imports `os/signal`: see [`host_signals`].
    host_signals: bool,
}

impl<'a> Plan<'a> {
    fn new(
        opts: &'a Options,
        dir: &Path,
        all: &'a [golist::Package],
        patterns: &[String],
        coverpkg: &std::collections::HashSet<String>,
    ) -> Result<Plan<'a>, Error> {
        let packages: Vec<&golist::Package> = all
            .iter()
            .filter(|p| {
                (p.in_main_module() || (p.is_itself() && coverpkg.contains(&p.import_path)))
                    && p.files().next().is_some()
            })
            .collect();
        if packages.is_empty() {
            return Err(Error::Usage(format!(
                "no package of the main module among {}: run livecov inside the module",
                patterns.join(" ")
            )));
        }
        let jobs = packages
            .iter()
            .enumerate()
            .flat_map(|(p, pkg)| {
                pkg.files()
                    .map(move |f| (p, pkg.dir.join(f), format!("{}/{f}", pkg.import_path)))
            })
            .collect();
        let (packages, jobs, excluded) =
            exclude::apply(&opts.exclude, opts.skip_generated, packages, jobs)?;
        Ok(Plan {
            opts,
            dir: dir.to_path_buf(),
            agent_import: AGENT_MODULE.to_string(),
            vendor_agent_dir: None,
            env: module::GoEnv::default(),
            rules: Rules::default(),
            race: false,
            user_gcflags: None,
            links_go_coverage: false,
            tests: false,
            host_signals: host_signals(all),
            packages,
            jobs,
            excluded,
        })
    }

    /// Whether instrumented packages are compiled with `-coveragecfg` (see [`Plan::gcflags`]).
    fn marks_counters(&self) -> bool {
        self.user_gcflags.is_some() && !(self.tests && self.links_go_coverage)
    }

    /// Reads what the compiler will be told: `-race` and the user's `-gcflags`, from the
    /// command line and `GOFLAGS`, and whether `all` (every package the build compiles) holds
    /// Go's own `runtime/coverage`.
    fn compiler(&mut self, parsed: &args::GoArgs, go_args: &[String], all: &[golist::Package]) {
        let goflags = std::env::var("GOFLAGS").unwrap_or_default();
        let from_env = args::parse(
            &goflags
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>(),
        );
        self.race = parsed.race || from_env.race;
        self.user_gcflags = gcflags::UserFlags::parse(&goflags, go_args, &self.dir);
        self.links_go_coverage = all.iter().any(|p| p.import_path == "runtime/coverage");
    }

    /// The `-gcflags` of every instrumented package, and whether the compiler will call the
    /// hook from a `main` package (then the agent defines it): when one is instrumented, and
    /// in tests, where `go test` gives the package's flags to the generated test main too.
    fn gcflags(&self, config: &Path) -> (Vec<String>, bool) {
        let Some(user) = self.user_gcflags.as_ref().filter(|_| self.marks_counters()) else {
            // In tests that link Go's own coverage runtime, the test main would call its hook,
            // which prints at exit.
            return (Vec::new(), false);
        };
        if self.tests {
            let flags = self
                .packages
                .iter()
                .filter_map(|pkg| gcflags::for_package(user, pkg, config))
                .collect();
            return (flags, true);
        }
        let mut main = false;
        let mut out = Vec::new();
        for pkg in &self.packages {
            if pkg.name == "main" {
                if self.links_go_coverage {
                    continue;
                }
                main = true;
            }
            out.extend(gcflags::for_package(user, pkg, config));
        }
        (out, main)
    }

    /// Puts the agent inside the main module, as `<module>/_livecov_agent` (the underscore keeps
    /// it out of `./...`), for vendor mode.
    fn vendor_agent(&mut self) -> Result<(), Error> {
        let host = self
            .packages
            .iter()
            .filter_map(|p| p.module.as_ref())
            .find(|m| m.main)
            .ok_or_else(|| Error::Go("no main module among the packages".into()))?;
        let dir = host
            .dir
            .as_ref()
            .ok_or_else(|| Error::Go(format!("go list gave no directory for {}", host.path)))?;
        self.agent_import = format!("{}/_livecov_agent", host.path);
        self.vendor_agent_dir = Some(dir.join("_livecov_agent"));
        Ok(())
    }

    /// Copies the dependency modules (`--coverpkg`) whose packages are instrumented into
    /// `build_dir/deps`, since `go` refuses overlays in the module cache. Returns them, and the
    /// function that maps a path in the module cache to its place in the copy.
    #[allow(clippy::type_complexity)]
    fn copy_dependencies(
        &self,
        build_dir: &Path,
    ) -> Result<(Vec<module::Copied>, Box<dyn Fn(&Path) -> PathBuf>), Error> {
        let mut copied: Vec<(PathBuf, module::Copied)> = Vec::new();
        for pkg in &self.packages {
            // A module replaced by a local directory needs no copy: overlays work there.
            let Some((m, src)) = self.in_module_cache(pkg) else {
                continue;
            };
            if copied.iter().any(|(from, _)| from == src) {
                continue;
            }
            let dest = build_dir.join("deps").join(copied.len().to_string());
            if !dest.join("go.mod").is_file() && !dest.exists() {
                copy_tree(src, &dest)?;
            }
            copied.push((
                src.clone(),
                module::Copied {
                    path: m.path.clone(),
                    version: m.version.clone(),
                    dir: dest,
                },
            ));
        }
        let map: Vec<(PathBuf, PathBuf)> = copied
            .iter()
            .map(|(from, c)| (from.clone(), c.dir.clone()))
            .collect();
        let relocate = move |path: &Path| {
            for (from, to) in &map {
                if let Ok(rest) = path.strip_prefix(from) {
                    return to.join(rest);
                }
            }
            path.to_path_buf()
        };
        Ok((
            copied.into_iter().map(|(_, c)| c).collect(),
            Box::new(relocate),
        ))
    }

    /// The module of `pkg` and its directory, if that is in the module cache (where `go`
    /// refuses overlays, so [`Plan::copy_dependencies`] copies it).
    fn in_module_cache<'p>(
        &self,
        pkg: &'p golist::Package,
    ) -> Option<(&'p golist::Module, &'p PathBuf)> {
        let m = pkg.module.as_ref().filter(|m| !m.main)?;
        let dir = m
            .dir
            .as_ref()
            .filter(|d| d.starts_with(&self.env.gomodcache))?;
        Some((m, dir))
    }

    /// Instruments every file and writes the overlay, with `extra` files (path, contents)
    /// replaced or added too.
    fn write(&self, extra: &[(PathBuf, Vec<u8>)]) -> Result<Prepared, Error> {
        let opts = self.opts;
        // The path `go` compiles each file under, for the line directives that keep the
        // user's positions. A copied module's path depends on the build id, known only after
        // instrumenting: its files go without (the compiler's -trimpath rules still map the
        // copy's paths in the binary).
        let paths: Vec<Option<&str>> = self
            .jobs
            .iter()
            .map(
                |(p, path, _)| match self.in_module_cache(self.packages[*p]) {
                    Some(_) => None,
                    None => path.to_str(),
                },
            )
            .collect();
        let entries = instrument_all(
            &opts.cache_dir,
            &self.jobs,
            &paths,
            cache::Counting {
                mode: opts.mode,
                race: self.race,
                rules: self.rules,
                agent_import: &self.agent_import,
            },
        )
        .map_err(|e| match e {
            Error::Syntax { path, error } => Error::Syntax {
                path: short_path(&self.dir, &path),
                error,
            },
            e => e,
        })?;
        let reused = entries.iter().filter(|e| e.reused).count();
        let meta = BuildMeta {
            mode: opts.mode,
            files: entries.iter().map(|e| e.meta.clone()).collect(),
        };
        let build_id = meta.build_id();
        let build_dir = opts.cache_dir.join("builds").join(&build_id);
        std::fs::create_dir_all(&build_dir).map_err(|e| Error::io(&build_dir, e))?;

        let (copied, relocate) = self.copy_dependencies(&build_dir)?;
        let mut replace: Vec<(PathBuf, PathBuf)> = Vec::new();
        for ((_, path, _), entry) in self.jobs.iter().zip(&entries) {
            replace.push((relocate(path), entry.source.clone()));
        }
        let mut add = |name: String, to: &Path, text: &[u8]| -> Result<(), Error> {
            let file = build_dir.join(name);
            cache::write_atomic(&file, text)?;
            replace.push((to.to_path_buf(), file));
            Ok(())
        };
        // One registration file per package: hands the agent each file's counter array. It
        // is a variable's initializer, not an `init` function, because the compiler wants
        // the package to have initialization code when told about counters (`gcflags.rs`).
        for (p, pkg) in self.packages.iter().enumerate() {
            let mut text = format!(
                "package {}\n\nimport _livecov_agent {:?}\n\nvar _livecov_registered = _livecov_register()\n\nfunc _livecov_register() bool {{\n",
                pkg.name, self.agent_import
            );
            for (i, ((pi, _, _), entry)) in self.jobs.iter().zip(&entries).enumerate() {
                if *pi == p {
                    text.push_str(&format!(
                        "\t_livecov_agent.RegisterFile({i}, {}[:])\n",
                        entry.counter_var
                    ));
                }
            }
            text.push_str("\treturn true\n}\n");
            add(
                format!("register_{p}.go"),
                &relocate(&pkg.dir.join("livecov_register.go")),
                text.as_bytes(),
            )?;
        }
        // The agent: a real module directory, with the file that tells it what this build is.
        let agent_dir = build_dir.join("agent");
        std::fs::create_dir_all(&agent_dir).map_err(|e| Error::io(&agent_dir, e))?;
        let mut agent_files: Vec<(&str, String)> = AGENT_FILES
            .iter()
            .map(|(name, text)| (*name, text.to_string()))
            .collect();
        agent_files.push(("go.mod", format!("module {AGENT_MODULE}\n\ngo 1.13\n")));
        agent_files.push((
            "zz_build.go",
            build_info_go(
                opts,
                &meta,
                &build_id,
                self.host_signals,
                self.excluded.as_ref(),
            ),
        ));
        let config = opts.cache_dir.join(gcflags::CONFIG_NAME);
        let (gcflags, main) = self.gcflags(&config);
        if !gcflags.is_empty()
            && std::fs::read(&config).ok().as_deref() != Some(gcflags::CONFIG.as_bytes())
        {
            cache::write_atomic(&config, gcflags::CONFIG.as_bytes())?;
        }
        if main {
            agent_files.push(("zz_covhook.go", COVERAGE_HOOK.to_string()));
        }
        for (name, text) in &agent_files {
            cache::write_atomic(&agent_dir.join(name), text.as_bytes())?;
        }
        for (i, (path, text)) in extra.iter().enumerate() {
            let base = path.file_name().unwrap_or_default().to_string_lossy();
            add(format!("extra_{i}_{base}"), path, text)?;
        }
        let setup = match &self.vendor_agent_dir {
            Some(in_module) => {
                for (name, _) in agent_files.iter().filter(|(n, _)| n.ends_with(".go")) {
                    replace.push((in_module.join(name), agent_dir.join(name)));
                }
                module::Setup::default()
            }
            None => module::setup(&self.dir, &self.env, &build_dir, &agent_dir, &copied)?,
        };

        let overlay = build_dir.join("overlay.json");
        let map: serde_json::Map<String, serde_json::Value> = replace
            .into_iter()
            .map(|(from, to)| {
                (
                    from.to_string_lossy().into_owned(),
                    serde_json::Value::String(to.to_string_lossy().into_owned()),
                )
            })
            .collect();
        let json = serde_json::json!({ "Replace": map });
        cache::write_atomic(&overlay, json.to_string().as_bytes())?;
        Ok(Prepared {
            overlay,
            meta,
            build_id,
            packages: self.packages.len(),
            reused,
            sources: self.jobs.iter().map(|(_, path, _)| path.clone()).collect(),
            rules: self.rules,
            go_version: self.env.goversion.clone(),
            gcflags,
            excluded: self.excluded.clone(),
            dir: self.dir.clone(),
            setup,
        })
    }
}

/// Instruments `jobs` (package index, path, profile name) on all cores, in order, each with
/// its path for line directives.
fn instrument_all(
    cache: &Path,
    jobs: &[(usize, PathBuf, String)],
    paths: &[Option<&str>],
    how: cache::Counting,
) -> Result<Vec<cache::Entry>, Error> {
    let results: Vec<Mutex<Option<Result<cache::Entry, Error>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((_, path, name)) = jobs.get(i) else {
                        break;
                    };
                    let r = cache::instrument(cache, path, name, how, paths[i]);
                    *results[i].lock().unwrap() = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| m.into_inner().unwrap().expect("every job ran"))
        .collect()
}

/// The agent's definition of the function the compiler calls from the initializer of a `main`
/// package compiled with `-coveragecfg` (Go's coverage runtime's, which livecov's builds do not
/// link): it does nothing, so the program does not print Go's "not built with -cover".
const COVERAGE_HOOK: &str = "package agent\n\nimport _ \"unsafe\" // for go:linkname\n\n// coverageInitHook is what a main package compiled with -coveragecfg calls first.\n//\n//go:linkname coverageInitHook runtime/coverage.initHook\nfunc coverageInitHook(istest bool) {}\n";

/// Whether a package of the build (`all`, as `go list -deps` lists it), the agent aside,
/// imports `os/signal`: only then can the program handle SIGTERM and SIGINT itself, and the
/// agent then leaves every signal alone. In the standard library only
/// `testing/internal/testdeps` imports it (for fuzzing), so every `go test` build counts as
/// one that handles signals, which costs nothing: test binaries never take signals for the
/// agent.
fn host_signals(all: &[golist::Package]) -> bool {
    all.iter()
        .filter(|p| p.import_path != AGENT_MODULE && !p.import_path.ends_with("/_livecov_agent"))
        .any(|p| p.imports.iter().any(|i| i == "os/signal"))
}

/// The generated `zz_build.go` of the agent package: this build's identity and metadata.
fn build_info_go(
    opts: &Options,
    meta: &BuildMeta,
    build_id: &str,
    host_signals: bool,
    excluded: Option<&report::types::BuildExcluded>,
) -> String {
    // A raw string literal cannot hold a backquote; JSON can spell it inside strings.
    let json = meta_json_excluding(meta, build_id, excluded).replace('`', "\\u0060");
    format!(
        "package agent\n\nvar build = buildInfo{{\n\tID:          {build_id:?},\n\tMode:        {:?},\n\tService:     {:?},\n\tServer:      {:?},\n\tMeta:        `{json}`,\n\tFiles:       {},\n\tHostSignals: {host_signals},\n}}\n",
        meta.mode.as_str(),
        opts.service.as_deref().unwrap_or(""),
        opts.server.as_deref().unwrap_or(""),
        meta.files.len(),
    )
}

/// The block metadata as the agent serves it: see `docs/COUNTERS.md`.
pub fn meta_json(meta: &BuildMeta, build_id: &str) -> String {
    meta_json_excluding(meta, build_id, None)
}

/// [`meta_json`] with what the build left uninstrumented (`"excluded"`, omitted when
/// `None`; not part of the build id, which hashes the blocks only).
pub fn meta_json_excluding(
    meta: &BuildMeta,
    build_id: &str,
    excluded: Option<&report::types::BuildExcluded>,
) -> String {
    let file = |f: &FileMeta| {
        serde_json::json!({
            "name": f.name,
            "funcs": f.funcs.iter().map(|func| serde_json::json!({
                "name": func.name,
                "hash": instrumenter::hex(&func.hash),
            })).collect::<Vec<_>>(),
            "blocks": f.blocks.iter().map(|b| [
                b.start.line, b.start.col, b.end.line, b.end.col, b.num_stmt, b.func,
            ]).collect::<Vec<_>>(),
        })
    };
    let mut json = serde_json::json!({
        "build": build_id,
        "mode": meta.mode.as_str(),
        "files": meta.files.iter().map(file).collect::<Vec<_>>(),
    });
    if let Some(excluded) = excluded {
        json["excluded"] = serde_json::to_value(excluded).expect("serializes");
    }
    json.to_string()
}

/// `path` as `go` writes it in messages when run in `dir`: relative to `dir` if that is
/// shorter, trying the file's directory and then each of its parents, as cmd/go rewrites the
/// compiler's output (`./main.go`, `sub/x.go`, `../lib/lib.go`).
fn short_path(dir: &Path, path: &Path) -> PathBuf {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return path.to_path_buf();
    };
    for d in parent.ancestors() {
        let Some(rel) = relative(dir, d) else {
            continue;
        };
        let same = dir
            .join(&rel)
            .canonicalize()
            .is_ok_and(|a| d.canonicalize().is_ok_and(|b| a == b));
        if rel.as_os_str().len() < d.as_os_str().len() && same {
            let rest = parent.strip_prefix(d).expect("an ancestor is a prefix");
            let mut short = rel;
            if !rest.as_os_str().is_empty() {
                short.push(rest);
            }
            short.push(name);
            return short;
        }
    }
    path.to_path_buf()
}

/// `to` relative to `from`, both absolute, as `filepath.Rel` makes it (lexically; `.` for the
/// same directory).
fn relative(from: &Path, to: &Path) -> Option<PathBuf> {
    use std::path::Component;
    if !from.is_absolute() || !to.is_absolute() {
        return None;
    }
    fn clean(p: &Path) -> Vec<Component<'_>> {
        let mut out = Vec::new();
        for c in p.components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    if out.len() > 1 {
                        out.pop();
                    }
                }
                c => out.push(c),
            }
        }
        out
    }
    let (from, to) = (clean(from), clean(to));
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for c in &to[common..] {
        rel.push(c);
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    Some(rel)
}

/// The block rules to cut by: `asked` if given, else those of the Go that builds. A Go older
/// than livecov supports is refused; so is a newer one, unless rules were asked for.
fn rules_for(go_version: &str, asked: Option<Rules>) -> Result<Rules, Error> {
    match (instrumenter::version::rules_for(go_version), asked) {
        (Err(e @ instrumenter::version::VersionError::TooOld(_)), _) => {
            Err(Error::Usage(e.to_string()))
        }
        (_, Some(rules)) => Ok(rules),
        (Ok(rules), None) => Ok(rules),
        (Err(e @ instrumenter::version::VersionError::TooNew(_)), None) => {
            Err(Error::Usage(e.to_string()))
        }
        (Err(e), None) => Err(Error::Go(e.to_string())),
    }
}

/// The block rules of the Go that `go` runs in `dir` (its `go env GOVERSION`, which follows
/// GOTOOLCHAIN and the toolchain line of go.mod), and that release's name.
pub fn go_rules(dir: &Path) -> Result<(Rules, String), Error> {
    let env = module::GoEnv::read(dir)?;
    let rules = rules_for(&env.goversion, None)?;
    Ok((rules, env.goversion))
}

/// Copies a directory tree into a fresh directory, leaving the copies writable (the module
/// cache is read-only). The copy is made under a temporary name and renamed into place.
fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    fn copy(from: &Path, to: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
        for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
            let entry = entry.map_err(|e| Error::io(from, e))?;
            let (src, dst) = (entry.path(), to.join(entry.file_name()));
            if entry.file_type().map_err(|e| Error::io(&src, e))?.is_dir() {
                copy(&src, &dst)?;
            } else {
                let bytes = std::fs::read(&src).map_err(|e| Error::io(&src, e))?;
                std::fs::write(&dst, bytes).map_err(|e| Error::io(&dst, e))?;
            }
        }
        Ok(())
    }
    let tmp = to.with_extension(format!("tmp{}", std::process::id()));
    copy(from, &tmp)?;
    std::fs::rename(&tmp, to).map_err(|e| Error::io(to, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_go_that_builds_picks_the_rules_and_an_unknown_one_is_refused() {
        assert_eq!(rules_for("go1.26.8", None).unwrap(), Rules::Go120);
        assert_eq!(rules_for("go1.27.3", None).unwrap(), Rules::Go127);
        // --go wins over the Go that builds.
        assert_eq!(
            rules_for("go1.26.8", Some(Rules::Go127)).unwrap(),
            Rules::Go127
        );

        let newer = rules_for("go1.28.0", None).unwrap_err().to_string();
        for way in ["Upgrade livecov", "GOTOOLCHAIN=go1.27.0", "--go 1.27"] {
            assert!(newer.contains(way), "{newer}");
        }
        // Asked for knowingly, the newest known rules cut a newer Go's build.
        assert_eq!(
            rules_for("go1.28.0", Some(Rules::Go127)).unwrap(),
            Rules::Go127
        );
        // Older than overlays and these rules: refused whatever is asked.
        for asked in [None, Some(Rules::Go120)] {
            let older = rules_for("go1.19.13", asked).unwrap_err().to_string();
            assert!(older.contains("needs Go 1.20 or newer"), "{older}");
        }
        assert!(matches!(rules_for("gccgo", None), Err(Error::Go(_))));
    }
}
