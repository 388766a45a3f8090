//! Part 2: 50 builds deployed one after the other, a snapshot of each (and of every third
//! rolling update), then the cycle's views cold and warm against the export of one snapshot,
//! and the steps of a cycle view timed in this process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use server::sim::{SimAgent, SimBuild};

use super::code::{Expected, expected};
use super::*;
use server::snapshot::Against as _;

const SERVICE: &str = "bench-cycle";
pub(super) const BUILDS: usize = 50;
/// Instances per build.
pub(super) const PER_BUILD: usize = 4;
/// Every this many builds, a snapshot while the build before is still live.
pub(super) const ROLLING_EVERY: usize = 3;
/// The shorter cycle: from the first snapshot of the build this many before the end.
pub(super) const RECENT: usize = 10;
/// The server's `--instance-ttl` while the builds are deployed, and how often the live
/// instances send a heartbeat.
pub(super) const TTL: &str = "1s";
pub(super) const HEARTBEAT_MS: u64 = 200;

/// Build `k` from build `k - 1`.
pub(super) fn changes(k: usize) -> Changes {
    Changes {
        edited: 50,
        added: if k.is_multiple_of(5) { 5 } else { 0 },
        shifted: if k.is_multiple_of(4) { 10 } else { 0 },
    }
}

pub(super) struct Input {
    pub(super) codes: Vec<Code>,
    pub(super) builds: Vec<Arc<SimBuild>>,
    /// Per build, per instance.
    counters: Vec<Vec<Vec<u32>>>,
    /// Per build, its instances merged.
    unions: Vec<Vec<u32>>,
    /// Per build: its snapshot alone; during its rolling update (with the build before).
    alone: Vec<Expected>,
    rolling: Vec<Option<Expected>>,
}

impl Input {
    pub(super) fn new() -> Input {
        let mut codes = vec![Code::first()];
        for k in 1..BUILDS {
            codes.push(codes[k - 1].next(0xC0DE + k as u64, changes(k)));
        }
        let counters: Vec<Vec<Vec<u32>>> = codes
            .iter()
            .enumerate()
            .map(|(k, code)| {
                let base = 10_000 + 100 * k as u64;
                code.counters(base..base + PER_BUILD as u64)
            })
            .collect();
        let unions: Vec<Vec<u32>> = counters.iter().map(|c| union(c)).collect();
        let alone = (0..BUILDS)
            .map(|k| expected(&[(&codes[k], &unions[k])], 0))
            .collect();
        let rolling = (0..BUILDS)
            .map(|k| {
                (k > 0 && k.is_multiple_of(ROLLING_EVERY)).then(|| {
                    expected(
                        &[(&codes[k - 1], &unions[k - 1]), (&codes[k], &unions[k])],
                        1,
                    )
                })
            })
            .collect();
        let builds = codes
            .iter()
            .map(|c| Arc::new(SimBuild::new(c.meta())))
            .collect();
        Input {
            codes,
            builds,
            counters,
            unions,
            alone,
            rolling,
        }
    }

    /// The view of builds `from..` merged against the newest.
    fn expected_from(&self, from: usize) -> Expected {
        let parts: Vec<(&Code, &[u32])> = (from..BUILDS)
            .map(|k| (&self.codes[k], self.unions[k].as_slice()))
            .collect();
        expected(&parts, parts.len() - 1)
    }
}

/// A snapshot taken: its id and the builds it holds.
struct Taken {
    id: i64,
    builds: Vec<usize>,
}

pub(super) struct Figures {
    pub(super) snapshots: usize,
    pub(super) rolling_snapshots: usize,
    /// Wall ms: snapshots of one build (4 instances), and of a rolling update (8, two builds).
    pub(super) single_ms: Vec<f64>,
    pub(super) rolling_ms: Vec<f64>,
    /// From the first registration of a build to its metadata in the store.
    pub(super) meta_ms: Vec<f64>,
    /// From the old instances' last heartbeat to the service without them.
    pub(super) gone_ms: Vec<f64>,
    /// The whole deployment of the 50 builds, seconds.
    pub(super) deploy_s: f64,
    /// The 50-build cycle's summary, as answered.
    pub(super) summary: serde_json::Value,
    pub(super) views: Vec<(String, Calls)>,
    pub(super) steps: Steps,
    pub(super) database_bytes: Option<i64>,
}

