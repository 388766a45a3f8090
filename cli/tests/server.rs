//! The whole flow with real parts: the example service built by `livecov build`, two replicas
//! of it registering with a real `livecov server` process (on SQLite, and on PostgreSQL when
//! `LIVECOV_TEST_POSTGRES` is set), driven through the `livecov` client commands: snapshot,
//! reset, diff, export read by `go tool cover`, and a server killed and restarted.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use livecov_testkit::LiveServer;

const LIVECOV: &str = env!("CARGO_BIN_EXE_livecov");

/// `livecov server` on `port`, on the database at `url`.
fn start_server(port: u16, url: &str, log: &Path) -> LiveServer {
    let args = ["--database-url", url, "--instance-ttl", "5s"];
    LiveServer::start_on(port, Path::new(LIVECOV), &args, &[], log).unwrap()
}

/// Runs a `livecov` client command against the server on `port`; its JSON answer.
fn client(port: u16, args: &[&str]) -> serde_json::Value {
    let args = [args, &["--json"]].concat();
    serde_json::from_str(&plain(port, &args)).unwrap()
}

/// Runs a `livecov` client command without `--json`; its output.
fn plain(port: u16, args: &[&str]) -> String {
    plain_in(Path::new("."), port, args)
}

/// The same, run in `dir` (the commands that read a checkout).
fn plain_in(dir: &Path, port: u16, args: &[&str]) -> String {
    let out = Command::new(LIVECOV)
        .args(args)
        .args(["--server", &format!("http://127.0.0.1:{port}")])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "livecov {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn wait_live(port: u16, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = client(port, &["services"]);
        if list["services"][0]["live_instances"] == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never {n} live instances: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hit(port: u16, path: &str) {
    let (status, _) = http("GET", port, path).unwrap();
    assert_eq!(status, 200, "{path}");
}

/// Functions of the blocks listed under `key` in a diff.
fn funcs(diff: &serde_json::Value, key: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for file in diff["files"].as_array().unwrap() {
        for b in file[key].as_array().unwrap() {
            out.insert(b["func"].as_str().unwrap().to_string());
        }
    }
    out
}

/// A tool the export checks run, or a failure that says how to get it.
fn tool(name: &str) -> Command {
    let found = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{name} is not installed: run scripts/test.sh, which installs it (lcov for genhtml, \
         libxml2-utils for xmllint)"
    );
    Command::new(name)
}

/// Checks that genhtml, run in `sources` (where the tracefile's file names are), renders the
/// lcov tracefile `info` without a warning.
fn genhtml_clean(info: &Path, sources: &Path) {
    let html = tempfile::tempdir().unwrap();
    let out = tool("genhtml")
        .arg(info)
        .arg("--output-directory")
        .arg(html.path())
        .current_dir(sources)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "genhtml {}: {stderr}",
        info.display()
    );
    assert!(html.path().join("index.html").is_file());
}

