//! The commands that talk to a livecov server over its HTTP API: `services`, `snapshots`,
//! `snapshot`, `reset`, `diff` (tables by default, the API's JSON with `--json`), and `report`
//! (a snapshot's coverage in a tool's format).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use server::types::{Diff, ServiceList, SnapshotDetail, SnapshotList, Totals};

/// How to reach the server; shared by every client command.
#[derive(clap::Args, Clone)]
pub struct Endpoint {
    /// The livecov server.
    #[arg(
        long,
        env = "LIVECOV_SERVER",
        default_value = "http://127.0.0.1:7777",
        value_name = "URL"
    )]
    server: String,

    /// Admin token, for snapshot and reset on a server that requires one.
    #[arg(
        long,
        env = "LIVECOV_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
}

/// The server, and whether to print its JSON answer: the commands that print tables.
#[derive(clap::Args, Clone)]
pub struct Conn {
    #[command(flatten)]
    endpoint: Endpoint,

    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
}

/// List the services the server knows, with their live instances and latest coverage.
#[derive(clap::Args)]
pub struct ServicesArgs {
    #[command(flatten)]
    conn: Conn,
}

/// List the stored snapshots of a service, newest first.
#[derive(clap::Args)]
pub struct SnapshotsArgs {
    service: String,
    /// At most this many.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[command(flatten)]
    conn: Conn,
}

/// Pull the live counters of every instance of a service and store them as a snapshot.
#[derive(clap::Args)]
pub struct SnapshotArgs {
    service: String,
    /// A label for the snapshot, such as the test round.
    #[arg(long)]
    label: Option<String>,
    /// Reset the instances' counters in the same step (nothing is lost: what the reset takes
    /// is what the snapshot stores).
    #[arg(long)]
    reset: bool,
    #[command(flatten)]
    conn: Conn,
}

