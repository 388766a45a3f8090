//! Patch coverage over HTTP, on SQLite and on PostgreSQL: a real `git diff` of a Go file
//! whose two functions both changed, against a build of the new file (blocks from the
//! instrumenter) whose counters cover one function only.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::*;
use instrumenter::{BuildMeta, Mode};
use server::sim::{SimAgent, SimBuild};

const OLD: &str = "package calc

// Add adds.
func Add(a, b int) int {
\treturn a + b
}

// Mul multiplies.
func Mul(a, b int) int {
\treturn a * b
}
";

const NEW: &str = "package calc

// Add adds, up to 100.
func Add(a, b int) int {
\ts := a + b
\tif s > 100 {
\t\treturn 100
\t}
\treturn s
}

// Mul multiplies.
func Mul(a, b int) int {
\tp := a * b
\treturn p
}
";

/// The lines of `NEW` that changed in Mul: its two statements.
const MUL_CHANGED: [u32; 2] = [14, 15];

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A repository with `calc/calc.go` committed as `OLD`, then as `NEW` along with a README and
/// a test file; the diff of the second commit.
fn git_diff() -> String {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "."]);
    git(d, &["config", "user.email", "t@example.com"]);
    git(d, &["config", "user.name", "t"]);
    git(d, &["config", "commit.gpgsign", "false"]);
    std::fs::create_dir(d.join("calc")).unwrap();
    std::fs::write(d.join("calc/calc.go"), OLD).unwrap();
    std::fs::write(d.join("README.md"), "# calc\n").unwrap();
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "one"]);
    std::fs::write(d.join("calc/calc.go"), NEW).unwrap();
    std::fs::write(d.join("README.md"), "# calc\n\nAdds and multiplies.\n").unwrap();
    std::fs::write(
        d.join("calc/calc_test.go"),
        "package calc\n\nimport \"testing\"\n\nfunc TestAdd(t *testing.T) {}\n",
    )
    .unwrap();
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "two"]);
    git(d, &["diff", "HEAD~1"])
}

