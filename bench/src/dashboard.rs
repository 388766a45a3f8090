//! The dashboard's pages for a build of about 100,000 blocks, against the exports and against
//! `go tool cover -html`: the aim is a 100,000-block snapshot page rendered in under 1 s.
//!
//! The build is a real Go module, generated on disk: `example.com/dashbench`, 100 packages of
//! 10 files, each file 10 functions that branch (`if`/`else`, a `range` loop with `continue`,
//! a `switch`) alternately with 11 and 9 blocks, so 100 blocks a file and 100,000 in all; the
//! constants in each function are pseudo-random, so no two files are alike. Its metadata is
//! what the instrumenter makes of these files (`instrumenter::analyze`), in count mode; the
//! files are valid Go, so `go list` and `go tool cover` accept the module.
//!
//! The server is the real executable (`livecov server`, a separate process on a fresh SQLite
//! database, as in the `server` benchmark). The build's metadata and then its sources are
//! uploaded (`PUT /api/v1/builds/{build}` and `…/sources`, as `livecov build
//! --upload-sources` does), two simulated agents (`server::sim`) of one service register, and
//! 200 snapshots are taken one after the other, so the service page has a full history. The
//! coverage grows over the history, from 15% of the blocks in the first snapshot to 30% in the
//! last (a block, once covered, stays covered); 2% of the blocks are covered only in the first
//! half of it, so the diff of the 100th snapshot against the last has blocks newly and no
//! longer covered. Each covered block is counted by one agent or both, with counts of 1 to a
//! few thousand that grow with the snapshot's number.
//!
//! Measured, each on a new server process over that database: the first request (cold: the
//! build's metadata is loaded from the store), one untimed request, then `--requests`
//! requests one after the other, timed in this process from sending the request to the end of
//! the answer's body, over a keep-alive connection; the server's CPU time over those requests
//! from `/proc/PID/stat` (clock ticks of 10 ms, so given per request over all of them) and its
//! peak resident memory (`VmHWM`). The pages: the last snapshot's (`/snapshots/{id}`), the
//! service's (`/services/{name}`), the diff (`/diff?a=&b=`) and one file's annotated source
//! (`/snapshots/{id}/source?file=`); for comparison the same snapshot's JSON and standalone
//! HTML exports (`/api/v1/snapshots/{id}/profile?format=json|html`), and what people run
//! without livecov: `go tool cover -html=PROFILE -o out.html` in the generated module, on the
//! server's coverprofile of the same snapshot (`?format=go`), run as many times (the first
//! run reported as cold), its CPU time that of the exited children of this process.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use instrumenter::{BuildMeta, FileMeta, Mode};
use report::types::{SourceFile, SourceUpload};
use server::sim::{SimAgent, SimBuild};

use crate::common::{self, LiveServer, check_instances, cpu_of, median, percentile, secs, unit};

const MODULE: &str = "example.com/dashbench";
const PACKAGES: usize = 100;
const FILES_PER_PACKAGE: usize = 10;
const FUNCS_PER_FILE: usize = 10;

const SERVICE: &str = "bench-dashboard";
const AGENTS: usize = 2;
/// Snapshots taken: the most a service page shows.
const SNAPSHOTS: usize = 200;
/// The share of blocks covered in the first and the last snapshot.
const COVERED_FIRST: f64 = 0.15;
const COVERED_LAST: f64 = 0.30;
/// The share of blocks covered only in the first half of the history.
const FLAKY: f64 = 0.02;
/// The snapshot the diff starts from (1-based, in the order taken).
const DIFF_FROM: usize = 100;

/// The aim: a 100,000-block snapshot page rendered in under 1 s.
const AIM_PAGE_S: f64 = 1.0;

/// `livecov-bench dashboard`'s flags.
#[derive(clap::Args)]
pub struct Args {
    /// Requests per page measured.
    #[arg(long, default_value_t = 20, value_parser = common::positive)]
    requests: usize,
}