impl Bench {
    pub(super) async fn cycle(&self, kind: Kind, input: &Input) -> Result<Figures> {
        let db = self.database(kind, "cycle").await?;
        let log = format!("cycle-{}.log", kind.name());
        let server =
            LiveServer::start_with_ttl(&self.livecov, &db.url, &self.log(&log), TTL).await?;
        let deploy = Instant::now();

        // The live instances' heartbeats, every HEARTBEAT_MS.
        let live: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let failed: Arc<Mutex<Option<String>>> = Arc::default();
        let beats = {
            let (live, failed) = (live.clone(), failed.clone());
            let (client, base) = (self.client.clone(), server.base.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(HEARTBEAT_MS));
                loop {
                    tick.tick().await;
                    let now = live.lock().unwrap().clone();
                    for (id, secret) in now {
                        let sent = client
                            .post(format!("{base}/api/v1/agents/{id}/heartbeat"))
                            .json(&serde_json::json!({ "secret": secret }))
                            .send()
                            .await;
                        let status = sent.map(|r| r.status().as_u16());
                        let still = live.lock().unwrap().iter().any(|(i, _)| *i == id);
                        if status.as_ref().map_or(true, |&s| s != 200) && still {
                            *failed.lock().unwrap() =
                                Some(format!("the heartbeat of live instance {id}: {status:?}"));
                        }
                    }
                }
            })
        };

        let path = format!("/api/v1/services/{SERVICE}/snapshots");
        let empty = serde_json::json!({});
        let mut taken: Vec<Taken> = Vec::new();
        let mut single_ms = Vec::new();
        let mut rolling_ms = Vec::new();
        let mut meta_ms = Vec::new();
        let mut gone_ms = Vec::new();
        let mut old: Vec<SimAgent> = Vec::new();
        for k in 0..BUILDS {
            let build = &input.builds[k];
            let start = Instant::now();
            let mut agents = Vec::new();
            let mut ids = Vec::new();
            for j in 0..PER_BUILD {
                let agent = SimAgent::start(build.clone(), None).await;
                agent.set_counters(input.counters[k][j].clone());
                let id = format!("b{k:02}-{j}");
                let body = agent.registration(SERVICE, &id);
                server
                    .post(&self.client, "/api/v1/agents/register", &body, 200)
                    .await?;
                let beat = (id, agent.secret().to_string());
                live.lock().unwrap().push(beat.clone());
                ids.push(beat);
                agents.push(agent);
            }
            db.wait_for_build(&build.id).await?;
            meta_ms.push(secs(start.elapsed()) * 1e3);
            if let Some(want) = &input.rolling[k] {
                let (answer, wall) = server.post(&self.client, &path, &empty, 201).await?;
                check_snapshot(&answer, 2 * PER_BUILD, &build.id, 2, want)
                    .with_context(|| format!("the rolling update to build {k}"))?;
                rolling_ms.push(secs(wall) * 1e3);
                taken.push(Taken {
                    id: answer["id"].as_i64().context("a snapshot without id")?,
                    builds: vec![k - 1, k],
                });
            }
            // The old instances stop their heartbeats; the server marks them gone.
            *live.lock().unwrap() = ids;
            if k > 0 {
                let start = Instant::now();
                self.wait_for_live(&server, PER_BUILD).await?;
                gone_ms.push(secs(start.elapsed()) * 1e3);
            }
            for agent in old.drain(..) {
                agent.stop();
            }
            let (answer, wall) = server.post(&self.client, &path, &empty, 201).await?;
            check_snapshot(&answer, PER_BUILD, &build.id, 1, &input.alone[k])
                .with_context(|| format!("the snapshot of build {k}"))?;
            single_ms.push(secs(wall) * 1e3);
            taken.push(Taken {
                id: answer["id"].as_i64().context("a snapshot without id")?,
                builds: vec![k],
            });
            old = agents;
            if let Some(why) = failed.lock().unwrap().take() {
                anyhow::bail!("{why}");
            }
        }
        beats.abort();
        let deploy_s = secs(deploy.elapsed());
        server.stop()?;
        for agent in old {
            agent.stop();
        }
        let database_bytes = database_size(&db).await.ok();

        // The views, each on a new server process: cold, then warm.
        let first = taken[0].id;
        let recent = taken
            .iter()
            .find(|t| t.builds.contains(&(BUILDS - RECENT)))
            .context("no snapshot of the recent build")?
            .id;
        let last = taken.last().context("no snapshot")?.id;
        let newest = &input.builds[BUILDS - 1];
        let span = |from: i64| -> (usize, usize) {
            let of: Vec<&Taken> = taken.iter().filter(|t| t.id >= from).collect();
            let mut builds: Vec<usize> = of.iter().flat_map(|t| t.builds.clone()).collect();
            builds.sort_unstable();
            builds.dedup();
            (of.len(), builds.len())
        };
        let (all_want, recent_want) =
            (input.expected_from(0), input.expected_from(BUILDS - RECENT));
        ensure!(span(first).1 == BUILDS && span(recent).1 == RECENT);
        let mut summary = serde_json::Value::Null;
        let mut views = Vec::new();
        for (from, builds, want) in [(first, BUILDS, &all_want), (recent, RECENT, &recent_want)] {
            let (snapshots, _) = span(from);
            let name = format!("cycle summary, {builds} builds, {snapshots} snapshots");
            let url = format!("/api/v1/services/{SERVICE}/cycle?from={from}");
            let calls = self
                .cold_warm(&db, &log, &url, |body| {
                    let json: serde_json::Value = serde_json::from_slice(body)?;
                    check_summary(&json, &newest.id, snapshots, builds, want)?;
                    if builds == BUILDS {
                        summary = json;
                    }
                    Ok(())
                })
                .await?;
            views.push((name, calls));
            let name = format!("cycle Go profile, {builds} builds, {snapshots} snapshots");
            let url = format!("/api/v1/services/{SERVICE}/cycle/profile?from={from}&format=go");
            let calls = self
                .cold_warm(&db, &log, &url, |body| check_profile(body, want))
                .await?;
            views.push((name, calls));
        }
        let url = format!("/api/v1/snapshots/{last}/profile?format=go");
        let calls = self
            .cold_warm(&db, &log, &url, |body| {
                check_profile(body, &input.alone[BUILDS - 1])
            })
            .await?;
        views.push(("one snapshot's Go profile, 1 build".to_string(), calls));

        let steps = steps(&db, first, last, &all_want, &input.alone[BUILDS - 1]).await?;
        db.remove().await?;
        Ok(Figures {
            snapshots: taken.len(),
            rolling_snapshots: rolling_ms.len(),
            single_ms,
            rolling_ms,
            meta_ms,
            gone_ms,
            deploy_s,
            summary,
            views,
            steps,
            database_bytes,
        })
    }

    /// Waits until the service shows `n` live instances.
    async fn wait_for_live(&self, server: &LiveServer, n: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let body = server
                .get(&self.client, &format!("/api/v1/services/{SERVICE}"))
                .await?;
            let json: serde_json::Value = serde_json::from_slice(&body)?;
            if json["live_instances"].as_i64() == Some(n as i64) {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the old instances are still live after 60 s: {}",
                json["live_instances"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn check_snapshot(
    answer: &serde_json::Value,
    instances: usize,
    build: &str,
    builds: usize,
    want: &Expected,
) -> Result<()> {
    common::check_instances(answer, instances)?;
    let totals = &answer["totals"];
    ensure!(
        totals["blocks"].as_i64() == Some(want.blocks)
            && totals["blocks_covered"].as_i64() == Some(want.blocks_covered)
            && totals["stmts_covered"].as_i64() == Some(want.stmts_covered),
        "a snapshot with totals {totals}, expected {want:?}"
    );
    ensure!(
        answer["build"].as_str() == Some(build)
            && answer["builds"].as_array().map(Vec::len) == Some(builds),
        "a snapshot against {} with {} builds, expected {build} and {builds}",
        answer["build"],
        answer["builds"]
    );
    Ok(())
}

fn check_summary(
    json: &serde_json::Value,
    build: &str,
    snapshots: usize,
    builds: usize,
    want: &Expected,
) -> Result<()> {
    let totals = &json["totals"];
    let f = &json["functions"];
    let got = Expected {
        blocks: totals["blocks"].as_i64().unwrap_or(-1),
        stmts: totals["stmts"].as_i64().unwrap_or(-1),
        blocks_covered: totals["blocks_covered"].as_i64().unwrap_or(-1),
        stmts_covered: totals["stmts_covered"].as_i64().unwrap_or(-1),
        stmts_measured: json["stmts_measured"].as_i64().unwrap_or(-1),
        stmts_carried: json["stmts_carried"].as_i64().unwrap_or(-1),
        funcs: ["measured", "carried", "changed", "uncovered"].map(|s| f[s].as_i64().unwrap_or(-1)),
    };
    ensure!(got == *want, "the cycle says {got:?}, expected {want:?}");
    ensure!(
        json["build"].as_str() == Some(build)
            && json["snapshots"].as_i64() == Some(snapshots as i64)
            && json["builds"].as_array().map(Vec::len) == Some(builds),
        "a cycle against {} of {} snapshots and {} builds, expected {build}, {snapshots} and \
         {builds}",
        json["build"],
        json["snapshots"],
        json["builds"].as_array().map_or(0, Vec::len)
    );
    Ok(())
}

/// A Go profile: the mode line, then one line per block of the build, as many covered as
/// expected.
fn check_profile(body: &[u8], want: &Expected) -> Result<()> {
    let text = std::str::from_utf8(body)?;
    let mut lines = text.lines();
    ensure!(lines.next() == Some("mode: set"), "no `mode: set` line");
    let (mut blocks, mut covered) = (0i64, 0i64);
    for line in lines {
        blocks += 1;
        if !line.ends_with(" 0") {
            covered += 1;
        }
    }
    ensure!(
        (blocks, covered) == (want.blocks, want.blocks_covered),
        "a profile of {blocks} blocks, {covered} covered; expected {} and {}",
        want.blocks,
        want.blocks_covered
    );
    Ok(())
}

/// The database's size in bytes after the deployment.
async fn database_size(db: &Database) -> Result<i64> {
    match db.kind {
        Kind::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await?;
            let mut pragma = async |name: &str| -> Result<i64> {
                Ok(sqlx::query(&format!("PRAGMA {name}"))
                    .fetch_one(&mut conn)
                    .await?
                    .get(0))
            };
            let page = pragma("page_size").await?;
            let total = (pragma("page_count").await? - pragma("freelist_count").await?) * page;
            conn.close().await?;
            Ok(total)
        }
        Kind::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await?;
            let total = sqlx::query("SELECT pg_database_size(current_database())")
                .fetch_one(&mut conn)
                .await?
                .get(0);
            conn.close().await?;
            Ok(total)
        }
    }
}

/// The steps of a cycle view (from the first snapshot) and of the export of the last
/// snapshot, timed in this process with the server's functions on the same database, median
/// of `RUNS`: (step, cycle ms, one snapshot ms).
pub(super) struct Steps {
    pub(super) steps: Vec<(&'static str, f64, Option<f64>)>,
    /// Bytes: every build's metadata in its binary form (`LCM1`), and the cycle's stored
    /// window counters (LCC1).
    pub(super) meta_bytes: usize,
    pub(super) counters_bytes: usize,
}

async fn steps(
    db: &Database,
    first: i64,
    last: i64,
    want: &Expected,
    newest: &Expected,
) -> Result<Steps> {
    use server::meta::Build;
    use server::store::Store;

    let store = Store::open(&db.url).await?;
    let mut cycle_runs = Vec::new();
    let mut one_runs = Vec::new();
    let (mut meta_bytes, mut counters_bytes) = (0, 0);
    for _ in 0..RUNS {
        // The cycle, as `cycle::load` and the views do it.
        let start = Instant::now();
        let rows = store
            .snapshot_range(SERVICE, first, i64::MAX, server::cycle::MAX_SNAPSHOTS + 1)
            .await?;
        let mut stored = Vec::with_capacity(rows.len());
        for row in &rows {
            stored.push(store.snapshot_builds(row.id).await?);
        }
        let read_ms = secs(start.elapsed()) * 1e3;
        let mut ids: Vec<String> = Vec::new();
        for part in stored.iter().flatten() {
            if !ids.contains(&part.build) {
                ids.push(part.build.clone());
            }
        }
        let (bin_ms, bins) = read_bins(&store, &ids).await?;
        let (decode_meta_ms, builds) = timed(|| decode_bins(&ids, &bins));
        let builds = builds?;
        meta_bytes = bins.iter().map(Vec::len).sum();
        counters_bytes = stored.iter().flatten().map(|p| p.counters.len()).sum();
        let (decode_ms, decoded) = timed(|| -> Result<Vec<Decoded>> {
            stored
                .iter()
                .map(|parts| parts.iter().map(|p| dense(p, &builds)).collect())
                .collect()
        });
        let decoded = decoded?;
        let (merge_ms, parts) = timed(|| {
            // Per build, the largest count of any snapshot; builds in first-seen order.
            let mut order: Vec<String> = Vec::new();
            let mut merged: HashMap<String, Vec<u32>> = HashMap::new();
            for snapshot in decoded {
                for (id, values) in snapshot {
                    match merged.get_mut(&id) {
                        Some(acc) => {
                            for (a, v) in acc.iter_mut().zip(values) {
                                *a = (*a).max(v);
                            }
                        }
                        None => {
                            order.push(id.clone());
                            merged.insert(id, values);
                        }
                    }
                }
            }
            order
                .into_iter()
                .map(|id| {
                    let values = merged.remove(&id).expect("merged");
                    (builds[&id].clone(), values)
                })
                .collect::<Vec<_>>()
        });
        let target = parts.len() - 1;
        let view = server::cycle::CycleView {
            service: SERVICE.to_string(),
            from: first,
            to: rows.last().map_or(first, |r| r.id),
            snapshots: rows.len() as i64,
            taken_at: rows.last().map_or(0, |r| r.taken_at),
            spans: vec![(first, first); parts.len()],
            parts,
            target,
        };
        let (project_ms, proj) = timed(|| view.project());
        let got = server::snapshot::totals(&view.target().meta, &proj.counts);
        ensure!(
            (got.blocks, got.blocks_covered) == (want.blocks, want.blocks_covered),
            "the cycle's projection covers {} of {} blocks, expected {} of {}",
            got.blocks_covered,
            got.blocks,
            want.blocks_covered,
            want.blocks
        );
        let (summary_ms, summary) = timed(|| server::cycle::summary(&view));
        let (json_ms, json) = timed(|| serde_json::to_vec(&summary));
        ensure!(json?.len() > 1 && summary.stmts_carried == want.stmts_carried);
        let (go_ms, text) =
            timed(|| ::report::go::write(&view.target().meta, proj.mode, &proj.counts));
        check_profile(text.as_bytes(), want)?;
        cycle_runs.push(vec![
            read_ms,
            bin_ms,
            decode_meta_ms,
            decode_ms,
            merge_ms,
            project_ms,
            summary_ms,
            json_ms,
            go_ms,
        ]);

        // One snapshot, as `export::export` does it.
        let start = Instant::now();
        let row = store.snapshot(last).await?.context("no last snapshot")?;
        let parts = store.snapshot_builds(row.id).await?;
        let read_ms = secs(start.elapsed()) * 1e3;
        let ids: Vec<String> = parts.iter().map(|p| p.build.clone()).collect();
        let (bin_ms, bins) = read_bins(&store, &ids).await?;
        let (decode_meta_ms, builds) = timed(|| decode_bins(&ids, &bins));
        let builds = builds?;
        let (decode_ms, decoded) =
            timed(|| -> Result<Decoded> { parts.iter().map(|p| dense(p, &builds)).collect() });
        let parts: Vec<(Arc<Build>, Vec<u32>)> = decoded?
            .into_iter()
            .map(|(id, v)| (builds[&id].clone(), v))
            .collect();
        let report_parts: Vec<::report::Part> = parts
            .iter()
            .map(|(b, v)| ::report::Part {
                build: &b.id,
                meta: &b.meta,
                values: v,
            })
            .collect();
        let (project_ms, proj) = timed(|| ::report::project::project(&report_parts, 0));
        let (go_ms, text) =
            timed(|| ::report::go::write(&parts[0].0.meta, proj.mode, &proj.counts));
        check_profile(text.as_bytes(), newest)?;
        one_runs.push(vec![
            read_ms,
            bin_ms,
            decode_meta_ms,
            decode_ms,
            f64::NAN,
            project_ms,
            f64::NAN,
            f64::NAN,
            go_ms,
        ]);
    }
    store.close().await;
    let (cycle, one) = (medians(&cycle_runs), medians(&one_runs));
    let names = [
        "read the snapshots' rows and stored counters (`Store::snapshot_range`, `Store::snapshot_builds` per snapshot)",
        "cold only: read the builds' stored metadata (`LCM1`, `Store::build_bin`)",
        "cold only: decode it (`meta::Build::decode_now`)",
        "decode the snapshots' counters (`lcc::decode`, to dense arrays)",
        "merge per build, the largest count of any snapshot (as `cycle::load`)",
        "project every build onto the newest (`report::project::project`)",
        "the summary (`cycle::summary`): the projection again, then totals per file and functions by state",
        "serialize the summary to JSON",
        "write the Go profile (`report::go::write`)",
    ];
    Ok(Steps {
        steps: names
            .into_iter()
            .zip(cycle.into_iter().zip(one))
            .map(|(name, (c, o))| (name, c, (!o.is_nan()).then_some(o)))
            .collect(),
        meta_bytes,
        counters_bytes,
    })
}

async fn read_bins(store: &server::store::Store, ids: &[String]) -> Result<(f64, Vec<Vec<u8>>)> {
    let start = Instant::now();
    let mut bins = Vec::with_capacity(ids.len());
    for id in ids {
        bins.push(
            store
                .build_bin(id)
                .await?
                .flatten()
                .with_context(|| format!("build {id} has no binary metadata"))?,
        );
    }
    Ok((secs(start.elapsed()) * 1e3, bins))
}

fn decode_bins(
    ids: &[String],
    bins: &[Vec<u8>],
) -> Result<HashMap<String, Arc<server::meta::Build>>> {
    ids.iter()
        .zip(bins)
        .map(|(id, bin)| {
            let b = server::meta::Build::decode_now(bin, id, u64::MAX)
                .map_err(|e| anyhow::anyhow!("build {id}: {e}"))?;
            Ok((id.clone(), Arc::new(b)))
        })
        .collect()
}

/// A snapshot's builds' counters, dense, by build id.
type Decoded = Vec<(String, Vec<u32>)>;

fn dense(
    part: &server::store::SnapshotBuild,
    builds: &HashMap<String, Arc<server::meta::Build>>,
) -> Result<(String, Vec<u32>)> {
    let build = &builds[&part.build];
    let sparse = server::lcc::decode(&part.counters, &build.id, &build.shape)
        .map_err(|e| anyhow::anyhow!("build {}: {e}", build.id))?;
    let mut values = vec![0u32; build.num_blocks()];
    for (i, v) in sparse.nonzero {
        values[i as usize] = v;
    }
    Ok((part.build.clone(), values))
}

/// `report::project::project` alone, on the cycle's builds and their merged counters, against
/// the newest: how its cost grows with the builds projected and with how much they differ.
/// (what, files of the older builds that differ from the newest's, median ms).
pub(super) fn scaling(input: &Input) -> Vec<(String, usize, f64)> {
    let last = BUILDS - 1;
    let newest = &input.builds[last].meta;
    let cases: Vec<(String, Vec<usize>)> = vec![
        ("the newest build alone".to_string(), vec![last]),
        (
            "the build before it onto the newest".to_string(),
            vec![last - 1, last],
        ),
        (
            format!("the first build onto the newest ({last} builds apart)"),
            vec![0, last],
        ),
        (
            format!("the last {RECENT} builds"),
            (BUILDS - RECENT..BUILDS).collect(),
        ),
        (format!("all {BUILDS} builds"), (0..BUILDS).collect()),
    ];
    cases
        .into_iter()
        .map(|(what, ks)| {
            let parts: Vec<::report::Part> = ks
                .iter()
                .map(|&k| ::report::Part {
                    build: &input.builds[k].id,
                    meta: &input.builds[k].meta,
                    values: &input.unions[k],
                })
                .collect();
            let differ = ks[..ks.len() - 1]
                .iter()
                .map(|&k| {
                    let files = &input.builds[k].meta.files;
                    files
                        .iter()
                        .zip(&newest.files)
                        .filter(|(a, b)| a != b)
                        .count()
                })
                .sum();
            let runs: Vec<f64> = (0..RUNS)
                .map(|_| timed(|| ::report::project::project(&parts, parts.len() - 1)).0)
                .collect();
            (what, differ, median(&runs))
        })
        .collect()
}