/// Checks that xmllint validates the Cobertura document `xml` against Cobertura's DTD, kept
/// off the network (a catalog in `tmp` points the DTD's URL at the local copy).
fn cobertura_valid(xml: &Path, tmp: &Path) {
    let dtd = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/cobertura/coverage-04.dtd");
    assert!(
        dtd.is_file(),
        "{} is missing: run scripts/test.sh, which fetches it (scripts/cobertura-dtd.sh)",
        dtd.display()
    );
    let catalog = tmp.join("catalog.xml");
    std::fs::write(
        &catalog,
        format!(
            "<?xml version=\"1.0\"?>\n\
             <catalog xmlns=\"urn:oasis:names:tc:entity:xmlns:xml:catalog\">\n  \
             <system systemId=\"http://cobertura.sourceforge.net/xml/coverage-04.dtd\" \
             uri=\"file://{}\"/>\n</catalog>\n",
            dtd.canonicalize().unwrap().display()
        ),
    )
    .unwrap();
    let out = tool("xmllint")
        .env("XML_CATALOG_FILES", &catalog)
        .args(["--nonet", "--noout"])
        .arg("--dtdvalid")
        .arg(&dtd)
        .arg(xml)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "xmllint {}: {}",
        xml.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Snapshot `id` (round 2: only the calculator ran) exported by `livecov report` as lcov,
/// Cobertura and JSON: genhtml renders the lcov without a warning, xmllint validates the XML
/// against Cobertura's DTD, and the JSON has the functions' counts.
fn exports(port: u16, id: i64, tmp: &Path) {
    let id = id.to_string();
    let report = |format: &str, output: Option<&Path>| {
        let mut args = vec![
            "report",
            &id,
            "--format",
            format,
            "--strip",
            "example.com/greeter/",
        ];
        if let Some(file) = output {
            args.extend(["-o", file.to_str().unwrap()]);
        }
        plain(port, &args)
    };

    let info = tmp.join("round2.info");
    report("lcov", Some(&info));
    let lcov = std::fs::read_to_string(&info).unwrap();
    assert!(lcov.starts_with("TN:\nSF:main.go\n"), "{lcov}");
    assert!(
        lcov.contains("\nFNDA:1,calc\n") && lcov.contains("\nFNDA:0,hello\n"),
        "{lcov}"
    );
    genhtml_clean(&info, Path::new(EXAMPLE));

    let xml = tmp.join("round2.xml");
    report("cobertura", Some(&xml));
    cobertura_valid(&xml, tmp);
    let text = std::fs::read_to_string(&xml).unwrap();
    assert!(text.contains("filename=\"main.go\""), "{text}");

    let json: serde_json::Value = serde_json::from_str(&report("json", None)).unwrap();
    let file = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "main.go")
        .unwrap_or_else(|| panic!("main.go in {json}"));
    let func = |name: &str| {
        file["functions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {file}"))
            .clone()
    };
    assert_eq!(func("calc")["count"], 1, "{file}");
    assert_eq!(func("hello")["count"], 0, "{file}");
    assert_eq!(func("hello")["stmts_covered"], 0, "{file}");
    assert!(
        func("calc")["stmts_covered"].as_u64().unwrap() > 0,
        "{file}"
    );
}

fn covered_lines(profile: &str) -> BTreeSet<String> {
    profile
        .lines()
        .skip(1)
        .filter(|l| !l.ends_with(" 0"))
        .map(|l| l.rsplit_once(' ').unwrap().0.to_string())
        .collect()
}

#[test]
fn two_replicas_snapshot_reset_diff_export_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("greeter");
    build_example(LIVECOV, &bin, &tmp.path().join("cache"), "set");

    let stores = stores(tmp.path());
    for (kind, url) in stores {
        eprintln!("== on {kind}");
        flow(&bin, &url, tmp.path());
    }
}

