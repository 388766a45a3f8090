//! Build time: `livecov build` against `go build` and `go build -cover` on a real module, from
//! an empty build cache (cold) and again with nothing changed (warm).
//!
//! The module is github.com/spf13/cobra (`./...`: two library packages, nothing linked),
//! copied out of the module cache into a writable directory, or with `--module service` the
//! benchmark's HTTP service, `bench/service` (`-o BIN .`: a program linked as a deployed
//! service is, which already imports `net/http` as the agent does); its dependencies are
//! downloaded before anything is timed. A cold run gets a build
//! cache (`GOCACHE`) of its own, empty, and for livecov an empty `--cache-dir` too, so it
//! compiles the standard library packages the build needs as well. The warm runs reuse the
//! caches of each contender's last cold run and change nothing. Each run times every
//! contender in turn, so that a slow spell of the machine hits them alike.
//!
//! Two more figures explain the difference: how many packages each build compiles from an
//! empty cache (the compile commands `go build -n` prints), and how long livecov takes before
//! it starts `go build` (`go list`, instrumenting, writing the overlay), read from a `go`
//! shim on PATH that logs when each `go` command starts. The shim is used only for these
//! extra runs, never in the timed ones.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::common::{self, median, secs};

const MODULE: &str = "github.com/spf13/cobra@v1.10.2";
/// A stand-in for `go` that logs `UNIX_NANOS SUBCOMMAND` when it starts, then execs the
/// real `go`. A Go binary, so that it starts in about a millisecond.
const SHIM_GO: &str = r#"package main

import (
	"os"
	"strconv"
	"syscall"
	"time"
)

func main() {
	now := time.Now().UnixNano()
	sub := ""
	if len(os.Args) > 1 {
		sub = os.Args[1]
	}
	if f, err := os.OpenFile(os.Getenv("LIVECOV_BENCH_GO_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		f.WriteString(strconv.FormatInt(now, 10) + " " + sub + "\n")
		f.Close()
	}
	real := os.Getenv("LIVECOV_BENCH_REAL_GO")
	syscall.Exec(real, append([]string{real}, os.Args[1:]...), os.Environ())
	os.Exit(127)
}
"#;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Go,
    GoCover,
    Livecov,
}

impl Kind {
    fn label(self, target: &str) -> String {
        match self {
            Kind::Go => format!("`go build {target}`"),
            Kind::GoCover => format!("`go build -cover {target}`"),
            Kind::Livecov => format!("`livecov build --mode set -- {target}`"),
        }
    }
}

/// What the benchmark builds.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Module {
    /// github.com/spf13/cobra, `./...`.
    Cobra,
    /// `bench/service`, `-o BIN .`.
    Service,
}

/// A build cache and a livecov cache directory, removed when dropped.
struct Caches {
    dir: TempDir,
}

impl Caches {
    fn new(scratch: &Path) -> Result<Caches> {
        let dir = tempfile::Builder::new()
            .prefix("caches-")
            .tempdir_in(scratch)?;
        std::fs::create_dir(dir.path().join("gocache"))?;
        Ok(Caches { dir })
    }

    fn gocache(&self) -> PathBuf {
        self.dir.path().join("gocache")
    }

    fn livecov(&self) -> PathBuf {
        self.dir.path().join("livecov")
    }
}

struct Contender {
    kind: Kind,
    cold: Vec<Duration>,
    warm: Vec<Duration>,
    /// The caches of the last cold run, which the warm runs use.
    caches: Option<Caches>,
}

/// What one benchmark run needs to know.
struct Setup {
    module_dir: PathBuf,
    livecov: PathBuf,
    /// The `go build` arguments that name what is built.
    target: Vec<String>,
}

impl Setup {
    /// The build of `kind` with `caches`, `extra` go build flags before the patterns.
    fn command(&self, kind: Kind, caches: &Caches, extra: &[&str]) -> Command {
        let mut cmd = match kind {
            Kind::Go | Kind::GoCover => {
                let mut cmd = common::go_command(&self.module_dir, &["build"]);
                if kind == Kind::GoCover {
                    cmd.arg("-cover");
                }
                cmd
            }
            Kind::Livecov => {
                let mut cmd = Command::new(&self.livecov);
                cmd.current_dir(&self.module_dir)
                    .env("GOFLAGS", "-mod=mod")
                    .env("GOTOOLCHAIN", "local")
                    .args(["build", "--mode", "set", "--cache-dir"])
                    .arg(caches.livecov())
                    .arg("--");
                cmd
            }
        };
        cmd.args(extra)
            .args(&self.target)
            .env("GOCACHE", caches.gocache());
        cmd
    }
}

