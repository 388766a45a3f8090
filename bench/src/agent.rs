//! The agent's answers for a large build: bytes and latency of `GET /livecov/v1/counters`
//! (the compact encoding a server pulls) against `GET /livecov/v1/profile` (the text
//! coverprofile), each as it is and gzip-compressed (`Accept-Encoding: gzip`), with
//! `GET /livecov/v1/meta` (what a server fetches once per build, always gzip) for reference.
//!
//! The Go program is generated here: 10 packages of 20 files of 167 small functions, each
//! function three blocks (an `if` with a `return` on either side), about 100,000 blocks in
//! all. It is built with `livecov build --mode count`; at start-up it calls one function in
//! `--call-every` (default 100) 1,000 times with varying arguments, so that about 1% of the
//! counters are non-zero (10% with `--call-every 10`), with values up to 1,000, then says
//! `ready` and idles. The agent is given a token (`LIVECOV_TOKEN`) that every request shows.
//! Each request is a fresh HTTP/1.1 connection over loopback (`Connection: close`), timed from
//! connect to the end of the answer; a few untimed requests of each kind go first. A gzip
//! answer is checked to decompress to the uncompressed one.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::common::{self, median, percentile, secs};

const PACKAGES: usize = 10;
const FILES_PER_PACKAGE: usize = 20;
const FUNCS_PER_FILE: usize = 167;
const CALLS: usize = 1000;
const WARM_UP: usize = 5;
/// What is measured: a path, and whether the request accepts gzip.
const ENDPOINTS: [(&str, bool); 5] = [
    ("/livecov/v1/counters", false),
    ("/livecov/v1/counters", true),
    ("/livecov/v1/profile", false),
    ("/livecov/v1/profile", true),
    ("/livecov/v1/meta", true),
];
/// The token the agent is started with and every request shows.
const TOKEN: &str = "livecov-bench-agent";

/// The running program, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `livecov-bench agent`'s flags.
#[derive(clap::Args)]
pub struct Args {
    /// Requests per payload measured.
    #[arg(long, default_value_t = 50, value_parser = common::positive)]
    requests: usize,
    /// The program calls one function in this many (100: about 1% of the counters non-zero;
    /// 10: about 10%).
    #[arg(long, default_value_t = 100, value_parser = common::positive)]
    call_every: usize,
}

pub fn run(
    Args {
        requests,
        call_every,
    }: Args,
) -> Result<()> {
    let (livecov, scratch) = common::start()?;
    let scratch = scratch.path();
    let module = scratch.join("big");
    let (files, funcs) = generate(&module, call_every)?;

    let app = scratch.join("app");
    let build_time = common::timed_ok(
        Command::new(&livecov)
            .current_dir(&module)
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .args(["build", "--mode", "count", "--cache-dir"])
            .arg(scratch.join("livecov-cache"))
            .arg("--")
            .arg("-o")
            .arg(&app)
            .arg("."),
    )?;
    eprintln!("built in {:.1} s", secs(build_time));

    let port = free_port()?;
    let mut child = Command::new(&app)
        .env("LIVECOV_AGENT_ADDR", format!("127.0.0.1:{port}"))
        .env_remove("LIVECOV_SERVER")
        .env("LIVECOV_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", app.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let running = Running(child);
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first)?;
    if !first.starts_with("ready") {
        bail!("the program did not start: {first:?}");
    }
    wait_for_agent(port)?;

    // endpoint → (body bytes, latency in ms of each request)
    let mut measured: Vec<(usize, Vec<f64>)> = Vec::new();
    for (path, gzip) in ENDPOINTS {
        let mut bytes = 0;
        let mut times = Vec::new();
        for i in 0..WARM_UP + requests {
            let start = Instant::now();
            let body = get(port, path, gzip)?;
            let took = start.elapsed();
            if i >= WARM_UP {
                times.push(secs(took) * 1e3);
            }
            bytes = body.len();
        }
        measured.push((bytes, times));
    }

    // What the answers hold, to be sure all describe the same counters, compressed or not.
    let profile = String::from_utf8(get(port, "/livecov/v1/profile", false)?)?;
    let profile_gz = report::gzip::gunzip(&get(port, "/livecov/v1/profile", true)?, 1 << 30)?;
    if profile_gz != profile.as_bytes() {
        bail!("the gzip profile does not decompress to the profile");
    }
    let blocks = profile.lines().skip(1).count();
    let nonzero = profile
        .lines()
        .skip(1)
        .filter(|l| !l.ends_with(" 0"))
        .count();
    let counters = get(port, "/livecov/v1/counters", false)?;
    let counters_gz = report::gzip::gunzip(&get(port, "/livecov/v1/counters", true)?, 1 << 30)?;
    if counters_gz != counters {
        bail!("the gzip counters do not decompress to the counters");
    }
    let counters = decode_counters(&counters)?;
    if counters.0 != blocks || counters.1 != nonzero {
        bail!(
            "counters hold {} counters, {} non-zero; the profile {blocks} blocks, {nonzero} non-zero",
            counters.0,
            counters.1
        );
    }
    drop(running);

    println!("## Input\n");
    println!("| packages | files | functions | blocks | non-zero counters |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {PACKAGES} | {files} | {funcs} | {blocks} | {nonzero} ({:.1}%) |",
        100.0 * nonzero as f64 / blocks as f64,
    );
    println!("\n## Results ({requests} requests each; p99 by nearest rank)\n");
    println!("| endpoint | `Accept-Encoding` | body bytes | median ms | p99 ms |");
    println!("|---|---|---:|---:|---:|");
    for ((path, gzip), (bytes, times)) in ENDPOINTS.iter().zip(&measured) {
        println!(
            "| `GET {path}` | {} | {bytes} | {:.2} | {:.2} |",
            if *gzip { "gzip" } else { "none" },
            median(times),
            percentile(times, 99.0)
        );
    }
    let (counters, counters_gz, profile, profile_gz) =
        (&measured[0], &measured[1], &measured[2], &measured[3]);
    println!(
        "\nprofile / counters: {:.0}× the bytes, {:.0}× the median time",
        profile.0 as f64 / counters.0 as f64,
        median(&profile.1) / median(&counters.1)
    );
    for (what, plain, gz) in [
        ("profile", profile, profile_gz),
        ("counters", counters, counters_gz),
    ] {
        println!(
            "{what} gzip / none: {:.2}× the bytes, {:.2}× the median time",
            gz.0 as f64 / plain.0 as f64,
            median(&gz.1) / median(&plain.1)
        );
    }
    common::print_machine("agent", ("livecov", &livecov))
}

