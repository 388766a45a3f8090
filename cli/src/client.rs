//! The commands that talk to a livecov server over its HTTP API: `services`, `snapshots`,
//! `snapshot`, `reset`, `session`, `diff` (tables by default, the API's JSON with `--json`),
//! and `report` (a snapshot's coverage in a tool's format).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use report::types::{
    Cycle, Diff, ServiceList, SessionInfo, SessionList, SnapshotDetail, SnapshotList, Totals,
};
use serde::de::DeserializeOwned;

/// How to reach the server; shared by every client command.
#[derive(clap::Args, Clone)]
pub struct Endpoint {
    /// The livecov server (`host:port` means `http://host:port`).
    #[arg(
        long,
        value_parser = server_url,
        env = "LIVECOV_SERVER",
        hide_env_values = true,
        default_value = "http://127.0.0.1:7777",
        value_name = "URL"
    )]
    server: String,

    /// Admin token: needed by snapshot, reset and session on a server that has one; reading
    /// needs none.
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
    /// The service, as `livecov services` lists it.
    service: String,
    /// At most this many.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Only the snapshots taken with this selector (`env=staging`).
    #[arg(long, value_name = "LABELS")]
    selector: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

/// Read the live counters of every instance of a service and store them as a snapshot: the
/// coverage of the current round (since the last reset), and since the instances started.
#[derive(clap::Args)]
pub struct SnapshotArgs {
    /// The service, as `livecov services` lists it.
    service: String,
    /// A label for the snapshot, such as the test round.
    #[arg(long)]
    label: Option<String>,
    /// End the round in the same step, as `livecov reset` does.
    #[arg(long, conflicts_with = "selector")]
    reset: bool,
    /// Read only the live instances with these labels (`env=staging,region=eu`): the
    /// coverage of one environment, version or region.
    #[arg(long, value_name = "LABELS")]
    selector: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

/// End a service's round and begin a new one; the round that ended is stored as a snapshot.
///
/// No counter is zeroed and nothing is lost: the instances keep every count, and the server
/// records where the new round began, so that later snapshots measure what ran since. What
/// ran since the instances started stays in every snapshot's deploy view.
#[derive(clap::Args)]
pub struct ResetArgs {
    /// The service, as `livecov services` lists it.
    service: String,
    /// A label for the snapshot of the round that ended.
    #[arg(long)]
    label: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

/// Named windows of a service's coverage: what ran while a session was open.
///
/// Sessions may overlap (two testers on one environment each start their own) and leave the
/// service's round alone. Stopping one stores its snapshot, usable in diff, report and patch
/// coverage like any other.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  livecov session start greeter checkout-flow
  livecov session stop greeter checkout-flow
  livecov session list greeter")]
pub struct SessionArgs {
    #[command(subcommand)]
    action: SessionAction,
}

#[derive(clap::Subcommand)]
enum SessionAction {
    /// Start a session (if one of that name is open, say so and leave it be).
    Start {
        /// The service.
        service: String,
        /// The session's name: 1 to 256 bytes, none of them control characters.
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Stop a session and store what ran while it was open as a snapshot.
    Stop {
        /// The service.
        service: String,
        /// The session's name.
        name: String,
        /// A label for the session's snapshot.
        #[arg(long)]
        label: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List a service's sessions, newest first.
    List {
        /// The service.
        service: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Show what snapshot B covers that snapshot A does not, and the reverse.
#[derive(clap::Args)]
pub struct DiffArgs {
    /// The earlier snapshot's id (`livecov snapshots` lists them).
    a: u64,
    /// The later snapshot's id.
    b: u64,
    /// Compare the snapshots' `window` (their rounds or sessions) or their `deploy` view
    /// (all the instances ran since they started: start-up code a reset left behind does not
    /// show as lost).
    #[arg(long, value_enum, default_value = "window")]
    view: ReportView,
    /// Compare against this build (its id) instead of the newest of snapshot B's builds.
    #[arg(long, value_name = "ID")]
    build: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

/// Show the coverage of a QA cycle: every snapshot of a service from one to the newest (or
/// --to), across redeploys, rolling updates and resets, against the newest build.
///
/// A statement counts as covered if any snapshot of the cycle covered it on any build whose
/// function is unchanged in the newest build. Each function is `measured` (covered on the
/// newest build), `carried` (covered on an earlier build of the same code only), `changed`
/// (edited or added, not covered since) or `uncovered`. With --format, write the cycle's
/// coverage as an export instead.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  livecov cycle greeter --from 12\n  livecov cycle greeter --from 12 --format go -o cycle.cov"
)]
pub struct CycleArgs {
    /// The service.
    service: String,
    /// The cycle's first snapshot (`livecov snapshots` lists them).
    #[arg(long, value_name = "ID")]
    from: u64,
    /// Its last snapshot [default: the newest].
    #[arg(long, value_name = "ID")]
    to: Option<u64>,
    /// Report against this build (its id) instead of the newest.
    #[arg(long, value_name = "ID")]
    build: Option<String>,
    /// Which coverage of each snapshot: `window` (its round or session) or `deploy`.
    #[arg(long, value_enum, default_value = "window")]
    view: ReportView,
    /// Write the cycle's coverage in this format instead of the summary.
    #[arg(long, value_enum)]
    format: Option<ReportFormat>,
    /// With --format: write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE", requires = "format")]
    output: Option<PathBuf>,
    /// With --format: take this prefix off file names (not for `go`).
    #[arg(long, value_name = "PREFIX", requires = "format")]
    strip: Option<String>,
    /// With --format: leave these files out of the export, before anything is counted:
    /// package patterns (example.com/m/internal/mocks/...) or globs ending in .go matched
    /// against file names (**/*_mock.go). Repeatable and comma-separated.
    #[arg(
        long,
        value_name = "PATTERN",
        value_delimiter = ',',
        requires = "format"
    )]
    exclude: Vec<String>,
    #[command(flatten)]
    conn: Conn,
}

/// Upload the counters that agents kept in a LIVECOV_DIR: what processes that died (killed,
/// crashed, ended by os.Exit or a signal) ran since their last pull.
///
/// Sends each build's metadata (`<build>.meta.json.gz`) and each process's counters
/// (`<service>-<instance>.lcc`) to the server, which keeps per instance the most it was
/// sent: collecting a directory twice, or files the agent also delivered, changes nothing.
/// The processes' counts join the snapshots of the round they ran in.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  livecov collect /var/lib/livecov")]
pub struct CollectArgs {
    /// The directory, as LIVECOV_DIR named it.
    dir: PathBuf,
    #[command(flatten)]
    conn: Conn,
}

/// Export a snapshot's coverage as a Go coverprofile, an lcov tracefile, Cobertura XML, JSON
/// or an HTML report, to a file or stdout; or, with --diff-base, report its patch coverage.
///
/// With --diff-base REV, run in the service's git checkout: of the executable lines that
/// `git diff REV` adds or modifies, how many the snapshot covers, per file with the uncovered
/// line ranges (a table, or the server's JSON with --format json); or, with --format lcov or
/// cobertura, an export that holds only those lines (and the functions they are in).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  livecov report 3 --format lcov -o round-2.info\n  livecov report 3 --diff-base origin/main\n  livecov report 3 --diff-base origin/main --format cobertura -o patch.xml"
)]
pub struct ReportArgs {
    /// The snapshot's id (`livecov snapshots` lists them).
    snapshot: u64,
    /// The format: `go` for `go tool cover`, `lcov` for genhtml, `cobertura` for CI systems,
    /// `json` for scripts, `html` a self-contained page for people (with each file's source
    /// annotated, when run in the service's Go module and the source still matches the
    /// snapshot); with --diff-base, `json`, `lcov` or `cobertura` of the changed lines only
    /// [default: go; with --diff-base, a table].
    #[arg(long, value_enum)]
    format: Option<ReportFormat>,
    /// Report patch coverage: the lines `git diff REV` (in the current directory's git
    /// checkout) adds or modifies.
    #[arg(long, value_name = "REV")]
    diff_base: Option<String>,
    /// With --diff-base: the module path that the diff's paths are relative to, when the
    /// checkout's root is not the module's (file names in the build are import paths).
    #[arg(long, value_name = "PATH", requires = "diff_base")]
    module: Option<String>,
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Take this prefix (such as the module path and `/`) off file names, so that tools find
    /// the sources relative to a directory; not for `go`, nor --diff-base's table and json.
    #[arg(long, value_name = "PREFIX")]
    strip: Option<String>,
    /// Cobertura's source directory, the one file names are relative to (`.` when not given).
    #[arg(long, value_name = "DIR")]
    source: Option<String>,
    /// Which coverage of the snapshot: `window` (its round or session) or `deploy` (all the
    /// instances ran since they started); not with --diff-base.
    #[arg(
        long,
        value_enum,
        default_value = "window",
        conflicts_with = "diff_base"
    )]
    view: ReportView,
    /// Report against this build (its id) instead of the newest the snapshot's instances
    /// ran; not with --diff-base.
    #[arg(long, value_name = "ID", conflicts_with = "diff_base")]
    build: Option<String>,
    /// Leave these files out of the report before anything is counted: package patterns as
    /// go list takes them (example.com/m/internal/mocks/...) or, ending in .go, globs on file
    /// names (**/*_mock.go). Repeatable and comma-separated; not with --diff-base.
    #[arg(
        long,
        value_name = "PATTERN",
        value_delimiter = ',',
        conflicts_with = "diff_base"
    )]
    exclude: Vec<String>,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum ReportView {
    Window,
    Deploy,
}

