//! Part 1: a snapshot of 100 instances of B1 and 100 of B2 against a snapshot of 200 instances
//! of B1, in turn on one server; and the projection it makes, timed in this process.

use std::sync::Arc;

use server::sim::{SimAgent, SimBuild};

use super::code::{Expected, expected};
use super::*;

const SINGLE: &str = "bench-single";
const MIXED: &str = "bench-mixed";
/// Instances of each service.
pub(super) const INSTANCES: usize = 200;
/// B2 from B1.
pub(super) const B2_CHANGES: Changes = Changes {
    edited: 150,
    added: 20,
    shifted: 25,
};

/// The two builds, every agent's counters, and what each snapshot must say.
pub(super) struct Input {
    pub(super) b1: Arc<SimBuild>,
    pub(super) b2: Arc<SimBuild>,
    pub(super) code1: Code,
    pub(super) code2: Code,
    /// 200 instances of B1, 100 of B2.
    c1: Vec<Vec<u32>>,
    c2: Vec<Vec<u32>>,
    /// Merged: B1's first 100 (the mixed service's), B2's 100, B1's 200.
    pub(super) u1: Vec<u32>,
    pub(super) u2: Vec<u32>,
    pub(super) single: Expected,
    pub(super) mixed: Expected,
    /// Of the mixed snapshot, against B2 alone (nothing carried).
    pub(super) b2_alone: Expected,
}

impl Input {
    pub(super) fn new() -> Input {
        let code1 = Code::first();
        let code2 = code1.next(0xB2, B2_CHANGES);
        let c1 = code1.counters(0..INSTANCES as u64);
        let c2 = code2.counters(1000..1000 + INSTANCES as u64 / 2);
        let u1 = union(&c1[..INSTANCES / 2]);
        let u2 = union(&c2);
        let all1 = union(&c1);
        let single = expected(&[(&code1, &all1)], 0);
        let mixed = expected(&[(&code1, &u1), (&code2, &u2)], 1);
        let b2_alone = expected(&[(&code2, &u2)], 0);
        Input {
            b1: Arc::new(SimBuild::new(code1.meta())),
            b2: Arc::new(SimBuild::new(code2.meta())),
            code1,
            code2,
            c1,
            c2,
            u1,
            u2,
            single,
            mixed,
            b2_alone,
        }
    }
}

/// Per service: every timed snapshot.
#[derive(Default)]
pub(super) struct Series {
    pub(super) wall_ms: Vec<f64>,
    /// The server's own `duration_ms`: pulls and merge, before storing.
    pub(super) pull_merge_ms: Vec<f64>,
    /// Summed over the timed snapshots, from the CPU read before and after each.
    pub(super) server_cpu_ms: f64,
    pub(super) db_cpu_ms: Option<f64>,
}

pub(super) struct Figures {
    pub(super) single: Series,
    pub(super) mixed: Series,
    pub(super) peak_rss: u64,
}

