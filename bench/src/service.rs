//! Run-time cost of the counters on a real HTTP service whose hot code is in an instrumented
//! dependency: requests per second of the same service built without coverage, with Go's
//! (`go build -cover -covermode=set|count|atomic`) and with livecov's
//! (`livecov build --mode set|count|atomic`), under the same load.
//!
//! The service is `bench/service/` (its own module, `livecovbench/service`): `POST /render`
//! turns a 6.5 KB Markdown document into HTML with github.com/yuin/goldmark and its GFM
//! extension, `GET /json` encodes and decodes an order of 48 items with encoding/json. Both
//! Go's and livecov's builds instrument the service's packages and goldmark's: Go's with
//! `-coverpkg=livecovbench/service/...,github.com/yuin/goldmark/...`, livecov's with
//! `--coverpkg github.com/yuin/goldmark/...` (it always instruments the main module). Every
//! variant is built once per run, from a build cache of its own run (`GOCACHE`), empty at the
//! start. The load generator, `bench/service/cmd/load`, is built with a plain `go build`: N
//! connections kept alive, each sending its requests one after the other, four `/render` to
//! one `/json`, for a warm-up and then a timed window; any answer but 200 fails the run.
//!
//! Each run starts the service afresh: no livecov server and no `LIVECOV_SERVER` (the agent
//! listens on a port of loopback and nothing reads it during the load), no `GOCOVERDIR` for
//! Go's builds. Before the load, one request of each kind must answer 200 with the expected
//! contents, and a livecov build's agent must answer its metadata and a profile in which
//! goldmark's blocks ran.
//!
//! Two configurations: pinned, the service on CPU 0 (`taskset -c 0`, `GOMAXPROCS=1`) and the
//! load generator on CPU 1, 8 connections; and unpinned, both free on every CPU, 32
//! connections. The design is paired: every round runs every variant once in each
//! configuration, in an order rotated from one round to the next, and each variant's
//! throughput is divided by the uninstrumented service's in the same round and
//! configuration. The tables report the median of those ratios over the rounds, their range
//! and the median requests per second: a slow spell of a shared machine hits the variants of
//! one round alike, and falls out of the ratio.
//!
//! A last table counts the functions of goldmark that the compiler can inline in each
//! variant: the `can inline` lines of `-gcflags=github.com/yuin/goldmark/...=-m` under
//! goldmark's packages, livecov's own registration function left out, from a second build
//! of each variant (passed to livecov after `--`, as a user would). Counters can push a function over the inliner's budget; fewer inlined
//! functions cost run time of their own.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::common::{self, median};

