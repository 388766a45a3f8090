//! `livecov test`: `go test` with livecov's counters, writing a Go coverprofile.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use instrumenter::Mode;

use crate::build::{Exclude, GoRules, cache_dir, exit_code, parse_mode};

/// Run `go test` with livecov's coverage counters and write a Go coverprofile.
///
/// The packages under test are instrumented exactly as `livecov build` does it, and each test
/// binary reports the counters of its own package when its tests are done, as
/// `go test -coverprofile` does. The profile lists every package the patterns name, tested or
/// not, in `go test -coverprofile`'s order, and is written even when tests fail.
#[derive(clap::Args)]
#[command(after_help = "Example: livecov test --mode count --coverprofile cover.out -- ./...")]
pub struct Args {
    /// How counters count: set, count, or atomic.
    #[arg(long, default_value = "set", value_parser = parse_mode)]
    mode: Mode,

    /// Where to write the coverprofile.
    #[arg(long, value_name = "FILE", default_value = "coverage.out")]
    coverprofile: PathBuf,

    /// Where instrumented files are cached [default: $XDG_CACHE_HOME/livecov or
    /// ~/.cache/livecov].
    #[arg(
        long,
        env = "LIVECOV_CACHE",
        hide_env_values = true,
        value_name = "DIR"
    )]
    cache_dir: Option<PathBuf>,

    #[command(flatten)]
    exclude: Exclude,

    #[command(flatten)]
    go: GoRules,

    /// Arguments for `go test`, after `--`.
    #[arg(last = true, value_name = "GO_TEST_ARGS")]
    go_args: Vec<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let mut opts = gobuild::Options::new(args.mode, cache_dir(args.cache_dir)?);
    opts.rules = args.go.rules;
    args.exclude.set(&mut opts);
    let dir = std::env::current_dir().context("cannot read the current directory")?;
    let status = gobuild::test(&opts, &dir, &args.go_args, &args.coverprofile)?;
    Ok(exit_code(status))
}