impl Bench {
    pub(super) async fn mixed(&self, kind: Kind, input: &Input) -> Result<Figures> {
        let db = self.database(kind, "mixed").await?;
        let server = LiveServer::start(
            &self.livecov,
            &db.url,
            &self.log(&format!("mixed-{}.log", kind.name())),
        )
        .await?;
        let mut ones = Vec::new();
        for values in &input.c1 {
            let agent = SimAgent::start(input.b1.clone(), None).await;
            agent.set_counters(values.clone());
            ones.push(agent);
        }
        let mut twos = Vec::new();
        for values in &input.c2 {
            let agent = SimAgent::start(input.b2.clone(), None).await;
            agent.set_counters(values.clone());
            twos.push(agent);
        }
        let register = "/api/v1/agents/register";
        for (i, agent) in ones.iter().enumerate() {
            let body = agent.registration(SINGLE, &format!("s{i:03}"));
            server.post(&self.client, register, &body, 200).await?;
        }
        // B1 first, then B2: the snapshot is seen against the build that came last.
        for (i, agent) in ones[..INSTANCES / 2].iter().enumerate() {
            let body = agent.registration(MIXED, &format!("m1-{i:03}"));
            server.post(&self.client, register, &body, 200).await?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        for (i, agent) in twos.iter().enumerate() {
            let body = agent.registration(MIXED, &format!("m2-{i:03}"));
            server.post(&self.client, register, &body, 200).await?;
        }
        db.wait_for_build(&input.b1.id).await?;
        db.wait_for_build(&input.b2.id).await?;

        let check = |answer: &serde_json::Value, mixed: bool| -> Result<()> {
            common::check_instances(answer, INSTANCES)?;
            let (want, build, builds) = if mixed {
                (&input.mixed, &input.b2.id, 2)
            } else {
                (&input.single, &input.b1.id, 1)
            };
            let totals = &answer["totals"];
            ensure!(
                totals["blocks"].as_i64() == Some(want.blocks)
                    && totals["blocks_covered"].as_i64() == Some(want.blocks_covered)
                    && totals["stmts_covered"].as_i64() == Some(want.stmts_covered),
                "a snapshot with totals {totals}, expected {want:?}"
            );
            ensure!(
                answer["build"].as_str() == Some(build.as_str())
                    && answer["builds"].as_array().map(Vec::len) == Some(builds),
                "a snapshot against {} with {} builds, expected {build} and {builds}",
                answer["build"],
                answer["builds"]
            );
            Ok(())
        };
        let path = |svc: &str| format!("/api/v1/services/{svc}/snapshots");
        let empty = serde_json::json!({});
        for (svc, mixed) in [(MIXED, true), (SINGLE, false)] {
            let (answer, _) = server.post(&self.client, &path(svc), &empty, 201).await?;
            check(&answer, mixed)?;
        }
        let mut figures = Figures {
            single: Series::default(),
            mixed: Series::default(),
            peak_rss: 0,
        };
        for round in 0..self.opts.snapshots {
            let order = if round % 2 == 0 {
                [(MIXED, true), (SINGLE, false)]
            } else {
                [(SINGLE, false), (MIXED, true)]
            };
            for (svc, mixed) in order {
                let (cpu0, db0) = (server.cpu()?, db.cpu()?);
                let (answer, wall) = server.post(&self.client, &path(svc), &empty, 201).await?;
                let (cpu1, db1) = (server.cpu()?, db.cpu()?);
                check(&answer, mixed)?;
                let series = if mixed {
                    &mut figures.mixed
                } else {
                    &mut figures.single
                };
                series.wall_ms.push(secs(wall) * 1e3);
                series
                    .pull_merge_ms
                    .push(answer["duration_ms"].as_f64().unwrap_or(f64::NAN));
                series.server_cpu_ms += secs(cpu1 - cpu0) * 1e3;
                if let Some(ms) = per_ms(db0, db1, 1.0) {
                    *series.db_cpu_ms.get_or_insert(0.0) += ms;
                }
            }
        }
        figures.peak_rss = server.peak_rss()?;
        server.stop()?;
        for agent in ones.into_iter().chain(twos) {
            agent.stop();
        }
        db.remove().await?;
        Ok(figures)
    }
}

/// What a mixed-build snapshot does beyond a single-build one, timed in this process with the
/// server's functions, median of `RUNS`.
pub(super) struct Steps {
    /// (step, ms)
    pub(super) steps: Vec<(&'static str, f64)>,
}

pub(super) fn breakdown(input: &Input) -> Result<Steps> {
    use server::meta::Build;
    let b1 = Build::new(input.b1.id.clone(), input.b1.meta.clone());
    let b2 = Build::new(input.b2.id.clone(), input.b2.meta.clone());
    let parts = [
        ::report::Part {
            build: &b1.id,
            meta: &b1.meta,
            values: &input.u1,
        },
        ::report::Part {
            build: &b2.id,
            meta: &b2.meta,
            values: &input.u2,
        },
    ];
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let (project_ms, proj) = timed(|| ::report::project::project(&parts, 1));
        let (totals_ms, totals) = timed(|| server::snapshot::totals(&b2.meta, &proj.counts));
        ensure!(
            totals.blocks_covered == input.mixed.blocks_covered
                && totals.stmts_covered == input.mixed.stmts_covered,
            "the projection covers {} blocks, expected {}",
            totals.blocks_covered,
            input.mixed.blocks_covered
        );
        let (summarize_ms, part) =
            timed(|| server::snapshot::summarize(&b2, &input.u2, &input.u2, INSTANCES as i64 / 2));
        ensure!(part.blocks_covered == input.b2_alone.blocks_covered);
        let (one_ms, _) = timed(|| ::report::project::project(&parts[1..], 0));
        runs.push(vec![project_ms, totals_ms, summarize_ms, one_ms]);
    }
    let m = medians(&runs);
    Ok(Steps {
        steps: vec![
            (
                "project B1's merged counters onto B2 (`report::project::project`, 2 builds); a mixed snapshot makes 2, for the window and since the instances started",
                m[0],
            ),
            (
                "the totals of the projection (`snapshot::totals`), twice too",
                m[1],
            ),
            (
                "one build's part: totals, covered files, its two LCC1 counters (`snapshot::summarize`), once per build",
                m[2],
            ),
            (
                "not in a snapshot: `project` of one build alone (what an export of a single-build snapshot pays)",
                m[3],
            ),
        ],
    })
}
