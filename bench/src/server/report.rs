//! The figures of the three parts, as the Markdown of `docs/BENCHMARKS.md`.

use super::*;

pub(super) fn ms_or_dash(ms: Option<f64>) -> String {
    ms.map_or("–".to_string(), |ms| format!("{ms:.0}"))
}

pub(super) fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

pub(super) fn fmax(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

pub(super) fn yes(met: bool) -> &'static str {
    if met { "yes" } else { "**no**" }
}

pub(super) fn report(
    opts: &Options,
    counters: &[Vec<u32>],
    snaps: &[(Kind, SnapshotFigures)],
    diffs: &[(Kind, DiffFigures)],
    breakdown: &Breakdown,
    loads: &[(Kind, LoadFigures)],
) {
    let hot = hot_files();
    let per_instance: Vec<f64> = counters
        .iter()
        .map(|c| c.iter().filter(|&&v| v != 0).count() as f64)
        .collect();
    let in_hot: usize = counters
        .iter()
        .map(|c| {
            c.chunks(SNAP_BLOCKS_PER_FILE)
                .zip(&hot)
                .filter(|(_, h)| **h)
                .map(|(c, _)| c.iter().filter(|&&v| v != 0).count())
                .sum::<usize>()
        })
        .sum();
    let blocks = SNAP_FILES * SNAP_BLOCKS_PER_FILE;
    let merged: Vec<bool> = (0..blocks)
        .map(|b| counters.iter().any(|c| c[b] != 0))
        .collect();
    let union = merged.iter().filter(|&&m| m).count();
    let files_covered = merged
        .chunks(SNAP_BLOCKS_PER_FILE)
        .filter(|f| f.iter().any(|&m| m))
        .count();

    println!("## Snapshot: {SNAP_INSTANCES} instances × {blocks} blocks\n");
    println!(
        "Input: one build in set mode, {SNAP_FILES} files × {SNAP_BLOCKS_PER_FILE} blocks, \
         {HOT_FILES} of the files hot.\n"
    );
    println!(
        "| instances | non-zero counters per instance, median (min–max) | of them in hot files | \
         covered blocks, all instances merged | files with a covered block |"
    );
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {SNAP_INSTANCES} | {:.0} = {:.1}% ({:.0}–{:.0}) | {:.1}% | {union} = {:.1}% | \
         {files_covered} |",
        median(&per_instance),
        100.0 * median(&per_instance) / blocks as f64,
        per_instance.iter().copied().fold(f64::INFINITY, f64::min),
        fmax(&per_instance),
        100.0 * in_hot as f64 / per_instance.iter().sum::<f64>(),
        100.0 * union as f64 / blocks as f64,
    );
    println!(
        "\nTime, after 1 untimed snapshot, {} snapshots one after the other:\n",
        opts.snapshots
    );
    println!(
        "| database | wall median ms | wall max ms | pulled and merged (server's `duration_ms`), \
         median ms | one pull, median / slowest ms | server CPU ms per snapshot | PostgreSQL's \
         CPU ms per snapshot | this process's CPU ms per snapshot (agents, client) | server peak \
         RSS MB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, s) in snaps {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} / {:.0} | {:.0} | {} | {:.0} | {:.0} |",
            kind.name(),
            median(&s.wall_ms),
            fmax(&s.wall_ms),
            median(&s.pull_merge_ms),
            median(&s.pull_median),
            median(&s.pull_max),
            s.server_cpu_ms,
            ms_or_dash(s.db_cpu_ms),
            s.bench_cpu_ms,
            mb(s.peak_rss),
        );
    }
    println!(
        "\nBytes stored per snapshot: the database's growth over the {} snapshots, divided by {}; \
         per table, indexes included:\n",
        opts.snapshots, opts.snapshots
    );
    print!("| database | bytes | per block |");
    for t in SNAPSHOT_TABLES {
        print!(" `{t}` |");
    }
    println!(" LCC1 counters (in `snapshot_builds`) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, s) in snaps {
        print!(
            "| {} | {:.0} | {:.2} |",
            kind.name(),
            s.stored.total,
            s.stored.total / blocks as f64
        );
        for t in &s.stored.tables {
            print!(" {t:.0} |");
        }
        println!(" {:.0} |", s.stored.counters);
    }

    let nd = DIFF_FILES * DIFF_BLOCKS_PER_FILE;
    println!("\n## Diff: two snapshots of {nd} blocks\n");
    if let Some((_, d)) = diffs.first() {
        println!(
            "Input: one build in set mode, {DIFF_FILES} files × {DIFF_BLOCKS_PER_FILE} blocks \
             (metadata: {} bytes of gzip JSON, {} in its binary form), one instance; covered \
             blocks: A {}, B {}, C {}; LCC1 counters: {:.0} bytes per snapshot.\n",
            breakdown.meta_gz,
            breakdown.meta_bin,
            d.covered[0],
            d.covered[1],
            d.covered[2],
            d.counters_bytes
        );
    }
    println!(
        "| database | diff | blocks newly / no longer covered | answer bytes | first call, \
         cold ms | warm median ms | warm max ms | server peak RSS MB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (kind, d) in diffs {
        for case in &d.cases {
            println!(
                "| {} | {} | {} / {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
                kind.name(),
                case.name,
                case.changed.0,
                case.changed.1,
                case.bytes,
                case.cold_ms,
                median(&case.warm_ms),
                fmax(&case.warm_ms),
                mb(case.peak_rss),
            );
        }
    }
    println!("\nThe {nd}-block build's metadata and snapshots (one instance), wall ms:\n");
    println!(
        "| database | from the registration's answer to the metadata stored (fetched in the \
         background) | snapshot A | B | C |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (kind, d) in diffs {
        let snaps: Vec<String> = d.snapshot_ms.iter().map(|s| format!("{s:.0}")).collect();
        println!(
            "| {} | {:.0} | {} |",
            kind.name(),
            d.meta_fetch_ms,
            snaps.join(" | ")
        );
    }
    println!(
        "\nThe steps of a diff, timed in this process with the server's own functions, median \
         of {} runs:\n",
        breakdown.runs
    );
    println!("| step | A→B ms | A→C ms |");
    println!("|---|---:|---:|");
    for (name, ab, ac) in &breakdown.steps {
        println!("| {name} | {ab:.0} | {ac:.0} |");
    }

    println!(
        "\n## Registrations and heartbeats: {LOAD_INSTANCES} instances, {LOAD_CONCURRENCY} \
         requests in flight\n"
    );
    println!(
        "| database | requests | p50 ms | p99 ms | max ms | requests/s | server CPU ms per 1,000 \
         requests | PostgreSQL's CPU ms per 1,000 requests | server peak RSS MB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, l) in loads {
        for (what, lat, wall, cpu, db_cpu) in [
            (
                "registrations",
                &l.register,
                l.register_wall,
                l.register_cpu,
                l.register_db_cpu,
            ),
            (
                "heartbeats",
                &l.heartbeat,
                l.heartbeat_wall,
                l.heartbeat_cpu,
                l.heartbeat_db_cpu,
            ),
        ] {
            println!(
                "| {} | {} {what} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {} | {:.0} |",
                kind.name(),
                lat.len(),
                percentile(lat, 50.0),
                percentile(lat, 99.0),
                fmax(lat),
                lat.len() as f64 / wall,
                cpu * 1e3 / (lat.len() as f64 / 1e3),
                ms_or_dash(db_cpu),
                mb(l.peak_rss),
            );
        }
    }

    println!("\n## Aims\n");
    println!("| aim | database | measured | met |");
    println!("|---|---|---:|---|");
    for (kind, s) in snaps {
        let slowest = fmax(&s.wall_ms);
        println!(
            "| {SNAP_INSTANCES} × {blocks}-block snapshot under {AIM_SNAPSHOT_S} s | {} | \
             {:.0} ms median, {slowest:.0} ms slowest | {} |",
            kind.name(),
            median(&s.wall_ms),
            yes(slowest < AIM_SNAPSHOT_S * 1e3)
        );
    }
    for (kind, s) in snaps {
        let per = s.stored.total / blocks as f64;
        println!(
            "| under {AIM_BYTES_PER_BLOCK} byte stored per block, sparse snapshot | {} | {per:.2} \
             | {} |",
            kind.name(),
            yes(per < AIM_BYTES_PER_BLOCK)
        );
    }
    for (kind, d) in diffs {
        for case in &d.cases {
            for (when, ms) in [("cold", case.cold_ms), ("warm", median(&case.warm_ms))] {
                println!(
                    "| {nd}-block diff under {AIM_DIFF_MS} ms: {}, {when} | {} | {ms:.0} ms | {} |",
                    case.name,
                    kind.name(),
                    yes(ms < AIM_DIFF_MS)
                );
            }
        }
    }
}
