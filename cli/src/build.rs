//! `livecov build`: `go build` with coverage counters and the livecov agent inside.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use instrumenter::{Mode, Rules};

/// Build a Go program with coverage counters and the livecov agent.
///
/// Instruments every package of the main module that the build compiles (blocks identical to
/// `go tool cover`'s), adds the agent that serves the live counters over HTTP, and runs
/// `go build` with GO_BUILD_ARGS. Nothing in the source tree, go.mod, go.sum or go.work is written:
/// instrumented files live in the cache directory and reach `go` through `-overlay`. Files
/// that did not change since the last build are taken from the cache.
///
/// The binary's agent listens on LIVECOV_AGENT_ADDR (default: all interfaces, a free port) and
/// registers with LIVECOV_SERVER when set (or the server given here).
#[derive(clap::Args)]
#[command(after_help = "Example: livecov build --mode set -- -o bin/app ./cmd/app")]
pub struct Args {
    /// How counters count: set (reached or not), count, or atomic (count, exact under
    /// concurrency).
    #[arg(long, default_value = "set", value_parser = parse_mode)]
    mode: Mode,

    /// Service name the binary reports (LIVECOV_SERVICE overrides it at run time; default: the
    /// binary's base name).
    #[arg(long)]
    service: Option<String>,

    /// Server the binary registers with (LIVECOV_SERVER overrides it at run time;
    /// `host:port` means `http://host:port`).
    #[arg(long, value_name = "URL", value_parser = crate::client::server_url)]
    server: Option<String>,

    /// After a successful build, send its block metadata and the sources of its instrumented
    /// files to the server (--server, else LIVECOV_SERVER), for the dashboard's annotated
    /// source pages. The server checks each source against the build's blocks.
    #[arg(long)]
    upload_sources: bool,

    /// Token for --upload-sources, if the server has one: its agent or admin token.
    #[arg(
        long,
        env = "LIVECOV_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,

    /// Also instrument these packages outside the main module (comma-separated `go list`
    /// patterns, such as example.com/lib/...).
    #[arg(long, value_name = "PATTERNS", value_delimiter = ',')]
    coverpkg: Vec<String>,

    #[command(flatten)]
    exclude: Exclude,

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
    go: GoRules,

    /// Arguments for `go build`, after `--`.
    #[arg(last = true, value_name = "GO_BUILD_ARGS")]
    go_args: Vec<String>,
}

pub fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse()
}

/// `--go`: whose block rules to cut by, shared by `build`, `test` and `blocks`.
#[derive(clap::Args)]
pub struct GoRules {
    /// Cut blocks as the go tool cover of this Go release does (1.20 to 1.27) [default: the
    /// release of the Go that builds, from `go env GOVERSION`]. Only needed for a Go newer
    /// than livecov knows.
    #[arg(long = "go", value_name = "RELEASE", value_parser = parse_rules)]
    pub rules: Option<Rules>,
}

fn parse_rules(s: &str) -> Result<Rules, String> {
    s.parse()
}

/// `--exclude` and `--skip-generated`: files left uninstrumented, shared by `build` and `test`.
#[derive(clap::Args)]
pub struct Exclude {
    /// Leave these files uninstrumented (compiled as they are, counted nowhere): package
    /// patterns as go list takes them (example.com/m/internal/mocks/...) or, ending in .go,
    /// file globs on paths relative to the module root (**/*_mock.go, internal/gen/*.go).
    /// Repeatable and comma-separated; a pattern that matches no file is an error.
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    pub exclude: Vec<String>,

    /// Leave uninstrumented the files Go considers generated: a line `// Code generated …
    /// DO NOT EDIT.` before the package clause.
    #[arg(long)]
    pub skip_generated: bool,
}

impl Exclude {
    pub fn set(self, opts: &mut gobuild::Options) {
        opts.exclude = self.exclude;
        opts.skip_generated = self.skip_generated;
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let upload_to =
        if args.upload_sources {
            let server = args.server.clone().or_else(|| {
                std::env::var("LIVECOV_SERVER")
                    .ok()
                    .filter(|s| !s.is_empty())
            });
            Some(server.context(
                "--upload-sources needs a server: give --server URL or set LIVECOV_SERVER",
            )?)
        } else {
            None
        };
    let mut opts = gobuild::Options::new(args.mode, cache_dir(args.cache_dir)?);
    opts.service = args.service;
    opts.server = args.server;
    opts.coverpkg = args.coverpkg;
    opts.rules = args.go.rules;
    args.exclude.set(&mut opts);
    let dir = std::env::current_dir().context("cannot read the current directory")?;
    let terminal = std::io::stderr().is_terminal();
    if terminal {
        // Overwritten by the summary below once the files are instrumented.
        eprint!("livecov: listing packages and instrumenting…\r");
    }
    let prepared = gobuild::prepare(&opts, &dir, &args.go_args);
    if terminal {
        eprint!("\x1b[2K");
    }
    let prepared = prepared?;
    if terminal {
        eprintln!(
            "livecov: {} files in {} packages instrumented ({} from cache), {} blocks by the \
             rules of {}, build {}",
            prepared.meta.files.len(),
            prepared.packages,
            prepared.reused,
            prepared.meta.num_blocks(),
            prepared.rules.releases(),
            prepared.build_id.get(..12).unwrap_or(&prepared.build_id)
        );
    }
    if let Some(excluded) = &prepared.excluded {
        eprintln!("livecov: excluded {}", excluded.summary());
    }
    let status = prepared
        .command("build", &args.go_args)
        .status()
        .context("cannot run go build")?;
    if let (Some(server), true) = (upload_to, status.success()) {
        let up = crate::client::upload(&prepared, &server, args.token.as_deref())
            .context("the binary is built, but its sources were not uploaded")?;
        eprintln!(
            "livecov: sources of build {} uploaded to {server}: the server has {} of its {} files",
            up.build.get(..12).unwrap_or(&up.build),
            up.sources,
            up.files
        );
    }
    Ok(exit_code(status))
}

/// go has already explained a failure on stderr: exit as it did.
pub fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::from(1),
    }
}

/// The cache directory: the one given, else `$XDG_CACHE_HOME/livecov`, else
/// `~/.cache/livecov`.
pub fn cache_dir(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = given {
        return Ok(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("livecov"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("no cache directory: set LIVECOV_CACHE, XDG_CACHE_HOME or HOME")?;
    Ok(PathBuf::from(home).join(".cache").join("livecov"))
}