pub fn run(Args { requests }: Args) -> Result<()> {
    let (livecov, scratch) = common::start()?;
    let module = scratch.path().join("module");
    eprintln!("generating the Go module…");
    let sources = generate(&module)?;
    let start = Instant::now();
    let files = sources
        .iter()
        .map(|f| {
            instrumenter::analyze(&f.name, f.source.as_bytes(), instrumenter::Rules::Go120)
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.name))
        })
        .collect::<Result<Vec<FileMeta>>>()?;
    let analyze_ms = secs(start.elapsed()) * 1e3;
    let build = Arc::new(SimBuild::new(BuildMeta {
        mode: Mode::Count,
        files,
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let bench = Bench {
        livecov: livecov.clone(),
        scratch: scratch.path().to_path_buf(),
        module,
        client: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(600))
            .build()?,
        requests,
        build,
        sources,
    };
    let figures = rt.block_on(bench.run())?;
    report(&bench, analyze_ms, &figures);
    common::print_machine("dashboard", ("livecov", &livecov))
}

struct Bench {
    livecov: std::path::PathBuf,
    scratch: std::path::PathBuf,
    module: std::path::PathBuf,
    client: reqwest::Client,
    requests: usize,
    build: Arc<SimBuild>,
    sources: Vec<SourceFile>,
}

#[derive(Default)]
struct Figures {
    source_bytes: usize,
    upload_meta_ms: f64,
    upload_sources_ms: f64,
    snapshot_ms: Vec<f64>,
    /// Blocks covered in the diff's two snapshots, and newly / no longer covered.
    covered: (usize, usize),
    changed: (i64, i64),
    cases: Vec<Case>,
}

/// One page or export, or `go tool cover`.
struct Case {
    name: String,
    what: String,
    bytes: usize,
    cold_ms: f64,
    warm_ms: Vec<f64>,
    /// CPU time per request (the server's, or `go tool cover`'s with its children).
    cpu_ms: f64,
    /// The server's peak resident memory; none for `go tool cover`.
    peak_rss: Option<u64>,
}

impl Bench {
    async fn run(&self) -> Result<Figures> {
        let mut figures = Figures {
            source_bytes: self.sources.iter().map(|f| f.source.len()).sum(),
            ..Figures::default()
        };
        let db = self.scratch.join("db");
        std::fs::create_dir_all(&db)?;
        let url = format!("sqlite://{}", db.join("livecov.db").display());
        let server = self.start_server(&url, "setup.log").await?;

        eprintln!("uploading the build's metadata and sources…");
        let id = &self.build.id;
        let (_, took) = server
            .put(
                &self.client,
                &format!("/api/v1/builds/{id}"),
                self.build.gz.clone(),
                201,
            )
            .await?;
        figures.upload_meta_ms = secs(took) * 1e3;
        let upload = SourceUpload {
            files: self.sources.clone(),
        };
        let body = report::gzip::gzip(&serde_json::to_vec(&upload)?);
        let (answer, took) = server
            .put(
                &self.client,
                &format!("/api/v1/builds/{id}/sources"),
                body,
                200,
            )
            .await?;
        figures.upload_sources_ms = secs(took) * 1e3;
        ensure!(
            answer["sources"].as_u64() == Some(self.sources.len() as u64),
            "the server has the sources of {} files, {} uploaded",
            answer["sources"],
            self.sources.len()
        );

        eprintln!("taking {SNAPSHOTS} snapshots…");
        let mut agents = Vec::new();
        for i in 0..AGENTS {
            let agent = SimAgent::start(self.build.clone(), None).await;
            let body = agent.registration(SERVICE, &format!("i{i}"));
            server
                .post(&self.client, "/api/v1/agents/register", &body, 200)
                .await?;
            agents.push(agent);
        }
        let n = self.build.num_blocks();
        let path = format!("/api/v1/services/{SERVICE}/snapshots");
        let mut ids = Vec::new();
        for k in 0..SNAPSHOTS {
            for (a, agent) in agents.iter().enumerate() {
                agent.set_counters((0..n).map(|b| count(k, a, b)).collect());
            }
            let body = serde_json::json!({ "label": format!("run {}", k + 1) });
            let (answer, took) = server.post(&self.client, &path, &body, 201).await?;
            check_instances(&answer, AGENTS)?;
            let want = (0..n).filter(|&b| covered(k, b)).count();
            ensure!(
                answer["totals"]["blocks_covered"].as_u64() == Some(want as u64),
                "snapshot {}: {} blocks covered, {want} set",
                k + 1,
                answer["totals"]["blocks_covered"]
            );
            figures.snapshot_ms.push(secs(took) * 1e3);
            ids.push(answer["id"].as_i64().context("a snapshot without id")?);
        }
        for agent in agents {
            agent.stop();
        }
        let (a, b) = (ids[DIFF_FROM - 1], ids[SNAPSHOTS - 1]);
        let (ka, kb) = (DIFF_FROM - 1, SNAPSHOTS - 1);
        figures.covered = (
            (0..n).filter(|&x| covered(ka, x)).count(),
            (0..n).filter(|&x| covered(kb, x)).count(),
        );
        figures.changed = (
            (0..n)
                .filter(|&x| !covered(ka, x) && covered(kb, x))
                .count() as i64,
            (0..n)
                .filter(|&x| covered(ka, x) && !covered(kb, x))
                .count() as i64,
        );
        let diff: serde_json::Value = serde_json::from_slice(
            &server
                .get(
                    &self.client,
                    &format!("/api/v1/snapshots/{a}/diff/{b}?blocks=false"),
                )
                .await?,
        )?;
        ensure!(
            diff["total"]["newly_covered"].as_i64() == Some(figures.changed.0)
                && diff["total"]["no_longer_covered"].as_i64() == Some(figures.changed.1),
            "the diff says {} newly and {} no longer covered, expected {:?}",
            diff["total"]["newly_covered"],
            diff["total"]["no_longer_covered"],
            figures.changed
        );
        let profile = server
            .get(
                &self.client,
                &format!("/api/v1/snapshots/{b}/profile?format=go"),
            )
            .await?;
        server.stop()?;

        let file = &self.sources[0].name;
        let pages = [
            (
                "snapshot page",
                format!("/snapshots/{b}"),
                "files and functions of the last snapshot".to_string(),
            ),
            (
                "service page",
                format!("/services/{SERVICE}"),
                format!("{SNAPSHOTS} snapshots in its history and trend"),
            ),
            (
                "diff page",
                format!("/diff?a={a}&b={b}"),
                format!("snapshot {DIFF_FROM} → {SNAPSHOTS}"),
            ),
            (
                "source page",
                format!("/snapshots/{b}/source?file={file}"),
                format!("`{file}`, {} blocks", self.build.meta.files[0].blocks.len()),
            ),
            (
                "JSON export",
                format!("/api/v1/snapshots/{b}/profile?format=json"),
                "the same snapshot".to_string(),
            ),
            (
                "HTML export",
                format!("/api/v1/snapshots/{b}/profile?format=html"),
                "the same snapshot, standalone".to_string(),
            ),
        ];
        for (name, path, what) in pages {
            eprintln!("{name}…");
            figures
                .cases
                .push(self.measure(&url, name, &path, what).await?);
        }
        eprintln!("go tool cover -html…");
        figures.cases.push(self.go_cover(&profile)?);
        Ok(figures)
    }

    async fn start_server(&self, url: &str, log: &str) -> Result<LiveServer> {
        LiveServer::start(&self.livecov, url, &self.scratch.join(log)).await
    }

    /// `GET path` on a new server process: cold, once untimed, then `requests` times.
    async fn measure(&self, url: &str, name: &str, path: &str, what: String) -> Result<Case> {
        let server = self
            .start_server(url, &format!("{}.log", name.replace(' ', "-")))
            .await?;
        let start = Instant::now();
        let body = server.get(&self.client, path).await?;
        let cold_ms = secs(start.elapsed()) * 1e3;
        check_page(name, &body)?;
        let bytes = body.len();
        server.get(&self.client, path).await?;
        let cpu0 = server.cpu()?;
        let mut warm_ms = Vec::with_capacity(self.requests);
        for _ in 0..self.requests {
            let start = Instant::now();
            let body = server.get(&self.client, path).await?;
            warm_ms.push(secs(start.elapsed()) * 1e3);
            ensure!(body.len() == bytes, "{path}: answers of different lengths");
        }
        let cpu_ms = secs(server.cpu()? - cpu0) * 1e3 / self.requests as f64;
        let peak_rss = Some(server.peak_rss()?);
        server.stop()?;
        Ok(Case {
            name: name.to_string(),
            what,
            bytes,
            cold_ms,
            warm_ms,
            cpu_ms,
            peak_rss,
        })
    }

    /// `go tool cover -html` on the server's coverprofile of the snapshot, in the module.
    fn go_cover(&self, profile: &[u8]) -> Result<Case> {
        let prof = self.scratch.join("snapshot.out");
        std::fs::write(&prof, profile)?;
        let out = self.scratch.join("cover.html");
        let html_arg = format!("-html={}", prof.display());
        let out_arg = format!("-o={}", out.display());
        let args = ["tool", "cover", html_arg.as_str(), out_arg.as_str()];
        let run = || common::timed_ok(&mut common::go_command(&self.module, &args));
        let cold_ms = secs(run()?) * 1e3;
        let bytes = std::fs::metadata(&out)?.len() as usize;
        run()?;
        let cpu0 = children_cpu()?;
        let mut warm_ms = Vec::with_capacity(self.requests);
        for _ in 0..self.requests {
            warm_ms.push(secs(run()?) * 1e3);
        }
        let cpu_ms = secs(children_cpu()? - cpu0) * 1e3 / self.requests as f64;
        Ok(Case {
            name: "`go tool cover -html`".to_string(),
            what: format!(
                "the snapshot's coverprofile ({} bytes) → one HTML file",
                profile.len()
            ),
            bytes,
            cold_ms,
            warm_ms,
            cpu_ms,
            peak_rss: None,
        })
    }
}

/// The CPU time of this process's exited and waited-for children.
fn children_cpu() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let all = cpu_of(&stat, true).context("/proc/self/stat")?;
    let own = cpu_of(&stat, false).context("/proc/self/stat")?;
    Ok(all.saturating_sub(own))
}