impl ReportView {
    fn as_str(self) -> &'static str {
        match self {
            ReportView::Window => "window",
            ReportView::Deploy => "deploy",
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Go,
    Lcov,
    Cobertura,
    Json,
    Html,
}

impl ReportFormat {
    fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Go => "go",
            ReportFormat::Lcov => "lcov",
            ReportFormat::Cobertura => "cobertura",
            ReportFormat::Json => "json",
            ReportFormat::Html => "html",
        }
    }
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
    /// The server at `server`, with `token` for the requests that need one.
    pub fn new(server: &str, token: Option<&str>) -> Endpoint {
        Endpoint {
            server: server.to_string(),
            token: token.map(str::to_string),
        }
    }

    /// The body of the server's successful answer to a JSON request; an error answer is an
    /// error.
    fn fetch(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<String> {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.send(method, path, body)
    }

    /// The same with a text body.
    fn fetch_text(&self, method: reqwest::Method, path: &str, body: String) -> Result<String> {
        self.send(
            method,
            path,
            Some(("text/plain; charset=utf-8", body.into_bytes())),
        )
    }

    /// `PUT` of a gzip body.
    pub fn put_gzip(&self, path: &str, body: Vec<u8>) -> Result<String> {
        self.send(reqwest::Method::PUT, path, Some(("application/gzip", body)))
    }

    pub fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
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
            if let Some((content_type, body)) = body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(body);
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
                let msg = serde_json::from_str::<report::types::ErrorBody>(&text)
                    .map(|e| e.error)
                    .unwrap_or(text);
                bail!("the server answered {status}: {msg}");
            }
            Ok(text)
        })
    }
}