async fn post_patch(server: &server::Server, path: &str, body: Vec<u8>) -> Answer {
    let resp = client()
        .post(format!("http://{}{path}", server.addr))
        .header("Content-Type", "text/x-diff")
        .body(body)
        .send()
        .await
        .expect("the server answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Answer { status, json, text }
}

/// A build of `NEW` as `example.com/m/calc/calc.go`, and the blocks of `Add`.
fn calc_build() -> (Arc<SimBuild>, Vec<usize>) {
    let file = instrumenter::analyze(
        "example.com/m/calc/calc.go",
        NEW.as_bytes(),
        instrumenter::Rules::Go120,
    )
    .unwrap();
    let add = file.funcs.iter().position(|f| f.name == "Add").unwrap() as u32;
    let mul = file.funcs.iter().position(|f| f.name == "Mul").unwrap() as u32;
    // Mul's blocks hold exactly its changed lines (its body is one block, lines 13 to 16).
    let in_mul: Vec<u32> = (1..=16)
        .filter(|l| {
            file.blocks
                .iter()
                .any(|b| b.func == mul && (b.start.line..=b.end.line).contains(l))
        })
        .collect();
    assert!(MUL_CHANGED.iter().all(|l| in_mul.contains(l)), "{in_mul:?}");
    let add_blocks: Vec<usize> = (0..file.blocks.len())
        .filter(|&i| file.blocks[i].func == add)
        .collect();
    let build = Arc::new(SimBuild::new(BuildMeta {
        mode: Mode::Count,
        files: vec![file],
    }));
    (build, add_blocks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_coverage_names_the_uncovered_function() {
    let diff = git_diff();
    assert!(diff.contains("+++ b/calc/calc.go"), "{diff}");
    let (build, add_blocks) = calc_build();

    for db in databases().await {
        eprintln!("== patch coverage on {}", db.kind);
        let server = start(config(&db.url)).await;
        let a = agents(&server, &build, "calc", 1).await;
        for &i in &add_blocks {
            a[0].hit(i, 3);
        }
        let snap = snapshot(&server, "calc", "").await;
        let id = snap["id"].as_i64().unwrap();
        let url = format!("/api/v1/snapshots/{id}/patch");

        let got = post_patch(&server, &url, diff.clone().into_bytes()).await;
        assert_eq!(got.status, 200, "{}", got.text);
        let j = &got.json;
        assert_eq!(j["snapshot"], id);
        let files = j["files"].as_array().unwrap();
        assert_eq!(files.len(), 1, "{}", got.text);
        let f = &files[0];
        assert_eq!(f["file"], "example.com/m/calc/calc.go");
        assert_eq!(f["diff_path"], "calc/calc.go");
        assert_eq!(f["uncovered_lines"], serde_json::json!(MUL_CHANGED));
        assert_eq!(f["uncovered"], "14-15");
        // Add's changed lines 5 to 9 are all executable and covered; the changed comment on
        // line 3 is not executable.
        assert_eq!(f["lines"], 7, "{}", got.text);
        assert_eq!(f["covered"], 5);
        assert_eq!(j["total"]["lines"], 7);
        assert_eq!(j["total"]["covered"], 5);
        assert_eq!(j["total"]["coverage"], 71.43);
        assert_eq!(
            j["not_measured"],
            serde_json::json!(["README.md", "calc/calc_test.go"])
        );

        // The same with the module named; a module that names nothing measures nothing.
        let named = post_patch(
            &server,
            &format!("{url}?module=example.com/m"),
            diff.clone().into_bytes(),
        )
        .await;
        assert_eq!(named.status, 200, "{}", named.text);
        assert_eq!(named.json["files"], got.json["files"]);
        let other = post_patch(
            &server,
            &format!("{url}?module=example.com/other"),
            diff.clone().into_bytes(),
        )
        .await;
        assert_eq!(other.status, 200, "{}", other.text);
        assert_eq!(other.json["total"]["lines"], 0);
        assert_eq!(other.json["total"]["coverage"], 0.0);
        assert_eq!(other.json["not_measured"].as_array().unwrap().len(), 3);

        // A diff over the server's usual 64 KiB body limit is taken (a long commit message
        // before it is skipped); one over 8 MiB is not.
        let long = format!("{}\n{diff}", "commit message line\n".repeat(6000));
        assert!(long.len() > 100 << 10);
        let big = post_patch(&server, &url, long.into_bytes()).await;
        assert_eq!(big.status, 200, "{}", big.text);
        assert_eq!(big.json["files"], got.json["files"]);
        let huge = post_patch(&server, &url, vec![b' '; (8 << 20) + 1]).await;
        assert_eq!(huge.status, 413, "{}", huge.text);
        assert!(huge.json["error"].is_string(), "{}", huge.text);

        // Errors: no such snapshot, a bad id, a malformed diff (naming the line).
        let missing = post_patch(&server, "/api/v1/snapshots/999/patch", diff.clone().into()).await;
        assert_eq!(missing.status, 404, "{}", missing.text);
        let bad_id = post_patch(&server, "/api/v1/snapshots/x/patch", diff.clone().into()).await;
        assert_eq!(bad_id.status, 400, "{}", bad_id.text);
        let malformed = "diff --git a/calc/calc.go b/calc/calc.go\n--- a/calc/calc.go\n\
                         +++ b/calc/calc.go\n@@ -1,3 +1,3 @@\n package calc\n-a\n";
        let bad = post_patch(&server, &url, malformed.into()).await;
        assert_eq!(bad.status, 400, "{}", bad.text);
        assert!(
            bad.json["error"].as_str().unwrap().contains("diff line 6"),
            "{}",
            bad.text
        );
        let not_a_diff = post_patch(&server, &url, b"hello".to_vec()).await;
        assert_eq!(not_a_diff.status, 400, "{}", not_a_diff.text);

        // A file matching two metadata files is named with both.
        let ambiguous = "--- a/calc.go\n+++ b/calc.go\n@@ -5 +5 @@\n-a\n+b\n";
        let two = Arc::new(SimBuild::new(BuildMeta {
            mode: Mode::Count,
            files: vec![
                instrumenter::analyze(
                    "example.com/m/calc.go",
                    NEW.as_bytes(),
                    instrumenter::Rules::Go120,
                )
                .unwrap(),
                instrumenter::analyze(
                    "example.com/m/calc/calc.go",
                    NEW.as_bytes(),
                    instrumenter::Rules::Go120,
                )
                .unwrap(),
            ],
        }));
        let b = SimAgent::start(two.clone(), None).await;
        register(&server, &b, "two", "j0").await;
        let snap2 = snapshot(&server, "two", "").await;
        let url2 = format!("/api/v1/snapshots/{}/patch", snap2["id"]);
        let amb = post_patch(&server, &url2, ambiguous.into()).await;
        assert_eq!(amb.status, 400, "{}", amb.text);
        let msg = amb.json["error"].as_str().unwrap();
        assert!(
            msg.contains("example.com/m/calc.go") && msg.contains("example.com/m/calc/calc.go"),
            "{msg}"
        );
        let resolved = post_patch(
            &server,
            &format!("{url2}?module=example.com/m"),
            ambiguous.into(),
        )
        .await;
        assert_eq!(resolved.status, 200, "{}", resolved.text);
        assert_eq!(resolved.json["files"][0]["file"], "example.com/m/calc.go");
        assert_eq!(resolved.json["files"][0]["uncovered"], "5");

        b.stop();
        for x in a {
            x.stop();
        }
        server.stop().await.unwrap();
    }
}

/// Posts a diff; the status, the Content-Type and the body of the answer.
async fn post_export(server: &server::Server, path: &str, diff: &str) -> (u16, String, String) {
    let resp = client()
        .post(format!("http://{}{path}", server.addr))
        .header("Content-Type", "text/x-diff")
        .body(diff.to_string())
        .send()
        .await
        .expect("the server answers");
    let status = resp.status().as_u16();
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    (status, content_type, resp.text().await.unwrap())
}

/// The LCOV of the diff's changed executable lines with `Add` run three times: Add's five
/// changed lines covered, Mul's two not; the comment on line 3 and the unchanged lines of
/// both functions left out.
const PATCH_LCOV: &str = "TN:
SF:calc/calc.go
FN:4,Add
FN:13,Mul
FNDA:3,Add
FNDA:0,Mul
FNF:2
FNH:1
DA:5,3
DA:6,3
DA:7,3
DA:8,3
DA:9,3
DA:14,0
DA:15,0
LF:7
LH:5
end_of_record
";

/// The Cobertura XML of the same lines, with `source=/src/calc` and the snapshot's time as
/// `TIMESTAMP`.
fn patch_cobertura(timestamp: &str) -> String {
    let line = |n: u32, hits: u32, indent: usize| {
        format!(
            "{}<line number=\"{n}\" hits=\"{hits}\" branch=\"false\"/>\n",
            " ".repeat(indent)
        )
    };
    let lines = |v: &[(u32, u32)], indent: usize| -> String {
        v.iter().map(|&(n, h)| line(n, h, indent)).collect()
    };
    let add = [(5, 3), (6, 3), (7, 3), (8, 3), (9, 3)];
    let mul = [(14, 0), (15, 0)];
    let all: Vec<(u32, u32)> = add.iter().chain(&mul).copied().collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<!DOCTYPE coverage SYSTEM \"http://cobertura.sourceforge.net/xml/coverage-04.dtd\">
<coverage line-rate=\"0.7143\" branch-rate=\"0\" lines-covered=\"5\" lines-valid=\"7\" \
branches-covered=\"0\" branches-valid=\"0\" complexity=\"0\" version=\"livecov {version}\" \
timestamp=\"{timestamp}\">
  <sources>
    <source>/src/calc</source>
  </sources>
  <packages>
    <package name=\"example.com/m/calc\" line-rate=\"0.7143\" branch-rate=\"0\" complexity=\"0\">
      <classes>
        <class name=\"calc.go\" filename=\"calc/calc.go\" line-rate=\"0.7143\" branch-rate=\"0\" \
complexity=\"0\">
          <methods>
            <method name=\"Add\" signature=\"\" line-rate=\"1\" branch-rate=\"0\">
              <lines>
{add}              </lines>
            </method>
            <method name=\"Mul\" signature=\"\" line-rate=\"0\" branch-rate=\"0\">
              <lines>
{mul}              </lines>
            </method>
          </methods>
          <lines>
{all}          </lines>
        </class>
      </classes>
    </package>
  </packages>
</coverage>
",
        version = env!("CARGO_PKG_VERSION"),
        add = lines(&add, 16),
        mul = lines(&mul, 16),
        all = lines(&all, 12),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_exports_hold_only_the_changed_lines() {
    let diff = git_diff();
    let (build, add_blocks) = calc_build();

    for db in databases().await {
        eprintln!("== patch exports on {}", db.kind);
        let server = start(config(&db.url)).await;
        let a = agents(&server, &build, "calc", 1).await;
        for &i in &add_blocks {
            a[0].hit(i, 3);
        }
        let snap = snapshot(&server, "calc", "").await;
        let url = format!("/api/v1/snapshots/{}/patch", snap["id"]);
        let strip = "strip=example.com/m/";

        let (status, ct, lcov) =
            post_export(&server, &format!("{url}?format=lcov&{strip}"), &diff).await;
        assert_eq!(
            (status, ct.as_str()),
            (200, "text/plain; charset=utf-8"),
            "{lcov}"
        );
        assert_eq!(lcov, PATCH_LCOV);
        // Without strip, files keep their import paths; with module, the same lines.
        let (status, _, full) = post_export(&server, &format!("{url}?format=lcov"), &diff).await;
        assert_eq!(status, 200, "{full}");
        assert_eq!(
            full,
            PATCH_LCOV.replace("SF:calc/", "SF:example.com/m/calc/")
        );
        let named = format!("{url}?module=example.com/m&format=lcov&{strip}");
        assert_eq!(post_export(&server, &named, &diff).await.2, PATCH_LCOV);

        let path = format!("{url}?format=cobertura&{strip}&source=/src/calc");
        let (status, ct, xml) = post_export(&server, &path, &diff).await;
        assert_eq!((status, ct.as_str()), (200, "application/xml"), "{xml}");
        let at = xml.find("timestamp=\"").expect("a timestamp") + "timestamp=\"".len();
        let timestamp = &xml[at..at + xml[at..].find('"').unwrap()];
        assert!(timestamp.parse::<i64>().is_ok_and(|t| t > 0), "{xml}");
        assert_eq!(xml, patch_cobertura(timestamp));

        // format=json is the default answer.
        let json = post_patch(&server, &format!("{url}?format=json"), diff.clone().into()).await;
        let default = post_patch(&server, &url, diff.clone().into()).await;
        assert_eq!(json.status, 200, "{}", json.text);
        assert_eq!(json.text, default.text);

        // Formats that are not json, lcov or cobertura are refused, naming those.
        for bad in ["html", "go", "pdf"] {
            let got =
                post_patch(&server, &format!("{url}?format={bad}"), diff.clone().into()).await;
            assert_eq!(got.status, 400, "{bad}: {}", got.text);
            let msg = got.json["error"].as_str().unwrap();
            assert!(
                msg.contains(&format!("{bad:?}")) && msg.contains("json, lcov, cobertura"),
                "{msg}"
            );
        }
        // Exports of a missing snapshot are 404 like the JSON answer.
        let missing = post_export(&server, "/api/v1/snapshots/999/patch?format=lcov", &diff).await;
        assert_eq!(missing.0, 404, "{}", missing.2);

        for x in a {
            x.stop();
        }
        server.stop().await.unwrap();
    }
}