fn flow(bin: &Path, url: &str, tmp: &Path) {
    let port = free_port();
    let log = tmp.join("server.log");
    let server = start_server(port, url, &log);
    let (_r1, p1) = start_replica(bin, port);
    let (_r2, p2) = start_replica(bin, port);
    wait_live(port, 2);
    let table = plain(port, &["services"]);
    assert!(table.starts_with("SERVICE  LIVE  INSTANCES"), "{table}");
    assert!(table.contains("\ngreeter  2     2 "), "{table}");

    // Round 1: each replica serves a different greeting; the snapshot merges both.
    hit(p1, "/hello?name=a");
    hit(p2, "/hello?name=b&lang=fr");
    let s1 = client(port, &["snapshot", "greeter", "--label", "round 1"]);
    assert_eq!(s1["instances_ok"], 2, "{s1}");
    assert_eq!(s1["instances_failed"], 0, "{s1}");
    let id1 = s1["id"].as_i64().unwrap();
    let profile1 = http(
        "GET",
        port,
        &format!("/api/v1/snapshots/{id1}/profile?format=go"),
    )
    .unwrap()
    .1;
    let profile1 = String::from_utf8(profile1).unwrap();
    let covered1 = covered_lines(&profile1);
    // The default greeting (replica 1) and the French one (replica 2) are both in.
    assert!(
        covered1
            .iter()
            .any(|l| l.starts_with("example.com/greeter/main.go:37.")),
        "{profile1}"
    );
    assert!(
        covered1
            .iter()
            .any(|l| l.starts_with("example.com/greeter/main.go:41.")),
        "{profile1}"
    );

    // Reset: the counts it takes are stored, the replicas start again from zero.
    let reset = client(port, &["reset", "greeter"]);
    assert_eq!(reset["reset"], true);
    assert_eq!(reset["instances_ok"], 2);
    assert_eq!(reset["totals"], s1["totals"], "nothing ran between the two");

    // Round 2: only the calculator, on replica 2.
    hit(p2, "/calc?op=add&a=1&b=2");
    let s2 = client(port, &["snapshot", "greeter", "--label", "round 2"]);
    let id2 = s2["id"].as_i64().unwrap();
    let diff = client(port, &["diff", &id1.to_string(), &id2.to_string()]);
    assert_eq!(
        funcs(&diff, "newly_covered"),
        BTreeSet::from(["calc".to_string(), "apply".to_string()]),
        "{diff}"
    );
    let lost = funcs(&diff, "no_longer_covered");
    assert!(lost.contains("hello") && lost.contains("main"), "{diff}");
    assert!(!lost.contains("calc"), "{diff}");

    // The export is a profile `go tool cover` reads.
    let profile2 = http("GET", port, &format!("/api/v1/snapshots/{id2}/profile"))
        .unwrap()
        .1;
    let file = tmp.join("round2.cov");
    std::fs::write(&file, &profile2).unwrap();
    let func = cover_func(&file);
    let pct = |name: &str| -> f64 {
        let line = func
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} in {func}"));
        line.split_whitespace()
            .last()
            .unwrap()
            .trim_end_matches('%')
            .parse()
            .unwrap()
    };
    assert_eq!(pct("hello"), 0.0, "{func}");
    assert!(pct("calc") > 0.0 && pct("apply") > 0.0, "{func}");

    // The other formats, read by the real tools.
    exports(port, id2, tmp);

    let text = plain(port, &["diff", &id1.to_string(), &id2.to_string()]);
    assert!(
        text.starts_with(&format!("snapshot {id1} → {id2}: ")),
        "{text}"
    );
    assert!(
        text.contains("\n+ example.com/greeter/main.go:47.51,51.48 4 calc\n"),
        "{text}"
    );
    let err = Command::new(LIVECOV)
        .args([
            "snapshot",
            "nobody",
            "--server",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&err.stderr),
        "livecov: the server answered 404 Not Found: no service \"nobody\"\n"
    );

    // Killed without warning and started again: the registry and every snapshot are intact.
    server.kill();
    let server = start_server(port, url, &log);
    let list = client(port, &["snapshots", "greeter"]);
    let labels: Vec<_> = list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].clone())
        .collect();
    assert_eq!(
        labels,
        [
            serde_json::json!("round 2"),
            serde_json::Value::Null,
            "round 1".into()
        ]
    );
    let again = http("GET", port, &format!("/api/v1/snapshots/{id2}/profile"))
        .unwrap()
        .1;
    assert_eq!(again, profile2);
    wait_live(port, 2);
    let s3 = client(port, &["snapshot", "greeter"]);
    assert_eq!(s3["instances_ok"], 2, "{s3}");
    assert_eq!(
        covered_lines(&String::from_utf8(profile2).unwrap()).len() as i64,
        s3["totals"]["blocks_covered"].as_i64().unwrap()
    );
    server.kill();

    // No server at all: a clear error, exit status 2.
    let out = Command::new(LIVECOV)
        .args(["services", "--server", &format!("http://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("cannot reach the livecov server") && msg.contains("LIVECOV_SERVER"),
        "{msg}"
    );
}

fn git(dir: &Path, args: &[&str]) {
    run_ok(
        Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(dir),
    );
}

/// Patch coverage from the command line: a commit changes two functions of the example, a
/// run reaches one of them, and `livecov report --diff-base` names exactly the other's
/// changed lines as uncovered.
#[test]
fn report_diff_base_names_the_changed_lines_no_test_reached() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("greeter");
    std::fs::create_dir(&repo).unwrap();
    for f in ["go.mod", "main.go"] {
        std::fs::copy(Path::new(EXAMPLE).join(f), repo.join(f)).unwrap();
    }
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    let src = std::fs::read_to_string(repo.join("main.go")).unwrap();
    let changed = src
        .replace(
            "fmt.Fprintf(w, \"Hello, %s!\\n\", name)",
            "fmt.Fprintf(w, \"Hello there, %s!\\n\", name)",
        )
        .replace(
            "\tfmt.Fprintln(w, result)\n",
            "\tw.Header().Set(\"X-Op\", q.Get(\"op\"))\n\tfmt.Fprintln(w, result)\n",
        );
    assert_ne!(changed, src);
    std::fs::write(repo.join("main.go"), &changed).unwrap();
    git(&repo, &["commit", "-q", "-am", "change hello and calc"]);
    let line_of = |needle: &str| changed.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let (hello_line, calc_line) = (line_of("Hello there"), line_of("X-Op"));

    let bin = tmp.path().join("greeter-bin");
    let status = Command::new(LIVECOV)
        .args(["build", "--cache-dir"])
        .arg(tmp.path().join("cache"))
        .args(["--", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(&repo)
        .status()
        .unwrap();
    assert!(status.success());
    let port = free_port();
    let db = format!("sqlite://{}", tmp.path().join("livecov.db").display());
    let _server = start_server(port, &db, &tmp.path().join("server.log"));
    let (_replica, p) = start_replica(&bin, port);
    wait_live(port, 1);
    hit(p, "/calc?op=add&a=1&b=2");
    let id = client(port, &["snapshot", "greeter"])["id"]
        .as_i64()
        .unwrap()
        .to_string();

    let run = |extra: &[&str]| {
        let args = [&["report", id.as_str(), "--diff-base", "HEAD~1"][..], extra].concat();
        plain_in(&repo, port, &args)
    };
    let json: serde_json::Value = serde_json::from_str(&run(&["--format", "json"])).unwrap();
    assert_eq!(json["total"]["lines"], 2, "{json}");
    assert_eq!(json["total"]["covered"], 1, "{json}");
    assert_eq!(json["files"][0]["diff_path"], "main.go");
    assert_eq!(
        json["files"][0]["uncovered_lines"],
        serde_json::json!([hello_line])
    );
    assert_ne!(hello_line, calc_line);
    let table = run(&[]);
    assert!(
        table.starts_with(&format!(
            "patch coverage of snapshot {id} against HEAD~1: 1 of 2 changed executable lines covered (50.0%)\n"
        )),
        "{table}"
    );
    assert!(
        table.contains(&format!("\nmain.go  2      1        {hello_line}\n")),
        "{table}"
    );

    // The changed lines as lcov: one file, the two functions holding them, those two lines.
    let info = tmp.path().join("patch.info");
    let strip = ["--strip", "example.com/greeter/"];
    run(&[
        &["--format", "lcov", "-o", info.to_str().unwrap()][..],
        &strip,
    ]
    .concat());
    let lcov = std::fs::read_to_string(&info).unwrap();
    assert!(lcov.starts_with("TN:\nSF:main.go\n"), "{lcov}");
    assert_eq!(lcov.matches("SF:").count(), 1, "{lcov}");
    assert!(lcov.contains("\nFNDA:0,hello\nFNDA:1,calc\n"), "{lcov}");
    let mut da = [(calc_line, 1), (hello_line, 0)];
    da.sort();
    let da: String = da.iter().map(|(l, c)| format!("DA:{l},{c}\n")).collect();
    assert!(
        lcov.ends_with(&format!("FNF:2\nFNH:1\n{da}LF:2\nLH:1\nend_of_record\n")),
        "{lcov}"
    );
    genhtml_clean(&info, &repo);

    // As Cobertura: valid against the DTD, totals over the two lines.
    let xml = tmp.path().join("patch.xml");
    let source = repo.to_str().unwrap();
    let args = [
        "--format",
        "cobertura",
        "--source",
        source,
        "-o",
        xml.to_str().unwrap(),
    ];
    run(&[&args[..], &strip].concat());
    cobertura_valid(&xml, tmp.path());
    let text = std::fs::read_to_string(&xml).unwrap();
    assert!(
        text.contains("lines-covered=\"1\" lines-valid=\"2\"")
            && text.contains(&format!("<source>{source}</source>"))
            && text.contains("filename=\"main.go\"")
            && text.contains(&format!("<line number=\"{hello_line}\" hits=\"0\""))
            && text.contains(&format!("<line number=\"{calc_line}\" hits=\"1\"")),
        "{text}"
    );
    assert_eq!(text.matches("<method ").count(), 2, "{text}");
    assert_eq!(text.matches("<line ").count(), 2 * 2, "{text}");

    // Bad input fails with exit status 2, before the server is asked: an unknown revision is
    // git's error; a whole-snapshot format, or --strip without an export, is refused.
    let fails = |args: &[&str], want: &str| {
        let out = Command::new(LIVECOV)
            .args(["report", &id])
            .args(args)
            .args(["--server", &format!("http://127.0.0.1:{port}")])
            .current_dir(&repo)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let msg = String::from_utf8_lossy(&out.stderr);
        assert!(msg.contains(want), "{args:?}: {msg}");
    };
    fails(&["--diff-base", "no-such-rev"], "git diff no-such-rev");
    for format in ["html", "go"] {
        let args = ["--diff-base", "HEAD~1", "--format", format];
        fails(&args, "--format is json, lcov or cobertura");
    }
    fails(
        &[&["--diff-base", "HEAD~1"][..], &strip].concat(),
        "add --format lcov",
    );
}

/// Sources for the annotated report: `livecov build --upload-sources` gives the dashboard the
/// example's source, and `livecov report --format html` annotates the checkout it runs in, but
/// only with sources that still cut into the snapshot's blocks.
#[test]
fn sources_uploaded_by_the_build_and_read_from_the_checkout() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("sqlite://{}", tmp.path().join("livecov.db").display());
    let _server = start_server(port, &url, &tmp.path().join("server.log"));
    let server_url = format!("http://127.0.0.1:{port}");
    let bin = tmp.path().join("greeter");
    let build = |extra: &[&str]| {
        Command::new(LIVECOV)
            .args(["build", "--cache-dir"])
            .arg(tmp.path().join("cache"))
            .args(extra)
            .args(["--", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(EXAMPLE)
            .env_remove("LIVECOV_SERVER")
            .output()
            .unwrap()
    };

    let out = build(&["--upload-sources"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--upload-sources needs a server"),
        "{stderr}"
    );

    let out = build(&["--upload-sources", "--server", &server_url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "uploaded to {server_url}: the server has 1 of its 1 files"
        )),
        "{stderr}"
    );

    let (_replica, p) = start_replica(&bin, port);
    wait_live(port, 1);
    hit(p, "/hello?name=a");
    let id = client(port, &["snapshot", "greeter"])["id"]
        .as_i64()
        .unwrap();

    // The dashboard links the file to its annotated source.
    let page = |path: &str| {
        let (status, body) = http("GET", port, path).unwrap();
        assert_eq!(status, 200, "{path}");
        String::from_utf8(body).unwrap()
    };
    let snapshot = page(&format!("/snapshots/{id}"));
    let link = format!("/snapshots/{id}/source?file=example.com%2Fgreeter%2Fmain.go");
    assert!(snapshot.contains(&link), "{snapshot}");
    let source = page(&link);
    assert!(source.contains("<pre class=\"src\">"), "{source}");
    assert!(
        source.contains("<span class=\"c1\" title=\"1\">"),
        "{source}"
    );
    assert!(
        source.contains("<span class=\"c0\" title=\"0\">"),
        "{source}"
    );

    // The report annotates the checkout it runs in...
    let reports = tmp.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    let report = |dir: &Path| {
        let file = reports.join(format!("report-{id}.html"));
        let out = Command::new(LIVECOV)
            .args(["report", &id.to_string(), "--format", "html", "-o"])
            .arg(&file)
            .args(["--server", &server_url])
            .current_dir(dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        (std::fs::read_to_string(&file).unwrap(), stderr)
    };
    let (html, said) = report(Path::new(EXAMPLE));
    assert!(said.contains("1 of 1 files annotated"), "{said}");
    assert!(html.contains("<pre class=\"src\">"), "{html}");
    assert!(html.contains("func hello("), "{html}");
    let out = tool("xmllint")
        .args(["--html", "--noout"])
        .arg(reports.join(format!("report-{id}.html")))
        .output()
        .unwrap();
    let lint = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && lint.trim().is_empty(), "{lint}");

    // ...not a directory outside any module...
    let outside = tmp.path().join("elsewhere");
    std::fs::create_dir(&outside).unwrap();
    let (html, said) = report(&outside);
    assert!(
        said.contains("no sources of the snapshot's files here"),
        "{said}"
    );
    assert!(!html.contains("<pre class=\"src\">"), "{html}");
    assert!(html.contains("<code>hello</code>"), "{html}");

    // ...and not a checkout whose file moved on since the build.
    let moved = tmp.path().join("moved");
    std::fs::create_dir(&moved).unwrap();
    std::fs::copy(Path::new(EXAMPLE).join("go.mod"), moved.join("go.mod")).unwrap();
    let main = std::fs::read_to_string(Path::new(EXAMPLE).join("main.go")).unwrap();
    let main = main.replacen("\nfunc ", "\n// A line more.\nfunc ", 1);
    std::fs::write(moved.join("main.go"), main).unwrap();
    let (html, said) = report(&moved);
    assert!(
        said.contains(
            "1 files changed since the build and are not annotated: example.com/greeter/main.go"
        ),
        "{said}"
    );
    assert!(!html.contains("<pre class=\"src\">"), "{html}");
}

/// A decompression bomb: build metadata of about 600 KB of gzip that inflates to 300 MB of
/// valid JSON, uploaded to a server whose metadata limit is 16 MiB, with no token (as by
/// default). Refused after reading 16 MiB, fast, with the server's memory bounded and its
/// health answering meanwhile.
#[test]
fn a_decompression_bomb_costs_what_the_limit_allows() {
    let tmp = tempfile::tempdir().unwrap();
    let bomb = tmp.path().join("bomb.gz");
    let id = "b".repeat(64);
    let script = format!(
        "{{ printf '{{\"build\":\"{id}\",\"mode\":\"set\",\"files\":[{{\"name\":\"a.go\",\
         \"funcs\":[],\"blocks\":['; yes '[1,1,1,1,1,0],' | head -c 300000000; \
         printf '[1,1,1,1,1,0]]}}]}}'; }} | gzip -9 > {}",
        bomb.display()
    );
    run_ok(Command::new("sh").args(["-c", &script]));
    let gz = std::fs::read(&bomb).unwrap();
    assert!(gz.len() < 2 << 20, "the bomb is small: {} bytes", gz.len());

    let url = format!("sqlite://{}", tmp.path().join("livecov.db").display());
    let args = ["--database-url", url.as_str(), "--max-metadata-mb", "16"];
    let server =
        LiveServer::start(Path::new(LIVECOV), &args, &[], &tmp.path().join("log")).unwrap();
    let port = server.port();
    let health = std::thread::spawn(move || {
        // The server answers its health check while it reads the bomb.
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let start = Instant::now();
            let (status, _) = http("GET", port, "/healthz").unwrap();
            assert_eq!(status, 200);
            slowest = slowest.max(start.elapsed());
            std::thread::sleep(Duration::from_millis(50));
        }
        slowest
    });
    let start = Instant::now();
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-X", "PUT", "--data-binary"])
        .arg(format!("@{}", bomb.display()))
        .args(["-H", "Content-Type: application/gzip"])
        .arg(format!("http://127.0.0.1:{port}/api/v1/builds/{id}"))
        .output()
        .unwrap();
    let took = start.elapsed();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.ends_with("\n400"), "{text}");
    assert!(
        text.contains("more than 16777216 bytes uncompressed"),
        "{text}"
    );
    assert!(took < Duration::from_secs(20), "refused after {took:?}");
    let slowest = health.join().unwrap();
    assert!(
        slowest < Duration::from_secs(1),
        "/healthz took {slowest:?}"
    );
    let peak_kb = peak_rss_kb(server.pid());
    eprintln!(
        "bomb of {} bytes refused in {took:?}; server peak RSS {peak_kb} kB",
        gz.len()
    );
    assert!(peak_kb < 200 << 10, "server peak RSS {peak_kb} kB");
    server.kill();
}

/// A flood of registrations of new service names from one address, with no token (the
/// default): the quotas keep what the server stores, lists and serves small, and its memory
/// bounded.
#[test]
fn a_flood_of_registrations_is_bounded() {
    use std::io::{Read as _, Write as _};
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", tmp.path().join("livecov.db").display());
    let args = ["--database-url", url.as_str()];
    let server =
        LiveServer::start(Path::new(LIVECOV), &args, &[], &tmp.path().join("log")).unwrap();
    let port = server.port();
    let build = "c".repeat(64);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let start = Instant::now();
    for i in 0..2000 {
        let body = format!(
            "{{\"service\":\"flood-{i}\",\"instance\":\"i{i}\",\"build\":\"{build}\",\
             \"mode\":\"set\",\"port\":9}}"
        );
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "POST /api/v1/agents/register HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let status: u16 = answer.split(' ').nth(1).unwrap().parse().unwrap();
        *statuses.entry(status).or_default() += 1;
    }
    eprintln!("2000 registrations in {:?}: {statuses:?}", start.elapsed());
    // 600 a minute from one address, by default.
    assert_eq!(statuses.get(&200), Some(&600), "{statuses:?}");
    assert_eq!(statuses.get(&429), Some(&1400), "{statuses:?}");

    for (path, most) in [
        ("/api/v1/services", Duration::from_secs(1)),
        ("/", Duration::from_secs(1)),
        ("/metrics", Duration::from_secs(1)),
    ] {
        let start = Instant::now();
        let (status, body) = http("GET", port, path).unwrap();
        let took = start.elapsed();
        assert_eq!(status, 200, "{path}");
        assert!(took < most, "{path} took {took:?}");
        assert!(body.len() < 2 << 20, "{path}: {} bytes", body.len());
    }
    let metrics = String::from_utf8(http("GET", port, "/metrics").unwrap().1).unwrap();
    assert!(
        metrics.contains("livecov_agent_refusals_total{reason=\"quota\"} 1400\n"),
        "{metrics}"
    );
    let peak_kb = peak_rss_kb(server.pid());
    eprintln!("server peak RSS {peak_kb} kB");
    assert!(peak_kb < 200 << 10, "server peak RSS {peak_kb} kB");
    server.kill();
}

/// The most memory process `pid` has held (its peak resident set), in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// Labels from real binaries: two replicas of a build made in a git checkout, one with
/// `LIVECOV_LABELS=env=staging`, the other `env=prod`. Each registers its labels and the
/// revision it was built from; `livecov snapshot --selector` reads the staging one alone and
/// `livecov snapshots --selector` lists that snapshot alone.
#[test]
fn labels_choose_the_replicas_a_snapshot_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("greeter");
    std::fs::create_dir(&repo).unwrap();
    for f in ["go.mod", "main.go"] {
        std::fs::copy(Path::new(EXAMPLE).join(f), repo.join(f)).unwrap();
    }
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    let head = run_ok(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(&repo),
    );
    let bin = tmp.path().join("greeter-bin");
    // `go` stamps the revision by default in a checkout; a machine may turn that off in its
    // `go env` (GOFLAGS=-buildvcs=false), so the test asks for it.
    run_ok(
        Command::new(LIVECOV)
            .args(["build", "--cache-dir"])
            .arg(tmp.path().join("cache"))
            .args(["--", "-buildvcs=true", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(&repo),
    );
    let port = free_port();
    let url = format!("sqlite://{}", tmp.path().join("livecov.db").display());
    let _server = start_server(port, &url, &tmp.path().join("server.log"));
    let replica = |labels: &str| {
        let p = free_port();
        let child = Command::new(&bin)
            .env("ADDR", format!("127.0.0.1:{p}"))
            .env("LIVECOV_SERVER", format!("http://127.0.0.1:{port}"))
            .env("LIVECOV_SERVICE", "greeter")
            .env("LIVECOV_AGENT_ADDR", "127.0.0.1:0")
            .env("LIVECOV_HEARTBEAT", "200ms")
            .env("LIVECOV_LABELS", labels)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(p, "/healthz");
        (Service(child), p)
    };
    let (_staging, ps) = replica("env=staging,team=checkout");
    let (_prod, pp) = replica("env=prod");
    wait_live(port, 2);
    hit(ps, "/hello?name=a");
    hit(pp, "/calc?op=add&a=1&b=2");

    let svc: serde_json::Value =
        serde_json::from_slice(&http("GET", port, "/api/v1/services/greeter").unwrap().1).unwrap();
    let mut labels: Vec<serde_json::Value> = svc["instance_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["labels"].clone())
        .collect();
    labels.sort_by_key(|l| l["env"].as_str().unwrap().to_string());
    assert_eq!(
        labels,
        [
            serde_json::json!({"env": "prod", "vcs.revision": head.trim()}),
            serde_json::json!({"env": "staging", "team": "checkout", "vcs.revision": head.trim()}),
        ]
    );

    let s = client(
        port,
        &[
            "snapshot",
            "greeter",
            "--selector",
            "env=staging",
            "--label",
            "staging",
        ],
    );
    assert_eq!(s["selector"], "env=staging", "{s}");
    assert_eq!(s["instances_ok"], 1, "{s}");
    let staging_id = s["instance_results"][0]["instance"].clone();
    assert!(
        svc["instance_list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == staging_id && i["labels"]["env"] == "staging"),
        "{s}"
    );
    let all = client(port, &["snapshot", "greeter"]);
    assert_eq!(all["instances_ok"], 2, "{all}");
    // Only the staging replica ran /hello: the selected snapshot covers less than the whole.
    assert!(
        s["totals"]["stmts_covered"].as_i64() < all["totals"]["stmts_covered"].as_i64(),
        "{s} {all}"
    );
    let text = plain(
        port,
        &[
            "snapshots",
            "greeter",
            "--selector",
            "team=checkout,env=staging",
        ],
    );
    assert_eq!(
        text.lines().count(),
        1,
        "only the header: no snapshot of that selector: {text}"
    );
    let text = plain(port, &["snapshots", "greeter", "--selector", "env=staging"]);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("[env=staging] staging"), "{text}");
    let err = Command::new(LIVECOV)
        .args(["snapshot", "greeter", "--selector", "env=qa", "--server"])
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&err.stderr)
            .contains("no live instance of service \"greeter\" has the labels env=qa"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
}
