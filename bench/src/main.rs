//! livecov-bench: how livecov compares with the Go toolchain.
//!
//! ```text
//! livecov-bench instrument [--runs N]   instrumentation throughput: livecov against
//!                                       `go tool cover` as `go build -cover` runs it
//! ```
//!
//! Run it from a release build (`cargo run --release -p livecov-bench -- …`): debug figures
//! say nothing about livecov.

mod instrument;

use anyhow::{Result, bail};

fn main() {
    if let Err(err) = run() {
        eprintln!("livecov-bench: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        bail!("usage: livecov-bench instrument [--runs N]");
    };
    match cmd.as_str() {
        "instrument" => instrument::run(rest),
        other => bail!("unknown benchmark {other:?}: want instrument"),
    }
}
