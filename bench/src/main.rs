//! livecov-bench: how livecov compares with the Go toolchain.
//!
//! ```text
//! livecov-bench instrument [--runs N]         instrumentation throughput: livecov against
//!                                             `go tool cover` as `go build -cover` runs it
//! livecov-bench build [--cold N] [--warm N] [--module cobra|service]
//!                                             build time on a real module: `livecov build`
//!                                             against `go build` and `go build -cover`
//! livecov-bench runtime [--runs N] [--benchtime D]
//!                                             cost of the counters at run time: livecov's
//!                                             modes against `go test -covermode`
//! livecov-bench agent [--requests N] [--call-every N]
//!                                             the agent's counters against its text profile,
//!                                             with and without gzip, bytes and latency, for
//!                                             ~100,000 blocks
//! livecov-bench server [--snapshots N] [--diff-calls N] [--heartbeat-rounds N]
//!                                             the server: snapshots of 200 sparse instances,
//!                                             a 1,000,000-block diff, registration and
//!                                             heartbeat load, on SQLite and PostgreSQL
//! livecov-bench builds [--snapshots N] [--calls N]
//!                                             one service, many builds: a snapshot of two
//!                                             builds against one of one, and the cycle view
//!                                             over 50 builds of a 50,000-block service against
//!                                             one snapshot's export, on SQLite and PostgreSQL
//! livecov-bench dashboard [--requests N]      the dashboard's pages for a snapshot of a
//!                                             generated 100,000-block Go module, against the
//!                                             exports and `go tool cover -html`
//! livecov-bench service [--rounds N] [--duration S] [--warmup S] [--go-toolchain T]
//!                                             requests per second of a real HTTP service
//!                                             (goldmark, instrumented) built plain, with
//!                                             `go build -cover` and with `livecov build`,
//!                                             pinned and unpinned, in paired rounds
//! livecov-bench channel [--replicas 1,8,32] [--snapshots N] [--resets N] [--idle S]
//!                                             reading real agents over their channel against
//!                                             pulling them: snapshot and reset latency, and
//!                                             the idle requests and CPU of the server
//! ```
//!
//! Run it from a release build (`cargo run --release -p livecov-bench -- …`): debug figures
//! say nothing about livecov. `build`, `runtime`, `agent`, `server`, `builds`, `dashboard`,
//! `service` and `channel` drive the livecov executable, `LIVECOV_BIN` or else
//! `target/release/livecov` (`cargo build --release -p livecov`). `server` and `builds`
//! measure PostgreSQL too when `LIVECOV_BENCH_POSTGRES` names a server where it may create
//! databases (`scripts/postgres.sh` prints such a URL). `service` builds the Go module
//! `bench/service/` with the `go` on PATH, or GOTOOLCHAIN's.

mod agent;
mod build;
mod builds;
mod channel;
mod common;
mod dashboard;
mod instrument;
mod runtime;
mod server;
mod service;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// How livecov compares with the Go toolchain.
#[derive(Parser)]
#[command(name = "livecov-bench")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Instrumentation throughput: livecov against `go tool cover` as `go build -cover` runs it.
    Instrument(instrument::Args),
    /// Build time on a real module: `livecov build` against `go build` and `go build -cover`.
    Build(build::Args),
    /// Cost of the counters at run time: livecov's modes against `go test -covermode`.
    Runtime(runtime::Args),
    /// The agent's counters against its text profile, with and without gzip, bytes and
    /// latency.
    Agent(agent::Args),
    /// The server: snapshots, a 1,000,000-block diff, registration and heartbeat load.
    Server(server::Options),
    /// One service, many builds: mixed-build snapshots and the cycle view over 50 builds.
    Builds(builds::Options),
    /// The dashboard's pages against the exports and `go tool cover -html`.
    Dashboard(dashboard::Args),
    /// Requests per second of a real HTTP service built plain, with Go's coverage and
    /// with livecov's.
    Service(service::Args),
    /// Agents read over their own connection (the channel) against pulled ones.
    Channel(channel::Args),
}

fn main() {
    if let Err(err) = run(Cli::parse()) {
        eprintln!("livecov-bench: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.bench {
        Bench::Instrument(args) => instrument::run(args),
        Bench::Build(args) => build::run(args),
        Bench::Runtime(args) => runtime::run(args),
        Bench::Agent(args) => agent::run(args),
        Bench::Server(args) => server::run(args),
        Bench::Builds(args) => builds::run(args),
        Bench::Dashboard(args) => dashboard::run(args),
        Bench::Service(args) => service::run(args),
        Bench::Channel(args) => channel::run(args),
    }
}
