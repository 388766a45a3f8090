//! What the `build`, `runtime`, `agent` and `server` benchmarks share: their options, medians, the
//! livecov executable they drive, running `go`, and the description of the machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// `--name VALUE` and `--name=VALUE` options, in order.
pub fn options(args: &[String], usage: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            bail!("unknown argument {arg:?}: usage: {usage}");
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, value.to_string()),
            None => (
                flag,
                args.next()
                    .with_context(|| format!("--{flag} needs a value: usage: {usage}"))?
                    .clone(),
            ),
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// The value of option `--name` as a positive number.
pub fn positive(name: &str, value: &str) -> Result<usize> {
    value
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .with_context(|| format!("--{name} {value:?}: want a positive number"))
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `p`th percentile by nearest rank: the smallest value that at least `p`% of the values
/// do not exceed.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len().max(1)) - 1)
        .copied()
        .unwrap_or(f64::NAN)
}

/// The livecov executable: `LIVECOV_BIN`, else the workspace's `target/release/livecov`.
pub fn livecov_bin() -> Result<PathBuf> {
    let path = match std::env::var_os("LIVECOV_BIN").filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("the bench crate has no parent directory")?
            .join("target/release/livecov"),
    };
    if !path.is_file() {
        bail!(
            "no livecov executable at {}: run `cargo build --release -p livecov` or set LIVECOV_BIN",
            path.display()
        );
    }
    Ok(path)
}

/// `go ARGS` in `dir` as the conformance and benchmark tools run it: the local toolchain
/// (`GOTOOLCHAIN=local`), missing `go.sum` lines filled in (`GOFLAGS=-mod=mod`).
pub fn go_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("go");
    cmd.args(args)
        .current_dir(dir)
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local");
    cmd
}

/// Runs `cmd` to completion and fails, with its standard error, unless it succeeded.
pub fn run_ok(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Runs `cmd` to completion and returns its wall time, from spawn to exit.
pub fn timed_ok(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    run_ok(cmd)?;
    Ok(start.elapsed())
}

/// The first line of `program ARGS`' standard output.
pub fn text_of(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Prints the `## Machine` section: CPU, Go, Rust, the livecov executable, the date and the
/// command that produced the report.
/// `tool` names the executable measured besides Go: (what it is, its path).
pub fn print_machine(bench: &str, tool: (&str, &Path)) -> Result<()> {
    println!("\n## Machine\n");
    let cpus = text_of("nproc", &[])?;
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim());
    println!("- CPU: {model}, {cpus} CPUs (`nproc`)");
    println!("- {}", text_of("go", &["version"])?);
    println!("- {}", text_of("rustc", &["--version"])?);
    println!("- {}: `{}`", tool.0, tool.1.display());
    println!("- date: {}", text_of("date", &["-u", "+%F"])?);
    let args: String = std::env::args().skip(2).map(|a| format!(" {a}")).collect();
    println!("- command: `cargo run --release -p livecov-bench -- {bench}{args}`");
    Ok(())
}

/// Says so on standard error when something else keeps the machine busy (a 1-minute load
/// average of 0.5 or more): every figure of the run will be noisy.
pub fn warn_if_busy() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    if let Some(one) = load
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        .filter(|&l| l >= 0.5)
    {
        eprintln!("livecov-bench: warning: load average {one:.2}, the figures will be noisy");
    }
}

/// A `Duration` in seconds.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// What every benchmark starts with: the livecov executable, a warning if the machine is busy,
/// and a scratch directory (removed when dropped).
pub fn start() -> Result<(std::path::PathBuf, tempfile::TempDir)> {
    let livecov = livecov_bin()?;
    warn_if_busy();
    let scratch = tempfile::Builder::new()
        .prefix("livecov-bench-")
        .tempdir()?;
    Ok((livecov, scratch))
}
