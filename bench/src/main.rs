//! livecov-bench: how livecov compares with the Go toolchain.
//!
//! ```text
//! livecov-bench instrument [--runs N]         instrumentation throughput: livecov against
//!                                             `go tool cover` as `go build -cover` runs it
//! livecov-bench build [--cold N] [--warm N]   build time on a real module: `livecov build`
//!                                             against `go build` and `go build -cover`
//! livecov-bench runtime [--runs N] [--benchtime D]
//!                                             cost of the counters at run time: livecov's
//!                                             modes against `go test -covermode`
//! livecov-bench agent [--requests N]          the agent's counters against its text profile,
//!                                             bytes and latency, for ~100,000 blocks
//! livecov-bench server [--snapshots N] [--diff-calls N] [--heartbeat-rounds N]
//!                                             the server: snapshots of 200 sparse instances,
//!                                             a 1,000,000-block diff, registration and
//!                                             heartbeat load, on SQLite and PostgreSQL
//! livecov-bench dashboard [--requests N]      the dashboard's pages for a snapshot of a
//!                                             generated 100,000-block Go module, against the
//!                                             exports and `go tool cover -html`
//! ```
//!
//! Run it from a release build (`cargo run --release -p livecov-bench -- …`): debug figures
//! say nothing about livecov. `build`, `runtime`, `agent`, `server` and `dashboard` drive the
//! livecov executable, `LIVECOV_BIN` or else `target/release/livecov` (`cargo build --release
//! -p livecov`). `server` measures PostgreSQL too when `LIVECOV_BENCH_POSTGRES` names a server
//! where it may create databases (`scripts/postgres.sh` prints such a URL).

mod agent;
mod build;
mod common;
mod dashboard;
mod instrument;
mod runtime;
mod server;

use anyhow::{Result, bail};

const BENCHMARKS: &str = "instrument, build, runtime, agent, server or dashboard";

fn main() {
    if let Err(err) = run() {
        eprintln!("livecov-bench: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        bail!("usage: livecov-bench BENCHMARK [OPTIONS]: BENCHMARK is {BENCHMARKS}");
    };
    match cmd.as_str() {
        "instrument" => instrument::run(rest),
        "build" => build::run(rest),
        "runtime" => runtime::run(rest),
        "agent" => agent::run(rest),
        "server" => server::run(rest),
        "dashboard" => dashboard::run(rest),
        other => bail!("unknown benchmark {other:?}: want {BENCHMARKS}"),
    }
}