/// A server URL as given: `http://` or `https://` and a host, or a bare `host:port`, which
/// means `http://host:port` (the server speaks plain HTTP unless a proxy in front says
/// otherwise).
pub fn server_url(s: &str) -> Result<String, String> {
    let url = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{s:?}: want http://HOST[:PORT] (or https://, or HOST:PORT)"))?;
    if rest.trim_end_matches('/').is_empty() || rest.contains(char::is_whitespace) {
        return Err(format!("{s:?}: no host; want http://HOST[:PORT]"));
    }
    Ok(url)
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
    // Every page of them.
    let mut list = ServiceList {
        services: Vec::new(),
        next: None,
    };
    let mut after = String::new();
    loop {
        let path = format!("/api/v1/services?after={}", path_segment(&after));
        let (page, _): (ServiceList, _) = args.conn.call(reqwest::Method::GET, &path, None)?;
        list.services.extend(page.services);
        match page.next {
            Some(next) if next > after => after = next,
            _ => break,
        }
    }
    if args.conn.json {
        println!("{}", serde_json::to_string(&list)?);
        return Ok(());
    }
    if list.services.is_empty() {
        println!(
            "no services yet: start a binary built with `livecov build` and LIVECOV_SERVER set \
             (agents the server refused, a wrong LIVECOV_TOKEN say, are listed on its \
             dashboard)"
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
    let mut path = format!(
        "/api/v1/services/{}/snapshots?limit={}",
        path_segment(&args.service),
        args.limit
    );
    if let Some(s) = &args.selector {
        let _ = write!(path, "&selector={}", path_segment(s));
    }
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
        "BUILD".into(),
        "INSTANCES".into(),
        "COVERAGE".into(),
        "SINCE START".into(),
    ]];
    for s in &list.snapshots {
        let mut label = match (&s.session, &s.label) {
            (Some(session), None) => format!("session {session}"),
            (Some(session), Some(label)) => format!("session {session}: {label}"),
            (None, label) => label.clone().unwrap_or_else(|| "-".into()),
        };
        if let Some(sel) = &s.selector {
            label = format!("[{sel}] {label}");
        }
        rows.push(vec![
            s.id.to_string(),
            s.taken_at.clone(),
            label,
            if s.reset { "yes" } else { "no" }.into(),
            match (&s.build, s.build_count) {
                (Some(b), n) if n > 1 => format!("{} +{} older", &b[..b.len().min(12)], n - 1),
                (Some(b), _) => b[..b.len().min(12)].to_string(),
                (None, _) => "-".into(),
            },
            format!("{} ok, {} failed", s.instances_ok, s.instances_failed),
            coverage(&s.totals),
            format!("{:.1}%", s.deploy.coverage),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

fn print_snapshot(d: &SnapshotDetail) {
    let s = &d.snapshot;
    let what = match (s.reset, &s.session) {
        (true, _) => " (reset: a new round began)".to_string(),
        (false, Some(name)) => format!(" (session {name})"),
        (false, None) => String::new(),
    };
    println!(
        "snapshot {} of {}{what}: {}",
        s.id,
        s.service,
        coverage(&s.totals)
    );
    let window = match (s.kind.as_str(), &s.since) {
        ("session", Some(since)) => format!("the session, from {since}"),
        ("reset", Some(since)) => format!("the round, from {since} to the reset"),
        (_, Some(since)) => format!("this round, since {since}"),
        (_, None) => "since the instances started (no reset yet)".to_string(),
    };
    println!(
        "  measures {window}; since the instances started: {}",
        coverage(&s.deploy)
    );
    if let (Some(build), true) = (&s.build, s.build_count > 1) {
        println!(
            "  its instances ran {} builds: counted once, against the newest, {build}, with \
             what the others measured carried into its unchanged functions",
            s.build_count
        );
    }
    for b in &d.builds {
        if let Some(e) = &b.excluded {
            println!(
                "  excluded when build {} was built: {}",
                b.build.get(..12).unwrap_or(&b.build),
                e.summary()
            );
        }
    }
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
    take_with(conn, serde_json::json!({ "label": label }), path)
}

fn take_with(conn: &Conn, body: serde_json::Value, path: String) -> Result<()> {
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
    let body = serde_json::json!({ "label": args.label, "selector": args.selector });
    take_with(&args.conn, body, path)
}

pub fn reset(args: ResetArgs) -> Result<()> {
    let path = format!("/api/v1/services/{}/reset", path_segment(&args.service));
    take(&args.conn, args.label, path)
}

pub fn session(args: SessionArgs) -> Result<()> {
    match args.action {
        SessionAction::Start {
            service,
            name,
            conn,
        } => {
            let path = format!("/api/v1/services/{}/sessions", path_segment(&service));
            let body = serde_json::json!({ "name": name });
            let (s, raw): (SessionInfo, _) = conn.call(reqwest::Method::POST, &path, Some(body))?;
            if conn.json {
                println!("{raw}");
            } else {
                println!(
                    "session {} of {} {} since {}",
                    s.name, s.service, s.state, s.started_at
                );
            }
            Ok(())
        }
        SessionAction::Stop {
            service,
            name,
            label,
            conn,
        } => {
            let path = format!(
                "/api/v1/services/{}/sessions/{}/stop",
                path_segment(&service),
                path_segment(&name)
            );
            take(&conn, label, path)
        }
        SessionAction::List { service, conn } => {
            let path = format!("/api/v1/services/{}/sessions", path_segment(&service));
            let (list, raw): (SessionList, _) = conn.call(reqwest::Method::GET, &path, None)?;
            if conn.json {
                println!("{raw}");
                return Ok(());
            }
            if list.sessions.is_empty() {
                println!("no sessions of {service} yet: start one with `livecov session start`");
                return Ok(());
            }
            let mut rows = vec![vec![
                "NAME".to_string(),
                "STATE".into(),
                "STARTED".into(),
                "STOPPED".into(),
                "SNAPSHOT".into(),
            ]];
            for s in &list.sessions {
                rows.push(vec![
                    s.name.clone(),
                    s.state.clone(),
                    s.started_at.clone(),
                    s.stopped_at.clone().unwrap_or_else(|| "-".into()),
                    s.snapshot.map_or_else(|| "-".into(), |id| format!("#{id}")),
                ]);
            }
            print!("{}", table(&rows));
            Ok(())
        }
    }
}

pub fn diff(args: DiffArgs) -> Result<()> {
    let mut path = format!(
        "/api/v1/snapshots/{}/diff/{}?view={}",
        args.a,
        args.b,
        args.view.as_str()
    );
    if let Some(b) = &args.build {
        let _ = write!(path, "&build={}", path_segment(b));
    }
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
        report::types::percent(t.a_stmts_covered, t.stmts),
        report::types::percent(t.b_stmts_covered, t.stmts),
        t.stmts
    );
    println!("against build {}", d.build);
    for f in &d.files {
        for (sign, blocks) in [("+", &f.newly_covered), ("-", &f.no_longer_covered)] {
            for b in blocks {
                println!(
                    "{sign} {}:{}.{},{}.{} {} {}",
                    f.file, b.start_line, b.start_col, b.end_line, b.end_col, b.stmts, b.func
                );
            }
        }
    }
    for f in &d.functions {
        println!(
            "{} function {} {}: {}/{} statements covered in {} → {}/{} in {}",
            f.change,
            f.file,
            f.name,
            f.a_stmts_covered,
            f.a_stmts,
            d.a,
            f.b_stmts_covered,
            f.b_stmts,
            d.b
        );
    }
    Ok(())
}

pub fn collect(args: CollectArgs) -> Result<()> {
    let entries =
        std::fs::read_dir(&args.dir).with_context(|| format!("reading {}", args.dir.display()))?;
    let mut metas = Vec::new();
    let mut counters = Vec::new();
    for e in entries {
        let path = e?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        // Temporary files of a write in progress start with '.'.
        if name.starts_with('.') {
            continue;
        }
        if let Some(build) = name.strip_suffix(".meta.json.gz") {
            metas.push((build.to_string(), path.clone()));
        } else if let Some(stem) = name.strip_suffix(".lcc") {
            // `<service>-<instance>`: the instance id is the agent's 32 hex digits.
            match stem.rsplit_once('-') {
                Some((service, instance)) if !service.is_empty() && !instance.is_empty() => {
                    counters.push((service.to_string(), instance.to_string(), path.clone()))
                }
                _ => bail!(
                    "{}: not a counters file of an agent (<service>-<instance>.lcc)",
                    path.display()
                ),
            }
        }
    }
    if metas.is_empty() && counters.is_empty() {
        bail!(
            "{} holds no counters: an agent writes <service>-<instance>.lcc there when \
             LIVECOV_DIR names it",
            args.dir.display()
        );
    }
    metas.sort();
    counters.sort();
    // Read them all before sending any: a file that cannot be read changes nothing.
    let mut bodies = Vec::new();
    for (build, path) in &metas {
        bodies.push((
            format!("/api/v1/builds/{}", path_segment(build)),
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        ));
    }
    for (build, (path, body)) in metas.iter().zip(&bodies) {
        args.conn
            .endpoint
            .put_gzip(path, body.clone())
            .with_context(|| format!("sending the metadata of build {}", build.0))?;
    }
    let mut results = Vec::new();
    for (service, instance, path) in &counters {
        let body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let url = format!(
            "/api/v1/services/{}/collect?instance={}",
            path_segment(service),
            path_segment(instance)
        );
        let text = args
            .conn
            .endpoint
            .send(
                reqwest::Method::POST,
                &url,
                Some(("application/octet-stream", body)),
            )
            .with_context(|| format!("sending {}", path.display()))?;
        let ended: report::types::Ended = serde_json::from_str(&text)
            .with_context(|| format!("the server's answer to {url} does not parse"))?;
        results.push((ended, text));
    }
    if args.conn.json {
        let list: Vec<serde_json::Value> = results
            .iter()
            .map(|(_, t)| serde_json::from_str(t).unwrap_or_default())
            .collect();
        println!(
            "{}",
            serde_json::json!({ "builds": metas.len(), "instances": list })
        );
        return Ok(());
    }
    let mut rows = vec![vec![
        "SERVICE".to_string(),
        "INSTANCE".into(),
        "STATE".into(),
        "NEW COUNTS".into(),
    ]];
    for (e, _) in &results {
        rows.push(vec![
            e.service.clone(),
            e.instance.clone(),
            e.state.clone(),
            if e.changed { "yes" } else { "no" }.into(),
        ]);
    }
    println!(
        "{} builds' metadata and {} counters files sent",
        metas.len(),
        results.len()
    );
    print!("{}", table(&rows));
    Ok(())
}

pub fn cycle(args: CycleArgs) -> Result<()> {
    let mut query = format!("from={}&view={}", args.from, args.view.as_str());
    if let Some(to) = args.to {
        let _ = write!(query, "&to={to}");
    }
    if let Some(b) = &args.build {
        let _ = write!(query, "&build={}", path_segment(b));
    }
    let service = path_segment(&args.service);
    if let Some(format) = args.format {
        if let Some(strip) = &args.strip {
            let _ = write!(query, "&strip={}", path_segment(strip));
        }
        query.push_str(&exclude_query(&args.exclude)?);
        let path = format!(
            "/api/v1/services/{service}/cycle/profile?format={}&{query}",
            format.as_str()
        );
        let text = args
            .conn
            .endpoint
            .fetch(reqwest::Method::GET, &path, None)?;
        return write_to(args.output.as_deref(), &text);
    }
    let path = format!("/api/v1/services/{service}/cycle?{query}");
    let (c, raw): (Cycle, _) = args.conn.call(reqwest::Method::GET, &path, None)?;
    if args.conn.json {
        println!("{raw}");
        return Ok(());
    }
    let t = &c.totals;
    println!(
        "{} snapshots #{} to #{}, {} builds, against build {}",
        c.snapshots,
        c.from,
        c.to,
        c.builds.len(),
        c.build
    );
    println!(
        "covered {} of {} statements ({:.1}%): {} measured on this build, {} carried from earlier builds",
        t.stmts_covered, t.stmts, t.coverage, c.stmts_measured, c.stmts_carried
    );
    let f = &c.functions;
    println!(
        "functions: {} measured, {} carried, {} changed and not covered yet, {} not covered",
        f.measured, f.carried, f.changed, f.uncovered
    );
    let mut rows = vec![vec![
        "FILE".to_string(),
        "STATEMENTS".into(),
        "COVERED".into(),
        "MEASURED".into(),
        "CARRIED".into(),
        "CHANGED FUNCS".into(),
    ]];
    for file in &c.files {
        rows.push(vec![
            file.file.clone(),
            file.totals.stmts.to_string(),
            file.totals.stmts_covered.to_string(),
            file.stmts_measured.to_string(),
            file.stmts_carried.to_string(),
            file.functions.changed.to_string(),
        ]);
    }
    print!("{}", table(&rows));
    for g in &c.gone {
        println!(
            "{} since: {} {} ({}/{} statements covered on build {})",
            g.change,
            g.file,
            g.name,
            g.stmts_covered,
            g.stmts,
            &g.build[..g.build.len().min(12)]
        );
    }
    Ok(())
}

pub fn report(args: ReportArgs) -> Result<()> {
    if let Some(base) = &args.diff_base {
        return patch(&args, base);
    }
    let format = args.format.unwrap_or(ReportFormat::Go).as_str();
    let view = args.view.as_str();
    let mut path = format!(
        "/api/v1/snapshots/{}/profile?format={format}&view={view}",
        args.snapshot
    );
    if let Some(b) = &args.build {
        let _ = write!(path, "&build={}", path_segment(b));
    }
    path.push_str(&exclude_query(&args.exclude)?);
    for (name, value) in [("strip", &args.strip), ("source", &args.source)] {
        if let Some(v) = value {
            let _ = write!(path, "&{name}={}", path_segment(v));
        }
    }
    if format == "html" {
        return html_report(&args);
    }
    let text = args.endpoint.fetch(reqwest::Method::GET, &path, None)?;
    write_output(&args, &text)
}

/// The `html` report, written here rather than by the server so that it can show the sources
/// of the checkout the command runs in, each one that still matches the snapshot's blocks.
fn html_report(args: &ReportArgs) -> Result<()> {
    let id = args.snapshot;
    let detail: SnapshotDetail = serde_json::from_str(&args.endpoint.fetch(
        reqwest::Method::GET,
        &format!("/api/v1/snapshots/{id}"),
        None,
    )?)?;
    let export: report::ExportJson = serde_json::from_str(&args.endpoint.fetch(
        reqwest::Method::GET,
        &format!(
            "/api/v1/snapshots/{id}/profile?format=json&view={}{}{}",
            args.view.as_str(),
            args.build
                .as_deref()
                .map_or_else(String::new, |b| format!("&build={}", path_segment(b))),
            exclude_query(&args.exclude)?
        ),
        None,
    )?)?;
    let options = report::Options {
        strip: args.strip.clone(),
        source: args.source.clone(),
    };
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let text = crate::sources::html(&export, &detail.snapshot, &options, &cwd);
    write_output(args, &text)
}

/// `&exclude=…` for `--exclude`, checked here first so that a bad pattern is named before any
/// request; empty when none was given.
fn exclude_query(patterns: &[String]) -> Result<String> {
    let filter = report::Filter::parse(patterns).map_err(|e| anyhow::anyhow!("--exclude: {e}"))?;
    if filter.is_empty() {
        return Ok(String::new());
    }
    Ok(format!(
        "&exclude={}",
        path_segment(&filter.texts().join(","))
    ))
}

fn write_output(args: &ReportArgs, text: &str) -> Result<()> {
    write_to(args.output.as_deref(), text)
}

/// `text` to `file`, or to stdout.
fn write_to(file: Option<&std::path::Path>, text: &str) -> Result<()> {
    match file {
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

/// `livecov report --diff-base`: the patch coverage of `git diff BASE`.
fn patch(args: &ReportArgs, base: &str) -> Result<()> {
    let format = match args.format {
        None => None,
        Some(ReportFormat::Json) => Some("json"),
        Some(ReportFormat::Lcov) => Some("lcov"),
        Some(ReportFormat::Cobertura) => Some("cobertura"),
        Some(ReportFormat::Go | ReportFormat::Html) => bail!(
            "with --diff-base, --format is json, lcov or cobertura (or none, for a table); \
             go and html export the whole snapshot: drop --diff-base for them"
        ),
    };
    let export = matches!(format, Some("lcov" | "cobertura"));
    if !export && (args.strip.is_some() || args.source.is_some()) {
        bail!(
            "--strip and --source are for exports: with --diff-base, add --format lcov or \
             --format cobertura"
        );
    }
    let out = std::process::Command::new("git")
        .args(["diff", "--no-color", "--no-ext-diff", base, "--"])
        .output()
        .context("running git diff (is git installed?)")?;
    if !out.status.success() {
        bail!(
            "git diff {base}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let patch = String::from_utf8(out.stdout).context("git diff printed something not UTF-8")?;
    let mut path = format!("/api/v1/snapshots/{}/patch", args.snapshot);
    let query = [
        ("module", args.module.as_deref()),
        ("format", format),
        ("strip", args.strip.as_deref()),
        ("source", args.source.as_deref()),
    ];
    let query: Vec<String> = query
        .into_iter()
        .filter_map(|(name, value)| Some(format!("{name}={}", path_segment(value?))))
        .collect();
    if !query.is_empty() {
        let _ = write!(path, "?{}", query.join("&"));
    }
    let text = args
        .endpoint
        .fetch_text(reqwest::Method::POST, &path, patch)?;
    if format.is_some() {
        return write_output(args, &text);
    }
    let p: report::types::PatchCoverage =
        serde_json::from_str(&text).context("the server's patch coverage does not parse")?;
    let mut report = format!(
        "patch coverage of snapshot {} against {base}: {} of {} changed executable lines covered ({:.1}%)\n",
        p.snapshot, p.total.covered, p.total.lines, p.total.coverage
    );
    if !p.files.is_empty() {
        let mut rows = vec![vec![
            "FILE".to_string(),
            "LINES".into(),
            "COVERED".into(),
            "UNCOVERED".into(),
        ]];
        for f in &p.files {
            rows.push(vec![
                f.diff_path.clone(),
                f.lines.to_string(),
                f.covered.to_string(),
                if f.uncovered.is_empty() {
                    "-".into()
                } else {
                    f.uncovered.clone()
                },
            ]);
        }
        report.push_str(&table(&rows));
    }
    if !p.not_measured.is_empty() {
        let _ = writeln!(report, "not measured: {}", p.not_measured.join(", "));
    }
    write_output(args, &report)
}

/// Sends the build's metadata and then its sources to `server`: `PUT /api/v1/builds/{id}` and
/// `PUT /api/v1/builds/{id}/sources`, both gzip.
pub fn upload(
    prepared: &gobuild::Prepared,
    server: &str,
    token: Option<&str>,
) -> Result<report::types::Uploaded> {
    let meta = gobuild::meta_json_excluding(
        &prepared.meta,
        &prepared.build_id,
        prepared.excluded.as_ref(),
    );
    let mut files = Vec::with_capacity(prepared.sources.len());
    for (file, path) in prepared.meta.files.iter().zip(&prepared.sources) {
        let source = std::fs::read_to_string(path)
            .with_context(|| format!("reading {} to upload it", path.display()))?;
        files.push(report::types::SourceFile {
            name: file.name.clone(),
            source,
        });
    }
    let body = serde_json::to_vec(&report::types::SourceUpload { files })?;
    let endpoint = Endpoint::new(server, token);
    let path = format!("/api/v1/builds/{}", prepared.build_id);
    endpoint.put_gzip(&path, report::gzip::gzip(meta.as_bytes()))?;
    let answer = endpoint.put_gzip(&format!("{path}/sources"), report::gzip::gzip(&body))?;
    serde_json::from_str(&answer).with_context(|| format!("the server's answer: {answer}"))
}

#[cfg(test)]
mod tests {
    use super::server_url;

    #[test]
    fn server_urls_without_a_scheme_are_http() {
        assert_eq!(
            server_url("127.0.0.1:7777").unwrap(),
            "http://127.0.0.1:7777"
        );
        assert_eq!(server_url("http://lc:7777/").unwrap(), "http://lc:7777/");
        assert_eq!(server_url("https://lc").unwrap(), "https://lc");
        for bad in ["ftp://lc", "http://", "https:///", "lc :7777"] {
            assert!(server_url(bad).is_err(), "{bad}");
        }
    }
}
