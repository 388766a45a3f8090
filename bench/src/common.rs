//! What the benchmarks share: their options, medians, the livecov executable they drive,
//! running `go`, the description of the machine, and, for `server` and `dashboard`, a running
//! `livecov server` process, CPU times from `/proc` and deterministic pseudo-random numbers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

/// A positive number, for clap (`value_parser = common::positive`).
pub fn positive(value: &str) -> std::result::Result<usize, String> {
    value
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{value:?}: want a positive number"))
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
    print_machine_with_go(bench, tool, &text_of("go", &["version"])?)
}

/// [`print_machine`] with the `go version` of the Go that the benchmark ran.
pub fn print_machine_with_go(bench: &str, tool: (&str, &Path), go_version: &str) -> Result<()> {
    println!("\n## Machine\n");
    let cpus = text_of("nproc", &[])?;
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim());
    println!("- CPU: {model}, {cpus} CPUs (`nproc`)");
    println!("- {go_version}");
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

/// How many instances a benchmark's `livecov server` pulls at once (`--pull-concurrency`).
pub const SERVER_PULL_CONCURRENCY: usize = 64;

/// A `livecov server` process ([`livecov_testkit::LiveServer`]), killed when dropped, with
/// the benchmarks' HTTP calls and its CPU and memory.
pub struct LiveServer {
    server: livecov_testkit::LiveServer,
    pub base: String,
}

impl LiveServer {
    pub async fn start(livecov: &Path, url: &str, log: &Path) -> Result<LiveServer> {
        LiveServer::start_with_ttl(livecov, url, log, "1h").await
    }

    /// [`LiveServer::start`] with `--instance-ttl ttl` (a humantime duration) instead of an
    /// hour: an instance whose heartbeats stop is marked gone that long after its last one.
    pub async fn start_with_ttl(
        livecov: &Path,
        url: &str,
        log: &Path,
        ttl: &str,
    ) -> Result<LiveServer> {
        let (livecov, url, log) = (livecov.to_path_buf(), url.to_string(), log.to_path_buf());
        let ttl = ttl.to_string();
        let server = tokio::task::spawn_blocking(move || {
            let concurrency = SERVER_PULL_CONCURRENCY.to_string();
            let args = [
                "--database-url",
                &url,
                "--pull-concurrency",
                &concurrency,
                "--instance-ttl",
                &ttl,
                // The benchmarks register thousands of instances from one address: what they
                // measure is the registry, not its quotas.
                "--max-instances",
                "1000000",
                "--registrations-per-minute",
                "100000000",
            ];
            livecov_testkit::LiveServer::start(&livecov, &args, &[("RUST_LOG", "info")], &log)
        })
        .await??;
        Ok(LiveServer {
            base: server.base(),
            server,
        })
    }

    /// `POST path` with a JSON body; the answer's JSON, which must come with status `want`, and
    /// the time from sending the request to the end of the answer.
    pub async fn post(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: &serde_json::Value,
        want: u16,
    ) -> Result<(serde_json::Value, Duration)> {
        let req = client.post(format!("{}{path}", self.base)).json(body);
        let start = Instant::now();
        let resp = req.send().await.with_context(|| format!("POST {path}"))?;
        let status = resp.status().as_u16();
        let text = resp.bytes().await?;
        let took = start.elapsed();
        ensure!(
            status == want,
            "POST {path}: {status}: {}",
            String::from_utf8_lossy(&text)
        );
        let json =
            serde_json::from_slice(&text).with_context(|| format!("POST {path}: the answer"))?;
        Ok((json, took))
    }

    /// `PUT path` with a raw body; the answer's JSON, which must come with status `want`, and
    /// the time from sending the request to the end of the answer.
    pub async fn put(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: Vec<u8>,
        want: u16,
    ) -> Result<(serde_json::Value, Duration)> {
        let req = client.put(format!("{}{path}", self.base)).body(body);
        let start = Instant::now();
        let resp = req.send().await.with_context(|| format!("PUT {path}"))?;
        let status = resp.status().as_u16();
        let text = resp.bytes().await?;
        let took = start.elapsed();
        ensure!(
            status == want,
            "PUT {path}: {status}: {}",
            String::from_utf8_lossy(&text)
        );
        let json =
            serde_json::from_slice(&text).with_context(|| format!("PUT {path}: the answer"))?;
        Ok((json, took))
    }

    /// `GET path`, which must answer 200; the body.
    pub async fn get(&self, client: &reqwest::Client, path: &str) -> Result<Vec<u8>> {
        let resp = client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = resp.status().as_u16();
        let body = Vec::from(resp.bytes().await?);
        ensure!(
            status == 200,
            "GET {path}: {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(500)])
        );
        Ok(body)
    }

    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// User plus system CPU time of the server so far.
    pub fn cpu(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        cpu_of(&stat, false).context("a /proc/PID/stat without CPU times")
    }

    /// The server's peak resident memory so far, in bytes.
    pub fn peak_rss(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .context("no VmHWM in /proc/PID/status")?;
        Ok(kb * 1024)
    }

    /// Stops the server as an operator would (SIGTERM) and waits for it to exit.
    pub fn stop(self) -> Result<()> {
        self.server.stop()
    }
}

/// Seconds per clock tick, the unit of CPU times in `/proc`.
pub fn clock_tick() -> f64 {
    static TICK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICK.get_or_init(|| {
        text_of("getconf", &["CLK_TCK"])
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .map_or(0.01, |t| 1.0 / t)
    })
}

/// User plus system time from the text of a `/proc/…/stat` file; with `children`, plus that
/// of the process's children that exited and were waited for.
pub fn cpu_of(stat: &str, children: bool) -> Option<Duration> {
    // The command name, in parentheses, may hold spaces: count fields after it. The state,
    // field 3, is the first; utime, stime, cutime and cstime are fields 14 to 17.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let wanted = if children { 11..15 } else { 11..13 };
    let ticks = fields
        .get(wanted)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some(Duration::from_secs_f64(ticks as f64 * clock_tick()))
}

/// This process's CPU time: the simulated agents and the client.
pub fn own_cpu() -> Result<Duration> {
    cpu_of(&std::fs::read_to_string("/proc/self/stat")?, false).context("/proc/self/stat")
}

pub fn check_instances(snapshot: &serde_json::Value, want: usize) -> Result<()> {
    let ok = snapshot["instances_ok"].as_i64();
    ensure!(
        ok == Some(want as i64),
        "a snapshot with {ok:?} instances ok, {want} expected: {}",
        snapshot["instance_results"]
    );
    Ok(())
}

/// A pseudo-random number in [0, 1) from `parts` (splitmix64's finalizer, chained).
pub fn unit(parts: &[u64]) -> f64 {
    let mut h = 0x6c69_7665_636f_7621u64;
    for &p in parts {
        let mut z = (h ^ p).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h = z ^ (z >> 31);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}