/// `livecov-bench build`'s flags.
#[derive(clap::Args)]
pub struct Args {
    /// Builds with an empty cache.
    #[arg(long = "cold", default_value_t = 3, value_parser = common::positive)]
    cold_runs: usize,
    /// Builds with a warm cache.
    #[arg(long = "warm", default_value_t = 5, value_parser = common::positive)]
    warm_runs: usize,
    /// The module to build.
    #[arg(long, value_enum, default_value = "cobra")]
    module: Module,
}

pub fn run(
    Args {
        cold_runs,
        warm_runs,
        module,
    }: Args,
) -> Result<()> {
    let (livecov, scratch) = common::start()?;
    let scratch = scratch.path();

    let module_dir = scratch.join("module");
    let (name, target) = match module {
        Module::Cobra => {
            livecov_testkit::copy_tree(&livecov_testkit::download(MODULE)?, &module_dir)?;
            (MODULE.to_string(), vec!["./...".to_string()])
        }
        Module::Service => {
            let service = Path::new(env!("CARGO_MANIFEST_DIR")).join("service");
            livecov_testkit::copy_tree(&service, &module_dir)?;
            let bin = scratch.join("service-bin").to_string_lossy().into_owned();
            (
                "bench/service (livecovbench/service)".to_string(),
                vec!["-o".to_string(), bin, ".".to_string()],
            )
        }
    };
    let target_label = match module {
        Module::Cobra => "./...",
        Module::Service => "-o BIN .",
    };
    livecov_testkit::go(&module_dir, &["mod", "download"])?;
    let packages: Vec<String> = livecov_testkit::go(&module_dir, &["list", "./..."])?
        .lines()
        .map(str::to_string)
        .collect();
    let files = livecov_testkit::go_files(&module_dir, true)?.len();
    let setup = Setup {
        module_dir,
        livecov: livecov.clone(),
        target,
    };

    let mut contenders: Vec<Contender> = [Kind::Go, Kind::GoCover, Kind::Livecov]
        .into_iter()
        .map(|kind| Contender {
            kind,
            cold: Vec::new(),
            warm: Vec::new(),
            caches: None,
        })
        .collect();

    for run in 1..=cold_runs {
        for c in &mut contenders {
            // The previous run's caches go first, so that at most one set per contender is
            // on disk.
            c.caches = None;
            let caches = Caches::new(scratch)?;
            let took = common::timed_ok(&mut setup.command(c.kind, &caches, &[]))?;
            eprintln!(
                "cold run {run}/{cold_runs}: {} {:.2} s",
                c.kind.label(target_label),
                secs(took)
            );
            c.cold.push(took);
            c.caches = Some(caches);
        }
    }
    // Run 0 is an untimed first rebuild.
    for run in 0..=warm_runs {
        for c in &mut contenders {
            let caches = c.caches.as_ref().context("no caches from the cold runs")?;
            let took = common::timed_ok(&mut setup.command(c.kind, caches, &[]))?;
            if run > 0 {
                c.warm.push(took);
            }
        }
    }
    eprintln!("warm runs done");

    // Where livecov's time goes: the part before `go build` starts, warm (the caches of the
    // cold runs) and cold (fresh caches, `go build -n`, which stops once go has started).
    let shim = Shim::new(scratch)?;
    let livecov_caches = contenders[2].caches.as_ref().context("no livecov caches")?;
    let mut before_warm = Vec::new();
    for _ in 0..warm_runs {
        before_warm.push(shim.before_build(&mut setup.command(
            Kind::Livecov,
            livecov_caches,
            &[],
        ))?);
    }
    let mut before_cold = Vec::new();
    for _ in 0..cold_runs {
        let caches = Caches::new(scratch)?;
        before_cold.push(shim.before_build(&mut setup.command(Kind::Livecov, &caches, &["-n"]))?);
    }
    for c in &mut contenders {
        c.caches = None;
    }
    let mut compiled = Vec::new();
    for c in &contenders {
        let caches = Caches::new(scratch)?;
        let out = common::run_ok(&mut setup.command(c.kind, &caches, &["-n"]))?;
        compiled.push(compile_commands(&String::from_utf8_lossy(&out.stderr)));
    }

    println!("## Input\n");
    println!("| module | packages (`./...`) | non-test .go files |");
    println!("|---|---:|---:|");
    println!("| {name} | {} | {files} |", packages.len());

    println!("\n## Results (median of {cold_runs} cold and {warm_runs} warm runs)\n");
    println!("| contender | cold s | warm s | packages compiled, cold |");
    println!("|---|---:|---:|---:|");
    let cold = |c: &Contender| median(&c.cold.iter().map(|d| secs(*d)).collect::<Vec<_>>());
    let warm = |c: &Contender| median(&c.warm.iter().map(|d| secs(*d)).collect::<Vec<_>>());
    for (c, compiled) in contenders.iter().zip(&compiled) {
        println!(
            "| {} | {:.2} | {:.3} | {compiled} |",
            c.kind.label(target_label),
            cold(c),
            warm(c)
        );
    }
    let (go, cover, lc) = (&contenders[0], &contenders[1], &contenders[2]);
    println!("\n| ratio | cold | warm |");
    println!("|---|---:|---:|");
    println!(
        "| livecov / `go build -cover` | {:.2}× | {:.2}× |",
        cold(lc) / cold(cover),
        warm(lc) / warm(cover)
    );
    println!(
        "| livecov / `go build` | {:.2}× | {:.2}× |",
        cold(lc) / cold(go),
        warm(lc) / warm(go)
    );
    println!("\nlivecov before `go build` starts (median):\n");
    println!("| caches | s |");
    println!("|---|---:|");
    println!(
        "| empty (`-n`, {cold_runs} runs) | {:.3} |",
        median(&before_cold)
    );
    println!("| warm ({warm_runs} runs) | {:.3} |", median(&before_warm));

    common::print_machine("build", ("livecov", &livecov))
}

