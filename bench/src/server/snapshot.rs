//! Part 1: snapshots of 200 sparse instances of a 50,000-block build.

use super::*;

impl Bench {
    pub(super) async fn snapshots(
        &self,
        kind: Kind,
        build: &Arc<SimBuild>,
        counters: &[Vec<u32>],
    ) -> Result<SnapshotFigures> {
        let db = self.database(kind, "snapshot").await?;
        let server = self
            .start_server(&db, &format!("snapshot-{}.log", kind.name()))
            .await?;
        let mut agents = Vec::with_capacity(SNAP_INSTANCES);
        for (i, values) in counters.iter().enumerate() {
            let agent = SimAgent::start(build.clone(), None).await;
            agent.set_counters(values.clone());
            let body = agent.registration(SNAP_SERVICE, &format!("i{i:03}"));
            server
                .post(&self.client, "/api/v1/agents/register", &body, 200)
                .await?;
            agents.push(agent);
        }
        let path = format!("/api/v1/services/{SNAP_SERVICE}/snapshots");
        let empty = serde_json::json!({});
        // Untimed: the server fetches and stores the build's metadata if it has not yet.
        let (warm_up, _) = server.post(&self.client, &path, &empty, 201).await?;
        check_instances(&warm_up, SNAP_INSTANCES)?;
        let covered = (0..build.num_blocks())
            .filter(|&b| counters.iter().any(|c| c[b] != 0))
            .count() as i64;
        let before = db.sizes().await?;

        let mut figures = SnapshotFigures::default();
        let (cpu0, own0, db0) = (server.cpu()?, own_cpu()?, db.cpu()?);
        for _ in 0..self.opts.snapshots {
            let (answer, wall) = server.post(&self.client, &path, &empty, 201).await?;
            check_instances(&answer, SNAP_INSTANCES)?;
            ensure!(
                answer["totals"]["blocks_covered"].as_i64() == Some(covered),
                "a snapshot with {} blocks covered, {covered} expected",
                answer["totals"]["blocks_covered"]
            );
            figures.wall_ms.push(secs(wall) * 1e3);
            figures
                .pull_merge_ms
                .push(answer["duration_ms"].as_f64().unwrap_or(f64::NAN));
            let pulls: Vec<f64> = answer["instance_results"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["duration_ms"].as_f64())
                .collect();
            figures.pull_median.push(median(&pulls));
            figures
                .pull_max
                .push(pulls.iter().copied().fold(0.0, f64::max));
        }
        let n = self.opts.snapshots as f64;
        figures.server_cpu_ms = secs(server.cpu()? - cpu0) * 1e3 / n;
        figures.bench_cpu_ms = secs(own_cpu()? - own0) * 1e3 / n;
        figures.db_cpu_ms = per_ms(db0, db.cpu()?, n);
        figures.peak_rss = server.peak_rss()?;
        let after = db.sizes().await?;
        figures.stored = Stored::between(&before, &after, self.opts.snapshots);
        server.stop()?;
        for agent in agents {
            agent.stop();
        }
        db.remove().await?;
        Ok(figures)
    }
}

/// Whether each file of the snapshot build is hot: `HOT_FILES` files, at random.
pub(super) fn hot_files() -> Vec<bool> {
    let mut order: Vec<usize> = (0..SNAP_FILES).collect();
    order.sort_by(|&x, &y| unit(&[0x407, x as u64]).total_cmp(&unit(&[0x407, y as u64])));
    let mut hot = vec![false; SNAP_FILES];
    for &f in &order[..HOT_FILES] {
        hot[f] = true;
    }
    hot
}

/// Every instance's counters for the snapshot build (see the module's documentation).
pub(super) fn sparse_counters(build: &SimBuild) -> Vec<Vec<u32>> {
    let hot = hot_files();
    let mut popularity = Vec::with_capacity(build.num_blocks());
    for (f, &n) in build.shape.iter().enumerate() {
        for i in 0..n as usize {
            let b = (f * SNAP_BLOCKS_PER_FILE + i) as u64;
            popularity.push(if hot[f] {
                unit(&[0x909, b]).powi(HOT_EXPONENT)
            } else if unit(&[0x4a4e, b]) < RARE_SHARE {
                RARE_POPULARITY
            } else {
                0.0
            });
        }
    }
    (0..SNAP_INSTANCES)
        .map(|i| {
            popularity
                .iter()
                .enumerate()
                .map(|(b, &p)| u32::from(unit(&[0x1257, i as u64, b as u64]) < p))
                .collect()
        })
        .collect()
}

#[derive(Default)]
pub(super) struct SnapshotFigures {
    pub(super) wall_ms: Vec<f64>,
    /// The server's own `duration_ms`: from the request to the merged counters, before storing.
    pub(super) pull_merge_ms: Vec<f64>,
    /// Per snapshot: the median and the slowest pull, as the server timed them (ms).
    pub(super) pull_median: Vec<f64>,
    pub(super) pull_max: Vec<f64>,
    /// CPU time per snapshot, over all the measured ones (a clock tick is 10 ms).
    pub(super) server_cpu_ms: f64,
    pub(super) bench_cpu_ms: f64,
    /// PostgreSQL's processes.
    pub(super) db_cpu_ms: Option<f64>,
    pub(super) peak_rss: u64,
    pub(super) stored: Stored,
}

/// Bytes stored per snapshot, from the growth of the database over the measured snapshots.
#[derive(Default)]
pub(super) struct Stored {
    pub(super) total: f64,
    pub(super) tables: Vec<f64>,
    pub(super) counters: f64,
}

impl Stored {
    pub(super) fn between(before: &Sizes, after: &Sizes, n: usize) -> Stored {
        let per = |b: i64, a: i64| (a - b) as f64 / n as f64;
        Stored {
            total: per(before.total, after.total),
            tables: before
                .tables
                .iter()
                .zip(&after.tables)
                .map(|(&b, &a)| per(b, a))
                .collect(),
            counters: per(before.counters, after.counters),
        }
    }
}