/// Writes the Go module; returns how many files and functions it has.
fn generate(module: &Path, call_every: usize) -> Result<(usize, usize)> {
    std::fs::create_dir_all(module)?;
    std::fs::write(
        module.join("go.mod"),
        "module livecovbench/big\n\ngo 1.22\n",
    )?;
    let mut main = String::from("package main\n\nimport (\n\t\"fmt\"\n\t\"time\"\n\n");
    let mut calls = String::new();
    for p in 0..PACKAGES {
        let dir = module.join(format!("p{p:02}"));
        std::fs::create_dir_all(&dir)?;
        let mut hit = format!(
            "package p{p:02}\n\n// Hit calls one function in {call_every}.\nfunc Hit(x int) int {{\n\ts := 0\n"
        );
        for f in 0..FILES_PER_PACKAGE {
            let mut src = format!("package p{p:02}\n");
            for i in 0..FUNCS_PER_FILE {
                let k = f * FUNCS_PER_FILE + i;
                let name = format!("F{f:02}_{i:03}");
                write!(
                    src,
                    "\nfunc {name}(x int) int {{\n\tif x > {} {{\n\t\treturn x - {k}\n\t}}\n\treturn x + {i}\n}}\n",
                    k % CALLS
                )?;
                if k.is_multiple_of(call_every) {
                    writeln!(hit, "\ts += {name}(x)")?;
                }
            }
            std::fs::write(dir.join(format!("f{f:02}.go")), src)?;
        }
        hit.push_str("\treturn s\n}\n");
        std::fs::write(dir.join("hit.go"), hit)?;
        writeln!(main, "\t\"livecovbench/big/p{p:02}\"")?;
        writeln!(calls, "\t\ts += p{p:02}.Hit(i)")?;
    }
    write!(
        main,
        ")\n\nfunc main() {{\n\ts := 0\n\tfor i := 0; i < {CALLS}; i++ {{\n{calls}\t}}\n\
         \tfmt.Println(\"ready\", s)\n\tfor {{\n\t\ttime.Sleep(time.Hour)\n\t}}\n}}\n"
    )?;
    std::fs::write(module.join("main.go"), main)?;
    let files = PACKAGES * (FILES_PER_PACKAGE + 1) + 1;
    Ok((files, PACKAGES * FILES_PER_PACKAGE * FUNCS_PER_FILE))
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for_agent(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match get(port, ENDPOINTS[0].0, false) {
            Ok(_) => return Ok(()),
            Err(err) if Instant::now() > deadline => {
                return Err(err.context("the agent did not answer within 30 s"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// `GET path` on a fresh connection, accepting gzip if `gzip`; the body of a 200 answer, as
/// sent (compressed if it says so).
fn get(port: u16, path: &str, gzip: bool) -> Result<Vec<u8>> {
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    let accept = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n\
         {accept}Connection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    if !head.starts_with("HTTP/1.1 200 ") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or_default());
    }
    let body = answer.split_off(split + 4);
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .context("no Content-Length")?;
    if length != body.len() {
        bail!("GET {path}: {} bytes, Content-Length {length}", body.len());
    }
    let gzipped = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("content-encoding") && v.trim().eq_ignore_ascii_case("gzip")
        })
    });
    if gzipped != gzip && !path.ends_with("/meta") {
        bail!("GET {path}: gzip asked {gzip}, answered {gzipped}");
    }
    Ok(body)
}

/// The number of counters and of non-zero ones in a counters answer (`docs/COUNTERS.md`).
fn decode_counters(body: &[u8]) -> Result<(usize, usize)> {
    fn uvarint(b: &mut &[u8]) -> Result<u64> {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let (&byte, rest) = b.split_first().context("truncated varint")?;
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                bail!("varint too long");
            }
        }
    }
    let mut b = body.strip_prefix(b"LCC1").context("no LCC1 magic")?;
    let id_len = uvarint(&mut b)? as usize;
    b = b.get(id_len + 1..).context("truncated header")?;
    let (mut total, mut nonzero) = (0, 0);
    for _ in 0..uvarint(&mut b)? {
        let n = uvarint(&mut b)? as usize;
        let mut left = n;
        while left > 0 {
            let zeros = uvarint(&mut b)? as usize;
            let k = uvarint(&mut b)? as usize;
            for _ in 0..k {
                uvarint(&mut b)?;
            }
            left = left
                .checked_sub(zeros + k)
                .context("a run overshoots its file")?;
            nonzero += k;
        }
        total += n;
    }
    if !b.is_empty() {
        bail!("{} trailing bytes", b.len());
    }
    Ok((total, nonzero))
}