/// The number of packages `go build -n` output compiles: its lines that run the compiler.
fn compile_commands(n_output: &str) -> usize {
    n_output
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|tool| tool.ends_with("/compile"))
        })
        .count()
}

/// A `go` shim on PATH that logs when each `go` command starts.
struct Shim {
    bin_dir: PathBuf,
    log: PathBuf,
    real_go: PathBuf,
}

impl Shim {
    fn new(scratch: &Path) -> Result<Shim> {
        let real_go = find_on_path("go")?;
        let src = scratch.join("shim-src");
        std::fs::create_dir_all(&src)?;
        std::fs::write(
            src.join("go.mod"),
            "module livecovbench/goshim\n\ngo 1.21\n",
        )?;
        std::fs::write(src.join("main.go"), SHIM_GO)?;
        let bin_dir = scratch.join("shim-bin");
        std::fs::create_dir_all(&bin_dir)?;
        let out = bin_dir.join("go");
        livecov_testkit::go(&src, &["build", "-o", &out.to_string_lossy(), "."])?;
        Ok(Shim {
            bin_dir,
            log: scratch.join("shim.log"),
            real_go,
        })
    }

    /// Runs `cmd` with the shim first on PATH and returns the time from spawning it to the
    /// start of its `go build`, in seconds.
    fn before_build(&self, cmd: &mut Command) -> Result<f64> {
        let _ = std::fs::remove_file(&self.log);
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.bin_dir.clone()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs)?)
            .env("LIVECOV_BENCH_GO_LOG", &self.log)
            .env("LIVECOV_BENCH_REAL_GO", &self.real_go);
        let start = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        common::run_ok(cmd)?;
        let log = std::fs::read_to_string(&self.log)
            .with_context(|| format!("the go shim wrote no {}", self.log.display()))?;
        let build = log
            .lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(_, sub)| *sub == "build")
            .and_then(|(t, _)| t.parse::<u128>().ok())
            .with_context(|| format!("no `go build` in the shim's log:\n{log}"))?;
        Ok(build.saturating_sub(start) as f64 / 1e9)
    }
}

fn find_on_path(program: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .with_context(|| format!("no {program} on PATH"))
}
