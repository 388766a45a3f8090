//! The `livecov` executable: a thin layer of argument parsing over the livecov crates.

mod blocks;
mod build;
mod client;
mod server;
mod sources;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Coverage of running Go services.
///
/// livecov builds Go programs with coverage counters cut exactly where `go tool cover` cuts
/// its blocks, and with an agent that serves the running program's live counters over HTTP.
/// `livecov server` registers those programs, pulls their counters on request and stores them
/// as snapshots that can be diffed and exported; `services`, `snapshots`, `snapshot`, `reset`,
/// `session`, `diff`, `cycle`, `collect` and `report` ask a server from the command line.
#[derive(Parser)]
#[command(name = "livecov", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Build(build::Args),
    Test(test::Args),
    Server(server::Args),
    Services(client::ServicesArgs),
    Snapshots(client::SnapshotsArgs),
    Snapshot(client::SnapshotArgs),
    Reset(client::ResetArgs),
    Session(client::SessionArgs),
    Diff(client::DiffArgs),
    Cycle(client::CycleArgs),
    Collect(client::CollectArgs),
    Report(client::ReportArgs),
    Blocks(blocks::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Blocks(args) => blocks::run(args).map(|()| ExitCode::SUCCESS),
        Command::Build(args) => build::run(args),
        Command::Test(args) => test::run(args),
        Command::Server(args) => server::run(args).map(|()| ExitCode::SUCCESS),
        Command::Services(args) => client::services(args).map(|()| ExitCode::SUCCESS),
        Command::Snapshots(args) => client::snapshots(args).map(|()| ExitCode::SUCCESS),
        Command::Snapshot(args) => client::snapshot(args).map(|()| ExitCode::SUCCESS),
        Command::Reset(args) => client::reset(args).map(|()| ExitCode::SUCCESS),
        Command::Session(args) => client::session(args).map(|()| ExitCode::SUCCESS),
        Command::Diff(args) => client::diff(args).map(|()| ExitCode::SUCCESS),
        Command::Cycle(args) => client::cycle(args).map(|()| ExitCode::SUCCESS),
        Command::Collect(args) => client::collect(args).map(|()| ExitCode::SUCCESS),
        Command::Report(args) => client::report(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("livecov: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// `livecov blocks … | head` is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
