//! `/metrics` in the Prometheus text format (version 0.0.4), written by hand: a handful of
//! counters and two histograms do not need a metrics library.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::App;
use crate::pull::Outcome;

const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, &le) in BUCKETS.iter().enumerate() {
            if s <= le {
                self.counts[i] += 1;
            }
        }
        self.sum += s;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

#[derive(Default)]
pub struct Metrics {
    pulls: [AtomicU64; Outcome::ALL.len()],
    pull_seconds: Mutex<Histogram>,
    snapshots_stored: AtomicU64,
    snapshots_failed: AtomicU64,
    snapshot_seconds: Mutex<Histogram>,
    registrations: AtomicU64,
    heartbeats_ok: AtomicU64,
    heartbeats_unknown: AtomicU64,
    /// Agents' requests refused, by [`REFUSALS`].
    refusals: [AtomicU64; REFUSALS.len()],
}

/// Why an agent's request was refused: a missing or wrong agent token, a registration that
/// does not pass its checks, an instance's registration or heartbeat without its secret.
pub const REFUSALS: [&str; 4] = ["token", "invalid", "secret", "quota"];

impl Metrics {
    pub fn pulled(&self, outcome: Outcome, took: Duration) {
        let i = Outcome::ALL.iter().position(|&o| o == outcome).unwrap_or(0);
        self.pulls[i].fetch_add(1, Ordering::Relaxed);
        self.pull_seconds.lock().unwrap().observe(took);
    }

    pub fn snapshot_stored(&self, took: Duration) {
        self.snapshots_stored.fetch_add(1, Ordering::Relaxed);
        self.snapshot_seconds.lock().unwrap().observe(took);
    }

    pub fn snapshot_failed(&self) {
        self.snapshots_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn agent_refused(&self, reason: &str) {
        let i = REFUSALS.iter().position(|&r| r == reason).unwrap_or(0);
        self.refusals[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn registered(&self) {
        self.registrations.fetch_add(1, Ordering::Relaxed);
    }

    pub fn heartbeat(&self, known: bool) {
        let c = if known {
            &self.heartbeats_ok
        } else {
            &self.heartbeats_unknown
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text. `services` gives, per service, its live instances and the
    /// statement coverage ratio of its latest snapshot; `store_up` whether the database
    /// answered; `pending` the boundaries (resets, session starts and stops) not yet finished.
    pub fn render(
        &self,
        services: &[(String, i64, Option<f64>)],
        store_up: bool,
        pending: usize,
    ) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP livecov_pulls_total Counter pulls from instances, by outcome.\n# TYPE livecov_pulls_total counter"
        );
        for (i, o) in Outcome::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "livecov_pulls_total{{outcome=\"{}\"}} {}",
                o.as_str(),
                load(&self.pulls[i])
            );
        }
        self.pull_seconds.lock().unwrap().write(
            &mut out,
            "livecov_pull_duration_seconds",
            "Time to pull one instance's counters.",
        );
        let _ = writeln!(
            out,
            "# HELP livecov_snapshots_total Snapshots asked for, by result.\n# TYPE livecov_snapshots_total counter\nlivecov_snapshots_total{{result=\"stored\"}} {}\nlivecov_snapshots_total{{result=\"failed\"}} {}",
            load(&self.snapshots_stored),
            load(&self.snapshots_failed)
        );
        self.snapshot_seconds.lock().unwrap().write(
            &mut out,
            "livecov_snapshot_duration_seconds",
            "Time to take and store a snapshot.",
        );
        let _ = writeln!(
            out,
            "# HELP livecov_registrations_total Agent registrations.\n# TYPE livecov_registrations_total counter\nlivecov_registrations_total {}",
            load(&self.registrations)
        );
        let _ = writeln!(
            out,
            "# HELP livecov_agent_refusals_total Agents' registrations and heartbeats refused, by reason: token (missing or wrong agent token), invalid (a field that does not pass its check), secret (an instance id registered by another process), quota (too many services, live instances of a service, or registrations from one address in a minute).\n# TYPE livecov_agent_refusals_total counter"
        );
        for (i, reason) in REFUSALS.iter().enumerate() {
            let _ = writeln!(
                out,
                "livecov_agent_refusals_total{{reason=\"{reason}\"}} {}",
                load(&self.refusals[i])
            );
        }
        let _ = writeln!(
            out,
            "# HELP livecov_heartbeats_total Agent heartbeats, by whether the instance was known live.\n# TYPE livecov_heartbeats_total counter\nlivecov_heartbeats_total{{result=\"ok\"}} {}\nlivecov_heartbeats_total{{result=\"unknown\"}} {}",
            load(&self.heartbeats_ok),
            load(&self.heartbeats_unknown)
        );
        let _ = writeln!(
            out,
            "# HELP livecov_store_up Whether the database answered this scrape and took a write.\n# TYPE livecov_store_up gauge\nlivecov_store_up {}",
            u8::from(store_up)
        );
        let _ = writeln!(
            out,
            "# HELP livecov_pending_boundaries Resets, session starts and stops the server has yet to finish (it finishes them when agents and the database answer).\n# TYPE livecov_pending_boundaries gauge\nlivecov_pending_boundaries {pending}"
        );
        let _ = writeln!(
            out,
            "# HELP livecov_live_instances Live instances per service.\n# TYPE livecov_live_instances gauge"
        );
        for (name, live, _) in services {
            let _ = writeln!(
                out,
                "livecov_live_instances{{service=\"{}\"}} {live}",
                escape(name)
            );
        }
        let _ = writeln!(
            out,
            "# HELP livecov_coverage_ratio Statements covered in the latest snapshot of each service, 0 to 1.\n# TYPE livecov_coverage_ratio gauge"
        );
        for (name, _, ratio) in services {
            if let Some(r) = ratio {
                let _ = writeln!(
                    out,
                    "livecov_coverage_ratio{{service=\"{}\"}} {r}",
                    escape(name)
                );
            }
        }
        out
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The server's metrics as `GET /metrics` answers them: the counters of [`Metrics`], and per
/// service its live instances and the coverage of its latest snapshot
/// ([`registry::coverage`](crate::registry::coverage)). A database that
/// does not answer, or does not take a write, is `livecov_store_up 0`, not an error.
pub async fn exposition(app: &App) -> String {
    let (services, up) = match async {
        app.store.ping().await?;
        crate::registry::services(app).await
    }
    .await
    {
        Ok(list) => (
            list.iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        s.live_instances,
                        crate::registry::coverage(s),
                    )
                })
                .collect::<Vec<_>>(),
            true,
        ),
        Err(_) => (Vec::new(), false),
    };
    let pending = match app.store.pending_boundaries(None).await {
        Ok(p) => p.len(),
        Err(_) => 0,
    };
    let mut out = app.metrics.render(&services, up, pending);
    let _ = writeln!(
        out,
        "# HELP livecov_agent_channels Agents that keep a connection to this server, over which it reads them.\n# TYPE livecov_agent_channels gauge\nlivecov_agent_channels {}",
        app.agents.channels.open()
    );
    out
}