/// A light check that a page is what it should be.
fn check_page(name: &str, body: &[u8]) -> Result<()> {
    let text = String::from_utf8_lossy(body);
    let want = match name {
        "JSON export" => "{",
        // Sources were uploaded: the files link to their annotated source.
        "snapshot page" => "/source?file=",
        "service page" => "<svg",
        "source page" => "F0_0",
        _ => "<html",
    };
    ensure!(
        text.contains(want),
        "{name}: no {want:?} in the answer: {}",
        &text[..text.len().min(300)]
    );
    Ok(())
}

/// Whether block `b` is covered in snapshot `k` (0-based): see the module's documentation.
fn covered(k: usize, b: usize) -> bool {
    let share = COVERED_FIRST + (COVERED_LAST - COVERED_FIRST) * k as f64 / (SNAPSHOTS - 1) as f64;
    let flaky = unit(&[0xF1, b as u64]) < FLAKY;
    unit(&[0xC0, b as u64]) < share && !(flaky && k >= SNAPSHOTS / 2)
}

/// Agent `a`'s counter of block `b` in snapshot `k`.
fn count(k: usize, a: usize, b: usize) -> u32 {
    if !covered(k, b) {
        return 0;
    }
    // Which agents run the block: the first, the second, or both.
    let who = unit(&[0xA9, b as u64]);
    let runs = match a {
        0 => !(0.4..0.8).contains(&who),
        _ => who >= 0.4,
    };
    if !runs {
        return 0;
    }
    let base = 1.0 / (unit(&[0xC7, a as u64, b as u64]) + 0.02);
    (base * (k + 1) as f64 / 20.0).ceil() as u32
}

