//! The dashboard's pages over real HTTP, on SQLite and PostgreSQL, with simulated agents; and
//! the upload of a build's sources that its annotated source pages show.

#[macro_use]
mod common;

use std::sync::Arc;

use common::*;
use instrumenter::{BuildMeta, Mode};
use report::gzip::gzip;
use report::types::{SourceFile, SourceUpload};
use server::sim::{SimAgent, SimBuild};

on_every_db!(pages_follow_the_data, sources_are_checked_then_annotated);

/// A database that goes away: every page says so with a 503, and comes back with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_when_the_database_is_away() {
    let Some(admin) = livecov_testkit::test_postgres() else {
        eprintln!("LIVECOV_TEST_POSTGRES not set: not tested here");
        return;
    };
    let url = reqwest::Url::parse(&livecov_testkit::fresh_postgres(&admin).unwrap()).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = Proxy::start(target).await;
    let mut via = url.clone();
    via.set_port(Some(proxy.port)).unwrap();
    let server = start(config(via.as_str())).await;
    let build = Arc::new(SimBuild::synthetic(Mode::Set, 2, 3, "away"));
    let _agents = agents(&server, &build, "svc", 1).await;
    let id = snapshot(&server, "svc", "").await["id"].as_i64().unwrap();
    let pages = [
        "/".to_string(),
        "/services/svc".to_string(),
        format!("/snapshots/{id}"),
        format!("/diff?a={id}&b={id}"),
    ];
    proxy.cut();
    for path in &pages {
        let (status, text) = page(&server, path).await;
        assert_eq!(status, 503, "{path}: {text}");
        assert!(text.contains("database unavailable"), "{path}: {text}");
    }
    proxy.restore();
    for path in &pages {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (status, text) = page(&server, path).await;
            if status == 200 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{path}: {status} {text}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    server.stop().await.unwrap();
}

/// A small Go file and its name in the build.
const NAME: &str = "example.com/shop/cart.go";
const SOURCE: &str = "package cart

// Total adds the prices; a negative price is an error.
func Total(prices []int) (int, error) {
\tsum := 0
\tfor _, p := range prices {
\t\tif p < 0 {
\t\t\treturn 0, errNegative
\t\t}
\t\tsum += p
\t}
\treturn sum, nil
}

func Empty(prices []int) bool {
\treturn len(prices) == 0
}
";

/// A page: its status, its text, and that it is HTML.
async fn page(server: &server::Server, path: &str) -> (u16, String) {
    let resp = client()
        .get(format!("http://{}{path}", server.addr))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let text = resp.text().await.unwrap();
    assert!(ct.starts_with("text/html"), "{path}: {ct}: {text}");
    assert!(text.starts_with("<!DOCTYPE html>"), "{path}: {text}");
    assert!(
        !text.contains("http://") && !text.contains("https://"),
        "{path}: external link"
    );
    (status, text)
}

async fn put(server: &server::Server, path: &str, body: Vec<u8>, token: Option<&str>) -> Answer {
    call(
        "PUT",
        format!("http://{}{path}", server.addr),
        Some(body),
        token,
    )
    .await
}

/// Takes a snapshot of `service` with the admin `token`, expecting it stored; its id.
async fn snapshot_with_token(server: &server::Server, service: &str, token: &str) -> i64 {
    let url = format!("http://{}/api/v1/services/{service}/snapshots", server.addr);
    let snap = call("POST", url, Some(b"{}".to_vec()), Some(token)).await;
    assert_eq!(snap.status, 201, "{}", snap.text);
    snap.json["id"].as_i64().unwrap()
}

fn upload(files: &[(&str, &str)]) -> Vec<u8> {
    let upload = SourceUpload {
        files: files
            .iter()
            .map(|(name, source)| SourceFile {
                name: name.to_string(),
                source: source.to_string(),
            })
            .collect(),
    };
    gzip(serde_json::to_string(&upload).unwrap().as_bytes())
}

mod cases {
    use super::*;

