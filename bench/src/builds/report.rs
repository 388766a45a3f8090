//! The figures of the two parts, as the Markdown of `docs/BENCHMARKS.md`.

use super::code::{BLOCKS_PER_FUNC, FILES, FUNCS_PER_FILE};
use super::cycle::{BUILDS, HEARTBEAT_MS, PER_BUILD, RECENT, ROLLING_EVERY, TTL};
use super::mixed::{B2_CHANGES, INSTANCES};
use super::*;
use crate::common::percentile;

/// An integer with thousands separators.
fn n(v: impl TryInto<i64>) -> String {
    let v: i64 = v.try_into().unwrap_or(-1);
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

/// An integer of a JSON answer, with thousands separators.
fn j(v: &serde_json::Value) -> String {
    v.as_i64().map_or_else(|| v.to_string(), n)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn fmax(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn ms(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.0}"))
}

/// Milliseconds with one decimal under 10.
fn fine(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

pub(super) fn report(
    opts: &Options,
    input: &mixed::Input,
    mixed: &[(Kind, mixed::Figures)],
    mixed_steps: &mixed::Steps,
    cycles: &[(Kind, cycle::Figures)],
    scaling: &[(String, usize, f64)],
) {
    let (e, s, a) = (&input.mixed, &input.single, &input.b2_alone);
    println!("## Mixed-build snapshot\n");
    println!(
        "Input: B1, {FILES} files × {FUNCS_PER_FILE} functions × {BLOCKS_PER_FUNC} blocks \
         ({} blocks, {} functions); B2 = B1 with {} functions edited, {} added, {} files' \
         functions moved ({} blocks, {} functions).\n",
        n(input.code1.num_blocks()),
        n(input.code1.num_funcs()),
        B2_CHANGES.edited,
        B2_CHANGES.added,
        B2_CHANGES.shifted,
        n(input.code2.num_blocks()),
        n(input.code2.num_funcs()),
    );
    println!(
        "| snapshot | instances | against | blocks covered | statements measured on it | \
         carried from B1 | functions measured / carried / changed / uncovered |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|");
    println!(
        "| single build | {INSTANCES} of B1 | B1 | {} | {} | – | {} / {} / {} / {} |",
        n(s.blocks_covered),
        n(s.stmts_measured),
        n(s.funcs[0]),
        n(s.funcs[1]),
        n(s.funcs[2]),
        n(s.funcs[3])
    );
    println!(
        "| mixed | {} of B1 + {} of B2 | B2 | {} | {} | {} | {} / {} / {} / {} |",
        INSTANCES / 2,
        INSTANCES / 2,
        n(e.blocks_covered),
        n(e.stmts_measured),
        n(e.stmts_carried),
        n(e.funcs[0]),
        n(e.funcs[1]),
        n(e.funcs[2]),
        n(e.funcs[3])
    );
    println!(
        "\n(B2's 100 instances alone cover {} blocks.)\n",
        n(a.blocks_covered)
    );
    println!(
        "Time, after 1 untimed snapshot of each, {} of each in turn:\n",
        opts.snapshots
    );
    println!(
        "| database | snapshot | wall median ms | p90 ms | max ms | pulled and merged \
         (`duration_ms`), median ms | server CPU ms per snapshot | PostgreSQL's CPU ms per \
         snapshot | server peak RSS MB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, f) in mixed {
        for (name, series) in [("single build", &f.single), ("mixed", &f.mixed)] {
            let n = series.wall_ms.len() as f64;
            println!(
                "| {} | {name} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {:.0} |",
                kind.name(),
                median(&series.wall_ms),
                percentile(&series.wall_ms, 90.0),
                fmax(&series.wall_ms),
                median(&series.pull_merge_ms),
                series.server_cpu_ms / n,
                ms(series.db_cpu_ms.map(|c| c / n)),
                mb(f.peak_rss),
            );
        }
    }
    println!("\nIn the benchmark's process, median of {RUNS} runs:\n");
    println!("| step | ms |");
    println!("|---|---:|");
    for (name, v) in &mixed_steps.steps {
        println!("| {name} | {} |", fine(*v));
    }

    let Some((_, first)) = cycles.first() else {
        return;
    };
    println!("\n## Cycle view over {BUILDS} builds\n");
    let sm = &first.summary;
    println!(
        "Input: {BUILDS} builds, each from the one before with 50 functions edited, 5 added \
         every fifth build and 10 files moved every fourth; {PER_BUILD} instances each; \
         {} snapshots ({} of one build, {} during a rolling update, every {ROLLING_EVERY} \
         builds); `--instance-ttl {TTL}`, heartbeats every {HEARTBEAT_MS} ms.\n",
        first.snapshots,
        first.snapshots - first.rolling_snapshots,
        first.rolling_snapshots,
    );
    let gone = n(sm["gone"].as_array().map_or(0, Vec::len));
    let f = &sm["functions"];
    println!(
        "The cycle from the first snapshot, against the newest build: {} blocks, {} covered; \
         statements {} of {} covered, {} measured on the newest build, {} carried; functions \
         {} measured, {} carried, {} changed, {} uncovered; {gone} functions only earlier \
         builds have.\n",
        j(&sm["totals"]["blocks"]),
        j(&sm["totals"]["blocks_covered"]),
        j(&sm["totals"]["stmts_covered"]),
        j(&sm["totals"]["stmts"]),
        j(&sm["stmts_measured"]),
        j(&sm["stmts_carried"]),
        j(&f["measured"]),
        j(&f["carried"]),
        j(&f["changed"]),
        j(&f["uncovered"]),
    );
    println!(
        "| database | deployment of the {BUILDS} builds, s | metadata of a new build stored \
         after its registrations, median ms | old instances gone after their last heartbeat, \
         median ms | snapshot of one build ({PER_BUILD} instances), median / max ms | rolling \
         update (2 builds, {} instances), median / max ms | database size MB |",
        2 * PER_BUILD
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (kind, f) in cycles {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {} |",
            kind.name(),
            f.deploy_s,
            median(&f.meta_ms),
            median(&f.gone_ms),
            median(&f.single_ms),
            fmax(&f.single_ms),
            median(&f.rolling_ms),
            fmax(&f.rolling_ms),
            f.database_bytes
                .map_or(String::new(), |b| format!("{:.1}", b as f64 / 1e6)),
        );
    }
    println!(
        "\nEach request on a new server process: the first call (cold), then {} warm:\n",
        opts.calls
    );
    println!(
        "| database | request | answer bytes | first call, cold ms | warm median ms | warm \
         max ms | server CPU ms per warm call | PostgreSQL's CPU ms per warm call | server \
         peak RSS MB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, f) in cycles {
        for (name, c) in &f.views {
            println!(
                "| {} | {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {:.0} |",
                kind.name(),
                n(c.bytes),
                c.cold_ms,
                median(&c.warm_ms),
                fmax(&c.warm_ms),
                c.server_cpu_ms,
                ms(c.db_cpu_ms),
                mb(c.peak_rss),
            );
        }
    }
    println!(
        "\nThe steps of the {BUILDS}-build cycle view and of one snapshot's export, in the \
         benchmark's process on the same database, median of {RUNS} runs, ms ({:.1} MB of \
         binary metadata for the {BUILDS} builds, {} bytes of stored counters over the \
         cycle's snapshots; the {RECENT}-build cycle not broken down):\n",
        first.steps.meta_bytes as f64 / 1e6,
        n(first.steps.counters_bytes),
    );
    let mut head = "| step |".to_string();
    let mut rule = "|---|".to_string();
    for (kind, _) in cycles {
        head += &format!(" {0} cycle | {0} one snapshot |", kind.name());
        rule += "---:|---:|";
    }
    println!("{head}\n{rule}");
    for (i, (name, _, _)) in first.steps.steps.iter().enumerate() {
        let mut row = format!("| {name} |");
        for (_, f) in cycles {
            let (_, c, o) = f.steps.steps[i];
            row += &format!(" {} | {} |", fine(c), o.map_or("–".to_string(), fine));
        }
        println!("{row}");
    }
    println!(
        "\nThe projection alone (`report::project::project`), on the cycle's builds and their \
         merged counters, against the newest, in the benchmark's process, median of {RUNS} \
         runs:\n"
    );
    println!("| builds projected | files of the older builds that differ from the newest's | ms |");
    println!("|---|---:|---:|");
    for (what, differ, v) in scaling {
        println!("| {what} | {} | {} |", n(*differ), fine(*v));
    }
}