/// Writes the module and answers its files as (profile name, source), package by package.
fn generate(dir: &Path) -> Result<Vec<SourceFile>> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("go.mod"), format!("module {MODULE}\n\ngo 1.21\n"))?;
    let mut files = Vec::with_capacity(PACKAGES * FILES_PER_PACKAGE);
    for p in 0..PACKAGES {
        let pkg = format!("pkg{p:02}");
        std::fs::create_dir_all(dir.join(&pkg))?;
        for f in 0..FILES_PER_PACKAGE {
            let source = go_file(&pkg, p, f);
            let name = format!("file{f}.go");
            std::fs::write(dir.join(&pkg).join(&name), &source)?;
            files.push(SourceFile {
                name: format!("{MODULE}/{pkg}/{name}"),
                source,
            });
        }
    }
    Ok(files)
}

/// File `f` of package `p`: `FUNCS_PER_FILE` functions, alternately of 11 and 9 blocks.
fn go_file(pkg: &str, p: usize, f: usize) -> String {
    use std::fmt::Write as _;
    let mut out =
        format!("// Code generated by livecov-bench dashboard. DO NOT EDIT.\n\npackage {pkg}\n");
    for k in 0..FUNCS_PER_FILE {
        let draw =
            |salt: u64, n: u64| (unit(&[salt, p as u64, f as u64, k as u64]) * n as f64) as u64;
        let (c1, c2, c3, c4) = (draw(1, 100), draw(2, 50), 2 + draw(3, 8), 1 + draw(4, 9));
        let name = format!("F{f}_{k}");
        let _ = write!(
            out,
            "\n// {name} folds xs into a checksum.\nfunc {name}(xs []int, n int) int {{\n\
             \ttotal := {c1}\n\tif n > {c2} {{\n\t\ttotal += n\n\t}}"
        );
        if k % 2 == 0 {
            out.push_str(" else {\n\t\ttotal -= n\n\t}");
        }
        let _ = write!(
            out,
            "\n\tfor i, x := range xs {{\n\t\tif x%{c3} == 0 {{\n\t\t\ttotal += x * i\n\
             \t\t\tcontinue\n\t\t}}\n\t\tswitch {{\n\t\tcase x > n:\n\t\t\ttotal++\n\
             \t\tcase x < -n:\n\t\t\ttotal--\n"
        );
        if k % 2 == 0 {
            let _ = write!(out, "\t\tdefault:\n\t\t\ttotal += {c4}\n");
        }
        out.push_str("\t\t}\n\t}\n\treturn total\n}\n");
    }
    out
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn fmax(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn report(bench: &Bench, analyze_ms: f64, f: &Figures) {
    let blocks = bench.build.num_blocks();
    let files = bench.build.meta.files.len();
    let funcs: usize = bench.build.meta.files.iter().map(|f| f.funcs.len()).sum();
    println!("## Dashboard pages: a snapshot of {blocks} blocks\n");
    println!(
        "Input: the generated module `{MODULE}`, {PACKAGES} packages × {FILES_PER_PACKAGE} files \
         × {FUNCS_PER_FILE} functions: {files} files, {funcs} functions, {blocks} blocks in \
         count mode, {} bytes of Go ({analyze_ms:.0} ms to analyze in this process). Metadata \
         {} bytes of gzip JSON, uploaded in {:.0} ms; sources uploaded (and checked by the \
         server) in {:.0} ms. {SNAPSHOTS} snapshots of {AGENTS} instances, median {:.0} ms, max \
         {:.0} ms each. Diff: snapshot {DIFF_FROM} ({} blocks covered) → {SNAPSHOTS} ({}), {} \
         newly and {} no longer covered.\n",
        f.source_bytes,
        bench.build.gz.len(),
        f.upload_meta_ms,
        f.upload_sources_ms,
        median(&f.snapshot_ms),
        fmax(&f.snapshot_ms),
        f.covered.0,
        f.covered.1,
        f.changed.0,
        f.changed.1,
    );
    println!(
        "Each on a new server process: the first request (cold), one untimed, then {} timed:\n",
        bench.requests
    );
    println!(
        "| page | what | bytes | first, cold ms | median ms | p90 ms | max ms | CPU ms per \
         request | server peak RSS MB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for c in &f.cases {
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            c.name,
            c.what,
            c.bytes,
            c.cold_ms,
            median(&c.warm_ms),
            percentile(&c.warm_ms, 90.0),
            fmax(&c.warm_ms),
            c.cpu_ms,
            c.peak_rss
                .map_or("–".to_string(), |b| format!("{:.0}", mb(b))),
        );
    }
    if let Some(page) = f.cases.iter().find(|c| c.name == "snapshot page") {
        let worst = fmax(&page.warm_ms).max(page.cold_ms);
        println!(
            "\nAim: a {blocks}-block snapshot page under {AIM_PAGE_S} s: cold {:.0} ms, warm \
             median {:.0} ms, slowest {worst:.0} ms: {}.",
            page.cold_ms,
            median(&page.warm_ms),
            if worst < AIM_PAGE_S * 1e3 {
                "met"
            } else {
                "**not met**"
            }
        );
    }
}