    pub async fn pages_follow_the_data(db: &Db) {
        let server = start(config(&db.url)).await;
        let (status, index) = page(&server, "/").await;
        assert_eq!(status, 200);
        assert!(index.contains("No service has registered yet"), "{index}");

        // A service whose name needs escaping in markup and encoding in addresses.
        let service = "shop <eu>/a&b";
        let build = Arc::new(SimBuild::synthetic(Mode::Count, 3, 20, "web"));
        let agents = agents(&server, &build, "plain", 1).await;
        let odd = SimAgent::start(build.clone(), None).await;
        register(&server, &odd, service, "odd-1").await;

        let (_, index) = page(&server, "/").await;
        assert!(
            index.contains("<a href=\"/services/plain\">plain</a>"),
            "{index}"
        );
        assert!(
            index.contains(
                "<a href=\"/services/shop%20%3Ceu%3E%2Fa%26b\">shop &lt;eu&gt;/a&amp;b</a>"
            ),
            "{index}"
        );
        assert!(index.contains("none yet"), "{index}");
        assert!(
            index.contains(&format!("title=\"{}\"", build.id)),
            "{index}"
        );

        let (status, svc) = page(&server, "/services/shop%20%3Ceu%3E%2Fa%26b").await;
        assert_eq!(status, 200, "{svc}");
        assert!(svc.contains("<h1>shop &lt;eu&gt;/a&amp;b</h1>"), "{svc}");
        assert!(svc.contains("No snapshot yet"), "{svc}");
        assert!(svc.contains("<code>odd-1</code>"), "{svc}");
        assert!(
            svc.contains("data-api=\"/api/v1/services/shop%20%3Ceu%3E%2Fa%26b/snapshots\""),
            "{svc}"
        );

        // Two rounds: the second reaches two more blocks, then one with a reset.
        agents[0].hit(0, 3);
        let a = snapshot(&server, "plain", "").await["id"].as_i64().unwrap();
        agents[0].hit(1, 1);
        agents[0].hit(25, 2);
        let b = snapshot(&server, "plain", "").await["id"].as_i64().unwrap();
        let c = snapshot(&server, "plain", "?reset=true").await["id"]
            .as_i64()
            .unwrap();

        let (_, svc) = page(&server, "/services/plain").await;
        assert_eq!(svc.matches("<circle class=\"point\"").count(), 2, "{svc}");
        assert_eq!(
            svc.matches("<circle class=\"point reset\"").count(),
            1,
            "{svc}"
        );
        // Oldest on the left: the points' x grow with the ids.
        let xs: Vec<f64> = svc
            .match_indices("cx=\"")
            .map(|(i, _)| svc[i + 4..].split('"').next().unwrap().parse().unwrap())
            .collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        assert!(
            svc.contains(&format!("<a href=\"/snapshots/{c}\">#{c}</a>")),
            "{svc}"
        );
        assert!(
            svc.contains(&format!("<option value=\"{b}\" selected>#{b}")),
            "{svc}"
        );
        assert!(
            svc.contains("<td class=\"l state-live\">live</td>"),
            "{svc}"
        );

        let (_, index) = page(&server, "/").await;
        assert!(
            index.contains(&format!("<a href=\"/snapshots/{c}\">#{c}</a>")),
            "{index}"
        );

        let (_, snap) = page(&server, &format!("/snapshots/{b}")).await;
        assert!(snap.contains(&format!("<h1>Snapshot #{b}</h1>")), "{snap}");
        assert!(
            snap.contains("<a href=\"/services/plain\">plain</a>"),
            "{snap}"
        );
        assert!(snap.contains("<dd>6 of 120 covered (5.0%)</dd>"), "{snap}");
        assert!(snap.contains("example.com/web/pkg0/file0.go"), "{snap}");
        assert!(
            snap.contains(&format!("/api/v1/snapshots/{b}/profile?format=lcov")),
            "{snap}"
        );
        assert!(
            snap.contains("<td class=\"l outcome-ok\">ok</td>"),
            "{snap}"
        );
        // No sources uploaded: no links to them.
        assert!(!snap.contains("class=\"src\""), "{snap}");

        let (_, diff) = page(&server, &format!("/diff?a={a}&b={b}")).await;
        assert!(
            diff.contains("<dd id=\"newly-covered\">2 blocks, 4 statements</dd>"),
            "{diff}"
        );
        assert!(
            diff.contains("<dd id=\"no-longer-covered\">0 blocks, 0 statements</dd>"),
            "{diff}"
        );
        // Block 1 of file 0 and block 5 of file 1 (20 blocks a file).
        assert!(diff.contains("<caption>Newly covered</caption>"), "{diff}");
        assert!(
            diff.contains(">13:2–15:3</td><td class=\"l\"><code>F0</code>"),
            "{diff}"
        );
        assert!(
            diff.contains(">25:2–27:3</td><td class=\"l\"><code>F0</code>"),
            "{diff}"
        );
        let (_, same) = page(&server, &format!("/diff?a={b}&b={b}")).await;
        assert!(same.contains("cover the same blocks"), "{same}");

        // The history in pages of 200, newest first.
        let (_, older) = page(&server, &format!("/services/plain?before={c}")).await;
        assert_eq!(
            older.matches("<circle class=\"point\"").count(),
            2,
            "{older}"
        );
        assert!(
            older.contains("<a class=\"newer\" href=\"/services/plain\">"),
            "{older}"
        );
        assert!(!older.contains("class=\"older\""), "{older}");
        let (_, none) = page(&server, &format!("/services/plain?before={a}")).await;
        assert!(none.contains("No older snapshot."), "{none}");
        let mut last = c;
        for _ in 0..198 {
            last = snapshot(&server, "plain", "").await["id"].as_i64().unwrap();
        }
        let (_, full) = page(&server, "/services/plain").await;
        assert_eq!(full.matches("<circle class=").count(), 200, "{full}");
        assert!(
            !full.contains(&format!("<a href=\"/snapshots/{a}\">")),
            "{full}"
        );
        assert!(
            full.contains(&format!("href=\"/snapshots/{last}\"")),
            "{full}"
        );
        // The oldest shown is b: the next page starts before it.
        let next = format!("<a class=\"older\" href=\"/services/plain?before={b}\">");
        assert!(full.contains(&next), "{full}");
        let (_, rest) = page(&server, &format!("/services/plain?before={b}")).await;
        assert!(
            rest.contains(&format!("<a href=\"/snapshots/{a}\">#{a}</a>")),
            "{rest}"
        );

        // Errors are pages with the API's status and message.
        for (path, status, says) in [
            ("/services/nope", 404, "no service &quot;nope&quot;"),
            ("/snapshots/999", 404, "no snapshot 999"),
            ("/snapshots/x1", 400, "want a positive integer"),
            ("/services/plain?before=x", 400, "want a positive integer"),
            ("/diff?a=1", 400, "a diff needs two snapshots"),
            ("/diff?a=1&b=999", 404, "no snapshot 999"),
            (
                "/snapshots/1/source?file=nope.go",
                404,
                "no uploaded source",
            ),
        ] {
            let (got, text) = page(&server, path).await;
            assert_eq!(got, status, "{path}: {text}");
            assert!(text.contains(says), "{path}: {text}");
        }

        for (path, ct) in [
            ("/assets/livecov.css", "text/css"),
            ("/assets/livecov.js", "text/javascript"),
            ("/assets/livecov.svg", "image/svg+xml"),
            ("/favicon.ico", "image/svg+xml"),
        ] {
            let resp = client()
                .get(format!("http://{}{path}", server.addr))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            assert!(
                resp.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with(ct)
            );
            assert!(resp.text().await.unwrap().len() > 100, "{path}");
        }
        server.stop().await.unwrap();
    }

