//! Part 2: the diff of two snapshots of a 1,000,000-block build, cold and warm, and its steps
//! timed with the server's own functions.

use super::*;

impl Bench {
    pub(super) async fn diffs(&self, kind: Kind, build: &Arc<SimBuild>) -> Result<DiffFigures> {
        let db = self.database(kind, "diff").await?;
        let log = format!("diff-{}.log", kind.name());
        let server = self.start_server(&db, &log).await?;
        let agent = SimAgent::start(build.clone(), None).await;
        let body = agent.registration(DIFF_SERVICE, "only");
        server
            .post(&self.client, "/api/v1/agents/register", &body, 200)
            .await?;
        // The registration made the server fetch the build's metadata in the background.
        let start = Instant::now();
        db.wait_for_build(&build.id).await?;
        let mut figures = DiffFigures {
            meta_fetch_ms: secs(start.elapsed()) * 1e3,
            ..DiffFigures::default()
        };

        let (a, b, c) = diff_counters(build.num_blocks());
        let path = format!("/api/v1/services/{DIFF_SERVICE}/snapshots");
        let empty = serde_json::json!({});
        let mut ids = Vec::new();
        for (i, values) in [&a, &b, &c].into_iter().enumerate() {
            agent.set_counters(values.clone());
            let (answer, took) = server.post(&self.client, &path, &empty, 201).await?;
            let took = secs(took);
            check_instances(&answer, 1)?;
            let covered = values.iter().filter(|&&v| v != 0).count() as i64;
            ensure!(
                answer["totals"]["blocks_covered"].as_i64() == Some(covered),
                "snapshot {i}: {} blocks covered, {covered} set",
                answer["totals"]["blocks_covered"]
            );
            figures.snapshot_ms.push(took * 1e3);
            figures.covered.push(covered);
            ids.push(answer["id"].as_i64().context("a snapshot without id")?);
        }
        let sizes = db.sizes().await?;
        figures.counters_bytes = sizes.counters as f64 / 3.0;
        server.stop()?;

        // Each diff first on a new server process, the build's metadata only in the store
        // (cold), then with the metadata in memory (warm).
        for (name, x, y, right) in [("A→B", 0, 1, &b), ("A→C", 0, 2, &c)] {
            let path = format!("/api/v1/snapshots/{}/diff/{}", ids[x], ids[y]);
            let server = self.start_server(&db, &log).await?;
            let start = Instant::now();
            let body = server.get(&self.client, &path).await?;
            let cold_ms = secs(start.elapsed()) * 1e3;
            let bytes = body.len();
            check_diff(&serde_json::from_slice(&body)?, &a, right)?;
            let mut warm_ms = Vec::new();
            for _ in 0..self.opts.diff_calls {
                let start = Instant::now();
                let body = server.get(&self.client, &path).await?;
                warm_ms.push(secs(start.elapsed()) * 1e3);
                ensure!(body.len() == bytes, "{path}: answers of different lengths");
            }
            figures.cases.push(DiffCase {
                name,
                cold_ms,
                warm_ms,
                bytes,
                changed: changed(&a, right),
                peak_rss: server.peak_rss()?,
            });
            server.stop()?;
        }
        agent.stop();
        db.remove().await?;
        Ok(figures)
    }
}

pub(super) fn changed(a: &[u32], b: &[u32]) -> (i64, i64) {
    let newly = a
        .iter()
        .zip(b)
        .filter(|(x, y)| **x == 0 && **y != 0)
        .count();
    let lost = a
        .iter()
        .zip(b)
        .filter(|(x, y)| **x != 0 && **y == 0)
        .count();
    (newly as i64, lost as i64)
}

pub(super) fn check_diff(diff: &serde_json::Value, a: &[u32], b: &[u32]) -> Result<()> {
    let (newly, lost) = changed(a, b);
    let total = &diff["total"];
    ensure!(
        total["newly_covered"].as_i64() == Some(newly)
            && total["no_longer_covered"].as_i64() == Some(lost),
        "the diff says {} newly and {} no longer covered, expected {newly} and {lost}",
        total["newly_covered"],
        total["no_longer_covered"]
    );
    Ok(())
}

#[derive(Default)]
pub(super) struct DiffFigures {
    /// From the registration's answer to the build's metadata in the store.
    pub(super) meta_fetch_ms: f64,
    /// The snapshots A, B and C.
    pub(super) snapshot_ms: Vec<f64>,
    /// Blocks covered in A, B and C.
    pub(super) covered: Vec<i64>,
    /// LCC1 counters per snapshot, bytes.
    pub(super) counters_bytes: f64,
    pub(super) cases: Vec<DiffCase>,
}

pub(super) struct DiffCase {
    pub(super) name: &'static str,
    pub(super) cold_ms: f64,
    pub(super) warm_ms: Vec<f64>,
    pub(super) bytes: usize,
    /// Blocks newly and no longer covered.
    pub(super) changed: (i64, i64),
    /// Of the server process that made this diff.
    pub(super) peak_rss: u64,
}