const MODES: [&str; 3] = ["set", "count", "atomic"];
const GOLDMARK: &str = "github.com/yuin/goldmark";
const GO_COVERPKG: &str = "livecovbench/service/...,github.com/yuin/goldmark/...";
const LIVECOV_COVERPKG: &str = "github.com/yuin/goldmark/...";
/// The user-level compiler flag that makes the compiler say what it can inline in goldmark.
const INLINE_GCFLAGS: &str = "-gcflags=github.com/yuin/goldmark/...=-m";
/// `POST /render` requests to `GET /json` requests.
const MIX: &str = "4:1";
/// The token the livecov builds' agents accept, to check them by hand.
const AGENT_TOKEN: &str = "livecov-bench-service";

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Plain,
    Native(&'static str),
    Livecov(&'static str),
}

impl Variant {
    fn label(self) -> String {
        match self {
            Variant::Plain => "uninstrumented (`go build`)".into(),
            Variant::Native(mode) => format!("`go build -cover -covermode={mode}`"),
            Variant::Livecov(mode) => format!("`livecov build --mode {mode}`"),
        }
    }

    fn file_name(self) -> String {
        match self {
            Variant::Plain => "plain".into(),
            Variant::Native(mode) => format!("go-{mode}"),
            Variant::Livecov(mode) => format!("livecov-{mode}"),
        }
    }
}

/// Where the service and the load generator run.
struct Config {
    name: &'static str,
    /// `taskset -c` of the service and of the load generator, when pinned.
    cpus: Option<(&'static str, &'static str)>,
    /// The service's `GOMAXPROCS`; `None`: Go's default.
    gomaxprocs: Option<&'static str>,
    connections: usize,
}

impl Config {
    fn describe(&self) -> String {
        match (self.cpus, self.gomaxprocs) {
            (Some((service, load)), procs) => format!(
                "the service on CPU {service} (`taskset -c {service}`, GOMAXPROCS={}), the \
                 load generator on CPU {load} (`taskset -c {load}`), {} connections",
                procs.unwrap_or("default"),
                self.connections
            ),
            (None, _) => format!(
                "the service and the load generator on every CPU, GOMAXPROCS default, {} \
                 connections",
                self.connections
            ),
        }
    }

    /// `program`, under `taskset` when pinned to `cpu`.
    fn command(&self, program: &Path, cpu: Option<&str>) -> Command {
        match cpu {
            Some(cpu) => {
                let mut cmd = Command::new("taskset");
                cmd.args(["-c", cpu]).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }
}

const CONFIGS: [Config; 2] = [
    Config {
        name: "pinned",
        cpus: Some(("0", "1")),
        gomaxprocs: Some("1"),
        connections: 8,
    },
    Config {
        name: "unpinned",
        cpus: None,
        gomaxprocs: None,
        connections: 32,
    },
];

/// `livecov-bench service`'s flags.
#[derive(clap::Args)]
pub struct Args {
    /// Rounds; each runs every variant once in each configuration.
    #[arg(long, default_value_t = 5, value_parser = common::positive)]
    rounds: usize,
    /// Timed window of each run, in seconds.
    #[arg(long, default_value_t = 5, value_parser = common::positive)]
    duration: usize,
    /// Load before each timed window, in seconds, not counted.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// GOTOOLCHAIN for every build, such as go1.27.3 (default: the environment's).
    #[arg(long, value_name = "TOOLCHAIN")]
    go_toolchain: Option<String>,
}

/// What the builds and runs share.
struct Setup {
    livecov: PathBuf,
    source: PathBuf,
    scratch: PathBuf,
    go_toolchain: Option<String>,
}

impl Setup {
    /// `program ARGS` in the service's module, with the run's build cache and toolchain.
    fn go_tool(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.source)
            .env("GOCACHE", self.scratch.join("gocache"));
        if let Some(toolchain) = &self.go_toolchain {
            cmd.env("GOTOOLCHAIN", toolchain);
        }
        cmd
    }

    /// The build of `variant` into `out`, with `extra` go build flags.
    fn build(&self, variant: Variant, out: &Path, extra: &[&str]) -> Command {
        let out = out.to_string_lossy();
        match variant {
            Variant::Plain | Variant::Native(_) => {
                let mut cmd = self.go_tool(Path::new("go"));
                cmd.arg("build");
                if let Variant::Native(mode) = variant {
                    cmd.args([
                        "-cover",
                        &format!("-covermode={mode}"),
                        &format!("-coverpkg={GO_COVERPKG}"),
                    ]);
                }
                cmd.args(["-o", &out]).args(extra).arg(".");
                cmd
            }
            Variant::Livecov(mode) => {
                let mut cmd = self.go_tool(&self.livecov);
                cmd.args(["build", "--mode", mode, "--coverpkg", LIVECOV_COVERPKG])
                    .arg("--cache-dir")
                    .arg(self.scratch.join("livecov-cache"))
                    .args(["--", "-o", &out])
                    .args(extra)
                    .arg(".");
                cmd
            }
        }
    }
}

pub fn run(
    Args {
        rounds,
        duration,
        warmup,
        go_toolchain,
    }: Args,
) -> Result<()> {
    let load_average = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let (livecov, scratch) = common::start()?;
    let cpus: usize = common::text_of("nproc", &[])?.parse().unwrap_or(1);
    ensure!(
        cpus >= 2,
        "{cpus} CPU: the pinned configuration needs CPUs 0 and 1"
    );
    let setup = Setup {
        livecov: livecov.clone(),
        source: Path::new(env!("CARGO_MANIFEST_DIR")).join("service"),
        scratch: scratch.path().to_path_buf(),
        go_toolchain,
    };
    let bin = setup.scratch.join("bin");
    let logs = setup.scratch.join("logs");
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(&logs)?;
    let go_version = String::from_utf8_lossy(
        &common::run_ok(setup.go_tool(Path::new("go")).arg("version"))?.stdout,
    )
    .trim()
    .to_string();
    eprintln!("{go_version}");

    let mut variants = vec![Variant::Plain];
    for mode in MODES {
        variants.extend([Variant::Native(mode), Variant::Livecov(mode)]);
    }

    eprintln!(
        "building the load generator and {} variants",
        variants.len()
    );
    let load = bin.join("load");
    common::run_ok(
        setup
            .go_tool(Path::new("go"))
            .args(["build", "-o"])
            .arg(&load)
            .arg("./cmd/load"),
    )?;
    let mut binaries = Vec::new();
    for &v in &variants {
        let out = bin.join(v.file_name());
        let took = common::timed_ok(&mut setup.build(v, &out, &[]))?;
        eprintln!("  {}: {:.1} s", v.label(), common::secs(took));
        binaries.push(out);
    }
    let mut inlinable = Vec::new();
    for &v in &variants {
        let out = setup.scratch.join(format!("{}-m", v.file_name()));
        let built = common::run_ok(&mut setup.build(v, &out, &[INLINE_GCFLAGS]))?;
        let n = can_inline(&String::from_utf8_lossy(&built.stderr), GOLDMARK);
        ensure!(
            n > 0,
            "{}: no `can inline` line for goldmark in the compiler's output",
            v.label()
        );
        inlinable.push(n);
    }

    // [config][variant][round] requests per second
    let mut rps = vec![vec![Vec::new(); variants.len()]; CONFIGS.len()];
    for round in 0..rounds {
        for (config, rps) in CONFIGS.iter().zip(&mut rps) {
            eprintln!("round {}/{rounds}, {}", round + 1, config.name);
            for i in (0..variants.len()).map(|i| (i + round) % variants.len()) {
                let run = Run {
                    variant: variants[i],
                    binary: &binaries[i],
                    config,
                    load: &load,
                    log: &logs.join(format!("{}-{}.log", variants[i].file_name(), config.name)),
                };
                let got = run.measure(duration, warmup)?;
                eprintln!("  {}: {got:.0} req/s", variants[i].label());
                rps[i].push(got);
            }
        }
    }

    println!("## Input\n");
    println!(
        "The service `bench/service/` (goldmark v1.8.5 with GFM; `POST /render` of a 6.5 KB \
         Markdown document and `GET /json`, {MIX}), started afresh for each run. {rounds} \
         round{}; in each, every variant runs once per configuration, in an order rotated \
         from round to round: {warmup} s of load, then {duration} s timed. \"vs \
         uninstrumented\" is the median over the rounds of the variant's requests per second \
         divided by the uninstrumented service's in the same round.",
        if rounds == 1 { "" } else { "s" }
    );
    for (config, rps) in CONFIGS.iter().zip(&rps) {
        println!("\n## {}: {}\n", capitalised(config.name), config.describe());
        println!("| variant | vs uninstrumented | lowest–highest | median req/s |");
        println!("|---|---:|---:|---:|");
        let plain = &rps[0];
        for (v, samples) in variants.iter().zip(rps) {
            let ratios: Vec<f64> = samples.iter().zip(plain).map(|(s, p)| s / p).collect();
            let lowest = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let highest = ratios.iter().copied().fold(0.0, f64::max);
            println!(
                "| {} | {:.2}× | {lowest:.2}–{highest:.2} | {:.0} |",
                v.label(),
                median(&ratios),
                median(samples)
            );
        }
    }
    println!("\n## Functions of goldmark the compiler can inline\n");
    println!("`{INLINE_GCFLAGS}`, the `: can inline ` lines under goldmark's packages.\n");
    println!("| variant | can inline | vs uninstrumented |");
    println!("|---|---:|---:|");
    for (v, &n) in variants.iter().zip(&inlinable) {
        println!(
            "| {} | {n} | {:.2}× |",
            v.label(),
            n as f64 / inlinable[0] as f64
        );
    }

    common::print_machine_with_go("service", ("livecov", &livecov), &go_version)?;
    if let Some(toolchain) = &setup.go_toolchain {
        println!("- GOTOOLCHAIN: `{toolchain}` (`--go-toolchain`)");
    } else if let Some(toolchain) = std::env::var_os("GOTOOLCHAIN") {
        println!(
            "- GOTOOLCHAIN: `{}` (environment)",
            toolchain.to_string_lossy()
        );
    }
    let load_average: Vec<&str> = load_average.split_whitespace().take(3).collect();
    let busy = load_average
        .first()
        .and_then(|l| l.parse::<f64>().ok())
        .is_some_and(|l| l >= 0.5);
    println!(
        "- load average at the start (1, 5, 15 min): {}{}",
        load_average.join(" "),
        if busy {
            " (0.5 or more: something else was running, the figures are noisy)"
        } else {
            ""
        }
    );
    Ok(())
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The `: can inline ` lines of a build's compiler output that come under a package of
/// `module` (`# PACKAGE` headers): livecov compiles goldmark from copies in its cache, so the
/// packages tell, not the files' paths. livecov's own functions (`_livecov_register`, which
/// hands a package's counters to the agent) are not counted.
fn can_inline(output: &str, module: &str) -> usize {
    let mut in_module = false;
    let mut n = 0;
    for line in output.lines() {
        if let Some(package) = line.strip_prefix("# ") {
            let package = package.trim();
            in_module = package == module
                || package
                    .strip_prefix(module)
                    .is_some_and(|rest| rest.starts_with('/'));
        } else if in_module
            && let Some(rest) = line.split(": can inline ").nth(1)
            // livecov's registration function is not goldmark's.
            && !rest.starts_with("_livecov_")
        {
            n += 1;
        }
    }
    n
}

/// One run of one variant in one configuration.
struct Run<'a> {
    variant: Variant,
    binary: &'a Path,
    config: &'a Config,
    load: &'a Path,
    log: &'a Path,
}

/// A running service, killed when dropped.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Run<'_> {
    /// Starts the service, checks it and puts it under load; its requests per second.
    fn measure(&self, duration: usize, warmup: usize) -> Result<f64> {
        let port = free_port()?;
        let agent_port = free_port()?;
        let mut log = File::options().create(true).append(true).open(self.log)?;
        writeln!(log, "==> run on port {port}")?;
        let mut cmd = self
            .config
            .command(self.binary, self.config.cpus.map(|c| c.0));
        cmd.arg("-addr")
            .arg(format!("127.0.0.1:{port}"))
            .env_remove("GOCOVERDIR")
            .env_remove("LIVECOV_SERVER")
            .env_remove("LIVECOV_DIR")
            .env_remove("LIVECOV_DEBUG")
            .env("LIVECOV_AGENT_ADDR", format!("127.0.0.1:{agent_port}"))
            .env("LIVECOV_TOKEN", AGENT_TOKEN)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        match self.config.gomaxprocs {
            Some(n) => cmd.env("GOMAXPROCS", n),
            None => cmd.env_remove("GOMAXPROCS"),
        };
        let mut service = Service(
            cmd.spawn()
                .with_context(|| format!("cannot start {}", self.binary.display()))?,
        );
        let url = format!("http://127.0.0.1:{port}");
        wait_for_port(&mut service, port)
            .with_context(|| format!("{}: see {}", self.variant.label(), self.log.display()))?;
        common::run_ok(
            self.config
                .command(self.load, None)
                .args(["-check", "-url", &url]),
        )?;
        if let Variant::Livecov(_) = self.variant {
            check_agent(agent_port)
                .with_context(|| format!("{}: the agent", self.variant.label()))?;
        }

        let out = common::run_ok(
            self.config
                .command(self.load, self.config.cpus.map(|c| c.1))
                .arg("-url")
                .arg(&url)
                .arg("-c")
                .arg(self.config.connections.to_string())
                .arg("-d")
                .arg(format!("{duration}s"))
                .arg("-warmup")
                .arg(format!("{warmup}s"))
                .args(["-mix", MIX]),
        )?;
        if let Some(status) = service.0.try_wait()? {
            bail!(
                "{} exited during the load ({status}): see {}",
                self.variant.label(),
                self.log.display()
            );
        }
        let result: serde_json::Value = serde_json::from_slice(&out.stdout)
            .context("the load generator's answer is not JSON")?;
        let errors = result["errors"].as_i64().context("no errors count")?;
        ensure!(
            errors == 0,
            "{} ({}): {errors} failed requests, the first: {}",
            self.variant.label(),
            self.config.name,
            result["first_error"]
        );
        let rps = result["rps"].as_f64().context("no rps")?;
        ensure!(rps > 0.0, "{}: no request completed", self.variant.label());
        Ok(rps)
    }
}

/// A port of loopback that was free a moment ago.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Waits until the service accepts connections on `port`, for at most 10 s.
fn wait_for_port(service: &mut Service, port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = service.0.try_wait()? {
            bail!("the service exited at start ({status})");
        }
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the service is not listening on port {port} after 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The agent of a livecov build answers its metadata, and its profile shows goldmark's
/// blocks as run (the check requests ran some).
fn check_agent(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let meta = loop {
        match get(port, "/livecov/v1/meta") {
            Ok(answer) => break answer,
            Err(err) if Instant::now() >= deadline => return Err(err),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    ensure!(
        meta.starts_with(b"HTTP/1.0 200") || meta.starts_with(b"HTTP/1.1 200"),
        "GET /livecov/v1/meta: {}",
        String::from_utf8_lossy(&meta[..meta.len().min(200)])
    );
    let profile = get(port, "/livecov/v1/profile")?;
    let profile = String::from_utf8_lossy(&profile);
    let ran = profile
        .lines()
        .filter(|l| l.starts_with(GOLDMARK))
        .filter(|l| l.rsplit(' ').next().is_some_and(|c| c != "0"))
        .count();
    ensure!(
        ran > 0,
        "GET /livecov/v1/profile: no block of goldmark ran:\n{}",
        &profile[..profile.len().min(500)]
    );
    Ok(())
}

/// The whole answer, head and body, of an HTTP/1.0 `GET path` to the agent on `port`.
fn get(port: u16, path: &str) -> Result<Vec<u8>> {
    let mut conn = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        conn,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {AGENT_TOKEN}\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn can_inline_counts_only_the_module_packages() {
        let output = "\
# github.com/yuin/goldmark/util
/x/util/util.go:24:6: can inline NewCopyOnWriteBuffer
/x/util/util.go:30:6: inlining call to foo
# github.com/yuin/goldmarkish
/y/a.go:1:6: can inline A
# github.com/yuin/goldmark
/x/markdown.go:9:6: can inline New
/c/register_3.go:5:6: can inline _livecov_register
# livecovbench/service
./main.go:3:6: can inline render
";
        assert_eq!(can_inline(output, GOLDMARK), 2);
    }
}