    pub async fn sources_are_checked_then_annotated(db: &Db) {
        let mut cfg = config(&db.url);
        cfg.admin_token = Some("adm".into());
        let server = start(cfg).await;
        let file =
            instrumenter::analyze(NAME, SOURCE.as_bytes(), instrumenter::Rules::Go120).unwrap();
        assert_eq!(file.blocks.len(), 6, "{file:?}");
        let build = Arc::new(SimBuild::new(BuildMeta {
            mode: Mode::Count,
            files: vec![file],
        }));
        let id = build.id.clone();

        // Sources need the build first, and a token.
        let a = put(
            &server,
            &format!("/api/v1/builds/{id}/sources"),
            upload(&[(NAME, SOURCE)]),
            Some("adm"),
        )
        .await;
        assert_eq!(a.status, 404, "{}", a.text);
        assert!(
            a.json["error"]
                .as_str()
                .unwrap()
                .contains("PUT its metadata"),
            "{}",
            a.text
        );
        let a = put(
            &server,
            &format!("/api/v1/builds/{id}"),
            build.gz.clone(),
            None,
        )
        .await;
        assert_eq!(a.status, 401, "{}", a.text);
        let other = SimBuild::synthetic(Mode::Count, 1, 1, "other");
        let a = put(
            &server,
            &format!("/api/v1/builds/{id}"),
            other.gz.clone(),
            Some("adm"),
        )
        .await;
        assert_eq!(a.status, 400, "{}", a.text);
        assert!(
            a.json["error"]
                .as_str()
                .unwrap()
                .contains("hashes to build"),
            "{}",
            a.text
        );
        let a = put(&server, "/api/v1/builds/abc", build.gz.clone(), Some("adm")).await;
        assert_eq!(a.status, 400, "{}", a.text);
        let a = put(
            &server,
            &format!("/api/v1/builds/{id}"),
            build.gz.clone(),
            Some("adm"),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert_eq!(a.json["files"], 1);
        assert_eq!(a.json["sources"], 0);
        let a = put(
            &server,
            &format!("/api/v1/builds/{id}"),
            build.gz.clone(),
            Some("adm"),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);

        // Uploads that do not match the build change nothing.
        let edited = SOURCE.replace("sum += p", "sum += p * 2");
        let with_line = SOURCE.replace("\tsum := 0\n", "\tsum := 0\n\n");
        let sources = format!("/api/v1/builds/{id}/sources");
        for (body, says) in [
            (upload(&[(NAME, &edited)]), "not the one build"),
            (upload(&[(NAME, &with_line)]), "not the one build"),
            (upload(&[(NAME, "package cart\nfunc {")]), "does not parse"),
            (
                upload(&[("example.com/shop/other.go", SOURCE)]),
                "is not a file of build",
            ),
            (upload(&[(NAME, SOURCE), (NAME, SOURCE)]), "uploaded twice"),
            (b"{\"files\":[]}".to_vec(), "not gzip-compressed JSON"),
            (gzip(b"{\"files\":3}"), "sources:"),
        ] {
            let a = put(&server, &sources, body, Some("adm")).await;
            assert_eq!(a.status, 400, "{says}: {}", a.text);
            assert!(
                a.json["error"].as_str().unwrap().contains(says),
                "{says}: {}",
                a.text
            );
        }
        let too_big = vec![0; server::sources::MAX_UPLOAD + 1];
        let a = put(&server, &sources, too_big, Some("adm")).await;
        assert_eq!(a.status, 413, "{}", a.text);
        let agent = SimAgent::start(build.clone(), None).await;
        register(&server, &agent, "shop", "s1").await;
        // Total entered twice, its loop once, never the error; Empty never. Counters are in
        // the metadata's order: each block is found by the line it starts on.
        let at = |line: u32| {
            let blocks = &build.meta.files[0].blocks;
            blocks.iter().position(|b| b.start.line == line).unwrap()
        };
        let mut counts = vec![0; 6];
        for (line, n) in [(4, 2), (6, 1), (10, 1), (12, 2)] {
            counts[at(line)] = n;
        }
        agent.set_counters(counts);
        let sid = snapshot_with_token(&server, "shop", "adm").await;
        let (_, html) = page(&server, &format!("/snapshots/{sid}")).await;
        assert!(!html.contains("class=\"src\""), "{html}");

        let a = put(&server, &sources, upload(&[(NAME, SOURCE)]), Some("adm")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            (a.json["sources"].as_i64(), a.json["stored"].as_i64()),
            (Some(1), Some(1))
        );
        let a = put(&server, &sources, upload(&[(NAME, SOURCE)]), Some("adm")).await;
        assert_eq!(
            (a.json["sources"].as_i64(), a.json["stored"].as_i64()),
            (Some(1), Some(0))
        );

        let (_, html) = page(&server, &format!("/snapshots/{sid}")).await;
        let link = format!("/snapshots/{sid}/source?file=example.com%2Fshop%2Fcart.go");
        assert!(
            html.contains(&format!("<a href=\"{link}#L4\"><code>Total</code></a>")),
            "{html}"
        );
        assert!(
            html.contains(&format!("<a class=\"src\" href=\"{link}\">source</a>")),
            "{html}"
        );
        let (status, src) = page(&server, &link).await;
        assert_eq!(status, 200, "{src}");
        // Every line is there, numbered; the error return is red, the loop body green.
        assert_eq!(
            src.matches("<span class=\"ln\"").count(),
            SOURCE.lines().count(),
            "{src}"
        );
        assert!(
            src.contains("<span class=\"c0\" title=\"0\">\t\t\treturn 0, errNegative"),
            "{src}"
        );
        assert!(
            src.contains("<span class=\"c1\" title=\"1\">sum += p</span>"),
            "{src}"
        );
        assert!(
            src.contains("<span class=\"c0\" title=\"0\">\treturn len(prices) == 0"),
            "{src}"
        );
        assert!(
            src.contains("\t<span class=\"c1\" title=\"2\">return sum, nil</span>"),
            "{src}"
        );
        assert!(
            src.contains("// Total adds the prices; a negative price is an error."),
            "{src}"
        );

        // A second round reaches Empty: the diff links its block to its line in the source.
        let mut counts = agent.counters();
        counts[at(15)] = 1;
        agent.set_counters(counts);
        let sid2 = snapshot_with_token(&server, "shop", "adm").await;
        let (_, diff) = page(&server, &format!("/diff?a={sid}&b={sid2}")).await;
        let href = format!("/snapshots/{sid2}/source?file=example.com%2Fshop%2Fcart.go#L15");
        assert!(diff.contains(&format!("<a href=\"{href}\">15:")), "{diff}");
        server.stop().await.unwrap();
    }
}