/// Reset the counters of every live instance of a service; the counts taken are stored as a
/// snapshot.
#[derive(clap::Args)]
pub struct ResetArgs {
    service: String,
    /// A label for the snapshot that keeps the counts taken.
    #[arg(long)]
    label: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

/// Show what snapshot B covers that snapshot A does not, and the reverse.
#[derive(clap::Args)]
pub struct DiffArgs {
    a: u64,
    b: u64,
    #[command(flatten)]
    conn: Conn,
}

/// Export a snapshot's coverage as a Go coverprofile, an lcov tracefile, Cobertura XML or
/// JSON, to a file or stdout.
#[derive(clap::Args)]
pub struct ReportArgs {
    snapshot: u64,
    /// The format: `go` for `go tool cover`, `lcov` for genhtml, `cobertura` for CI systems,
    /// `json` for scripts.
    #[arg(long, value_enum, default_value_t = ReportFormat::Go)]
    format: ReportFormat,
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Take this prefix (such as the module path and `/`) off file names, so that tools find
    /// the sources relative to a directory; not for `go`.
    #[arg(long, value_name = "PREFIX")]
    strip: Option<String>,
    /// Cobertura's source directory, the one file names are relative to (`.` when not given).
    #[arg(long, value_name = "DIR")]
    source: Option<String>,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Go,
    Lcov,
    Cobertura,
    Json,
}

impl Conn {
    fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(T, String)> {
        let text = self.endpoint.fetch(method, path, body)?;
        let value = serde_json::from_str(&text)
            .with_context(|| format!("the server's answer to {path} does not parse"))?;
        Ok((value, text))
    }
}

impl Endpoint {
    /// The body of the server's successful answer; an error answer is an error.
    fn fetch(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<String> {
        let base = self.server.trim_end_matches('/');
        let url = format!("{base}{path}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        rt.block_on(async {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(300))
                .build()
                .context("making an HTTP client")?;
            let mut req = client.request(method, &url);
            if let Some(token) = &self.token {
                req = req.bearer_auth(token);
            }
            if let Some(body) = body {
                req = req.json(&body);
            }
            let resp = req.send().await.with_context(|| {
                format!(
                    "cannot reach the livecov server at {base} (start one with `livecov server`, \
                     or point --server / LIVECOV_SERVER at it)"
                )
            })?;
            let status = resp.status();
            let text = resp.text().await.context("reading the server's answer")?;
            if !status.is_success() {
                let msg = serde_json::from_str::<server::types::ErrorBody>(&text)
                    .map(|e| e.error)
                    .unwrap_or(text);
                bail!("the server answered {status}: {msg}");
            }
            Ok(text)
        })
    }
}

fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn coverage(t: &Totals) -> String {
    format!(
        "{:.1}% ({}/{} statements)",
        t.coverage, t.stmts_covered, t.stmts
    )
}

/// Prints rows as columns padded to their widest cell.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn services(args: ServicesArgs) -> Result<()> {
    let (list, raw): (ServiceList, _) =
        args.conn
            .call(reqwest::Method::GET, "/api/v1/services", None)?;
    if args.conn.json {
        println!("{raw}");
        return Ok(());
    }
    if list.services.is_empty() {
        println!(
            "no services yet: start a binary built with `livecov build` and LIVECOV_SERVER set"
        );
        return Ok(());
    }
    let mut rows = vec![vec![
        "SERVICE".to_string(),
        "LIVE".into(),
        "INSTANCES".into(),
        "BUILDS".into(),
        "LATEST".into(),
        "COVERAGE".into(),
    ]];
    for s in &list.services {
        let (latest, cov) = match &s.latest_snapshot {
            Some(l) => (format!("#{} {}", l.id, l.taken_at), coverage(&l.totals)),
            None => ("-".into(), "-".into()),
        };
        rows.push(vec![
            s.name.clone(),
            s.live_instances.to_string(),
            s.instances.to_string(),
            s.builds.len().to_string(),
            latest,
            cov,
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

pub fn snapshots(args: SnapshotsArgs) -> Result<()> {
    let path = format!(
        "/api/v1/services/{}/snapshots?limit={}",
        path_segment(&args.service),
        args.limit
    );
    let (list, raw): (SnapshotList, _) = args.conn.call(reqwest::Method::GET, &path, None)?;
    if args.conn.json {
        println!("{raw}");
        return Ok(());
    }
    let mut rows = vec![vec![
        "ID".to_string(),
        "TAKEN".into(),
        "LABEL".into(),
        "RESET".into(),
        "INSTANCES".into(),
        "COVERAGE".into(),
    ]];
    for s in &list.snapshots {
        rows.push(vec![
            s.id.to_string(),
            s.taken_at.clone(),
            s.label.clone().unwrap_or_else(|| "-".into()),
            if s.reset { "yes" } else { "no" }.into(),
            format!("{} ok, {} failed", s.instances_ok, s.instances_failed),
            coverage(&s.totals),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

fn print_snapshot(d: &SnapshotDetail) {
    let s = &d.snapshot;
    println!(
        "snapshot {} of {}{}: {}",
        s.id,
        s.service,
        if s.reset { " (counters reset)" } else { "" },
        coverage(&s.totals)
    );
    let mut rows = vec![vec![
        "INSTANCE".to_string(),
        "ADDRESS".into(),
        "OUTCOME".into(),
        "MS".into(),
        "MESSAGE".into(),
    ]];
    for i in &d.instance_results {
        rows.push(vec![
            i.instance.clone(),
            i.address.clone(),
            i.outcome.clone(),
            i.duration_ms.to_string(),
            i.message.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", table(&rows));
}

fn take(conn: &Conn, label: Option<String>, path: String) -> Result<()> {
    let body = serde_json::json!({ "label": label });
    let (detail, raw): (SnapshotDetail, _) = conn.call(reqwest::Method::POST, &path, Some(body))?;
    if conn.json {
        println!("{raw}");
    } else {
        print_snapshot(&detail);
    }
    Ok(())
}

pub fn snapshot(args: SnapshotArgs) -> Result<()> {
    let path = format!(
        "/api/v1/services/{}/snapshots{}",
        path_segment(&args.service),
        if args.reset { "?reset=true" } else { "" }
    );
    take(&args.conn, args.label, path)
}

pub fn reset(args: ResetArgs) -> Result<()> {
    let path = format!("/api/v1/services/{}/reset", path_segment(&args.service));
    take(&args.conn, args.label, path)
}

pub fn diff(args: DiffArgs) -> Result<()> {
    let path = format!("/api/v1/snapshots/{}/diff/{}", args.a, args.b);
    let (d, raw): (Diff, _) = args.conn.call(reqwest::Method::GET, &path, None)?;
    if args.conn.json {
        println!("{raw}");
        return Ok(());
    }
    let t = &d.total;
    println!(
        "snapshot {} → {}: {} blocks ({} statements) newly covered, {} blocks ({} statements) no longer covered",
        d.a,
        d.b,
        t.newly_covered,
        t.newly_covered_stmts,
        t.no_longer_covered,
        t.no_longer_covered_stmts
    );
    println!(
        "coverage {:.1}% → {:.1}% of {} statements",
        server::types::percent(t.a_stmts_covered, t.stmts),
        server::types::percent(t.b_stmts_covered, t.stmts),
        t.stmts
    );
    for build in &d.builds {
        for f in &build.files {
            for (sign, blocks) in [("+", &f.newly_covered), ("-", &f.no_longer_covered)] {
                for b in blocks {
                    println!(
                        "{sign} {}:{}.{},{}.{} {} {}",
                        f.file, b.start_line, b.start_col, b.end_line, b.end_col, b.stmts, b.func
                    );
                }
            }
        }
    }
    for (which, builds) in [(d.a, &d.only_in_a), (d.b, &d.only_in_b)] {
        for b in builds {
            println!("build {b} is only in snapshot {which}: not compared");
        }
    }
    Ok(())
}

pub fn report(args: ReportArgs) -> Result<()> {
    let format = match args.format {
        ReportFormat::Go => "go",
        ReportFormat::Lcov => "lcov",
        ReportFormat::Cobertura => "cobertura",
        ReportFormat::Json => "json",
    };
    let mut path = format!(
        "/api/v1/snapshots/{}/profile?format={format}",
        args.snapshot
    );
    for (name, value) in [("strip", &args.strip), ("source", &args.source)] {
        if let Some(v) = value {
            let _ = write!(path, "&{name}={}", path_segment(v));
        }
    }
    let text = args.endpoint.fetch(reqwest::Method::GET, &path, None)?;
    match &args.output {
        Some(file) => {
            std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}