/// The diff's steps timed in this process with the server's own code, A against B: where a
/// warm and a cold diff spend their time, without a profiler.
pub(super) struct Breakdown {
    pub(super) runs: usize,
    /// Each step's median time for A→B and A→C, ms.
    pub(super) steps: Vec<(&'static str, f64, f64)>,
    /// The build's metadata as agents serve it and the store keeps it, bytes.
    pub(super) meta_gz: usize,
    /// The same in the binary form the store keeps beside it (`LCM1`), bytes.
    pub(super) meta_bin: usize,
}

pub(super) fn diff_breakdown(build: &SimBuild) -> Result<Breakdown> {
    use server::{diff, lcc, lcm, meta};
    const RUNS: usize = 5;
    let n = build.num_blocks();
    let (a, b, c) = diff_counters(n);
    let encode = |v: &[u32]| lcc::encode(&build.id, Mode::Set, &build.shape, v);
    let (ea, eb, ec) = (encode(&a), encode(&b), encode(&c));
    let decode = |body: &[u8]| -> Result<Vec<u32>> {
        let sparse = lcc::decode(body, &build.id, &build.shape)?;
        let mut v = vec![0u32; n];
        for (i, x) in sparse.nonzero {
            v[i as usize] = x;
        }
        Ok(v)
    };
    // Per step, the times of each run for A→B and A→C.
    let mut times: Vec<(&'static str, Vec<f64>, Vec<f64>)> = [
        "cold only: load the stored metadata (decode its binary form, `LCM1`), as the server does",
        "not in a diff: load it from the gzip JSON instead (gunzip, parse), as the server did before `LCM1` and does once for a build stored without it",
        "not in a diff: the build id check of metadata fetched from an agent or converted (SHA-256)",
        "not in a diff: encode the binary form, once when the build is stored",
        "decode both snapshots' counters",
        "compare block by block (`diff_build`)",
        "serialize the answer to JSON",
    ]
    .into_iter()
    .map(|name| (name, Vec::new(), Vec::new()))
    .collect();
    let bin = lcm::encode(&build.id, &build.meta);
    for _ in 0..RUNS {
        let start = Instant::now();
        let parsed = meta::Build::decode_now(&bin, &build.id, u64::MAX)
            .map_err(|e| anyhow::anyhow!("the build's binary metadata: {e}"))?;
        let load = secs(start.elapsed()) * 1e3;
        let start = Instant::now();
        let from_json =
            meta::Build::parse_now(&build.gz, &build.id, meta::Source::Stored, u64::MAX)
                .map_err(|e| anyhow::anyhow!("the build's metadata: {e}"))?;
        let from_json_ms = secs(start.elapsed()) * 1e3;
        ensure!(from_json.meta == parsed.meta, "the two forms differ");
        drop(from_json);
        let start = Instant::now();
        ensure!(parsed.meta.build_id() == build.id, "the build id changed");
        let id = secs(start.elapsed()) * 1e3;
        let start = Instant::now();
        let again = lcm::encode(&parsed.id, &parsed.meta);
        let encode = secs(start.elapsed()) * 1e3;
        ensure!(again == bin, "the binary form changed");
        for (right, body) in [(1, &eb), (2, &ec)] {
            let mut took = Vec::new();
            let start = Instant::now();
            let (da, db) = (decode(&ea)?, decode(body)?);
            took.push(secs(start.elapsed()) * 1e3);
            let start = Instant::now();
            let d = diff::diff_build(&parsed, &da, &db, true);
            took.push(secs(start.elapsed()) * 1e3);
            let start = Instant::now();
            let json = serde_json::to_vec(&d)?;
            took.push(secs(start.elapsed()) * 1e3);
            ensure!(json.len() > 1, "an empty diff");
            for (i, ms) in [load, from_json_ms, id, encode]
                .into_iter()
                .chain(took)
                .enumerate()
            {
                let (_, ab, ac) = &mut times[i];
                if right == 1 { ab } else { ac }.push(ms);
            }
        }
    }
    Ok(Breakdown {
        runs: RUNS,
        steps: times
            .into_iter()
            .map(|(name, ab, ac)| (name, median(&ab), median(&ac)))
            .collect(),
        meta_gz: build.gz.len(),
        meta_bin: bin.len(),
    })
}

/// The counters of snapshots A, B and C of the diff build (see the module's documentation).
pub(super) fn diff_counters(n: usize) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let draw = |seed: u64, p: f64| -> Vec<u32> {
        (0..n)
            .map(|b| u32::from(unit(&[seed, b as u64]) < p))
            .collect()
    };
    let (a, b) = (draw(0xA, DIFF_COVERED), draw(0xB, DIFF_COVERED));
    let flips = draw(0xC, DIFF_FLIPPED);
    let c = a.iter().zip(&flips).map(|(x, f)| x ^ f).collect();
    (a, b, c)
}
