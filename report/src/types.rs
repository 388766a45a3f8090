//! The JSON of the HTTP API, shared by the server (which writes it) and the CLI clients
//! (which read it). `docs/API.md` describes every field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Block and statement totals. `coverage` is the percentage of statements covered, as
/// `go tool cover -func` reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub blocks: i64,
    pub blocks_covered: i64,
    pub stmts: i64,
    pub stmts_covered: i64,
    pub coverage: f64,
}

impl Totals {
    pub fn new(blocks: i64, blocks_covered: i64, stmts: i64, stmts_covered: i64) -> Totals {
        Totals {
            blocks,
            blocks_covered,
            stmts,
            stmts_covered,
            coverage: percent(stmts_covered, stmts),
        }
    }
}

/// `part` of `whole` in percent, rounded to 0.01; 0 when `whole` is 0.
pub fn percent(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 10000.0 / whole as f64).round() / 100.0
    }
}

/// `POST /api/v1/agents/register`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registration {
    pub service: String,
    pub instance: String,
    pub build: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub pid: i64,
    #[serde(default)]
    pub start_time: String,
    pub mode: String,
    pub port: u16,
    #[serde(default)]
    pub go_version: String,
    /// The agent's per-process secret: the server presents it on every pull, and a later
    /// registration or heartbeat of the same instance must carry it. Agents built before it
    /// existed send none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Where the instance runs: `LIVECOV_LABELS`, the build's VCS revision, the Kubernetes
    /// pod and namespace ([`check_labels`] says what they may be).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `POST /api/v1/agents/{instance}/heartbeat`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The secret of the instance's registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Beat {
    /// The agent should keep a connection to the server open, over which the server reads
    /// it: the server is told to ask every agent, or could not connect to this one.
    #[serde(default)]
    pub channel: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registered {
    pub instance: String,
    /// The address the server pulls from: the registering peer's IP and the given port.
    pub address: String,
    /// An instance that sends no heartbeat for this long is marked gone.
    pub instance_ttl_seconds: u64,
    /// As in [`Beat`]: the agent should connect to the server now.
    #[serde(default)]
    pub channel: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceList {
    pub services: Vec<ServiceInfo>,
    /// More services follow: ask again with `after` set to this name. Null on the last page.
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub name: String,
    pub first_seen: String,
    pub live_instances: i64,
    pub instances: i64,
    /// Builds of the live instances.
    pub builds: Vec<String>,
    pub latest_snapshot: Option<SnapshotInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceDetail {
    #[serde(flatten)]
    pub service: ServiceInfo,
    /// Every instance that ever registered, live ones first.
    pub instance_list: Vec<InstanceInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub id: String,
    pub state: String,
    pub build: String,
    pub mode: String,
    pub address: String,
    pub hostname: String,
    pub pid: i64,
    pub start_time: String,
    pub go_version: String,
    pub registered_at: String,
    pub last_seen: String,
    pub gone_at: Option<String>,
    /// The labels it registered with.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When its process ended, for an `exited` instance: its last counters were delivered
    /// by its agent or collected.
    #[serde(default)]
    pub exited_at: Option<String>,
    /// Its agent keeps a connection to this server, and the server reads it over that
    /// connection instead of pulling.
    #[serde(default)]
    pub channel: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotRequest {
    #[serde(default)]
    pub label: Option<String>,
    /// Read only the live instances whose labels match (`env=staging,region=eu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub id: i64,
    pub service: String,
    pub label: Option<String>,
    /// The selector that chose the instances it read (`env=staging`); null: every live
    /// instance.
    #[serde(default)]
    pub selector: Option<String>,
    /// The snapshot ended a round: a reset started a new one when it was taken.
    pub reset: bool,
    /// What window `totals` measure: `snapshot` (the round that is running), `reset` (the
    /// round the reset ended) or `session` (the session named `session`).
    pub kind: String,
    pub session: Option<String>,
    /// When the window began (RFC 3339); null: when each instance started.
    pub since: Option<String>,
    pub taken_at: String,
    pub duration_ms: i64,
    pub instances_ok: i64,
    pub instances_failed: i64,
    /// The coverage of the window.
    pub totals: Totals,
    /// The coverage of everything the instances ran since they started, resets and sessions
    /// notwithstanding.
    pub deploy: Totals,
    /// The build the totals are against: the newest its instances ran, with what the others
    /// measured carried into its unchanged functions. Null for snapshots stored before
    /// livecov recorded it.
    #[serde(default)]
    pub build: Option<String>,
    /// How many builds its instances ran: more than 1 during a rolling update.
    #[serde(default)]
    pub build_count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotList {
    pub service: String,
    pub snapshots: Vec<SnapshotInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotDetail {
    #[serde(flatten)]
    pub snapshot: SnapshotInfo,
    pub builds: Vec<BuildPart>,
    pub instance_results: Vec<InstanceResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildPart {
    pub build: String,
    pub mode: String,
    /// Instances whose counters were merged into this build's part.
    pub instances: i64,
    pub totals: Totals,
    pub deploy: Totals,
    /// What the build left uninstrumented, when it left something out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded: Option<BuildExcluded>,
}

/// What a build left uninstrumented (`livecov build --exclude`, `--skip-generated`), as its
/// metadata records it: those files are compiled as they are and counted nowhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildExcluded {
    /// The `--exclude` patterns.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Whether files marked `// Code generated … DO NOT EDIT.` were left out.
    #[serde(default)]
    pub generated: bool,
    /// The files left out, by coverprofile name (`importpath/file.go`).
    #[serde(default)]
    pub files: Vec<String>,
}

impl BuildExcluded {
    /// One line for people: `2 files (--exclude example.com/m/mocks/..., generated code)`.
    pub fn summary(&self) -> String {
        let mut why: Vec<String> = self.patterns.clone();
        if self.generated {
            why.push("generated code".into());
        }
        let n = self.files.len();
        format!(
            "{n} file{} ({})",
            if n == 1 { "" } else { "s" },
            why.join(", ")
        )
    }
}

/// `POST /api/v1/services/{service}/sessions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRequest {
    pub name: String,
}

/// A session: a named window of a service, open from its start to its stop.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: i64,
    pub service: String,
    pub name: String,
    /// `starting`, `open`, `stopping` or `stopped`.
    pub state: String,
    pub started_at: String,
    pub stopped_at: Option<String>,
    /// The snapshot of what ran while the session was open, once stopped.
    pub snapshot: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionList {
    pub service: String,
    pub sessions: Vec<SessionInfo>,
}

/// What one instance answered: `outcome` is `ok`, `timeout`, `refused` (no connection),
/// `error` (the agent answered with an error status, or the connection broke mid-answer) or
/// `rejected` (the answer broke the counters format or did not fit the build's metadata).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceResult {
    pub instance: String,
    pub build: String,
    pub address: String,
    pub outcome: String,
    pub message: Option<String>,
    pub duration_ms: i64,
}

/// What snapshot `b` covers that snapshot `a` does not, and the reverse, against one build
/// (`build`, the newest of b's): each snapshot seen as the projection of its builds onto it,
/// so that snapshots of different builds compare by function identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Diff {
    pub a: i64,
    pub b: i64,
    /// The build both are seen against.
    pub build: String,
    /// Over every block of `build`; a's side holds what a's builds measured on the same
    /// functions only.
    pub total: DiffTotals,
    /// Files where the two differ, block by block.
    pub files: Vec<FileDiff>,
    /// Functions that are not the same in a's builds and in `build`: `edited`, `added`
    /// (only in `build`) or `removed` (only in a's builds), sorted by file and name.
    pub functions: Vec<FuncDiff>,
}

/// A function that changed between the two sides of a diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FuncDiff {
    pub file: String,
    pub name: String,
    /// `edited`, `added` or `removed`.
    pub change: String,
    /// Its statements and covered statements on a's side (its old version); 0 when added.
    pub a_stmts: i64,
    pub a_stmts_covered: i64,
    /// On b's side (its version in `build`); 0 when removed.
    pub b_stmts: i64,
    pub b_stmts_covered: i64,
}

/// The coverage of a QA cycle: every snapshot of a service from `from` to `to`, across any
/// number of builds and rounds, against one build (the newest, `build`). A block counts as
/// covered if any snapshot of the cycle covered it on any build with the same function.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cycle {
    pub service: String,
    pub from: i64,
    pub to: i64,
    /// The snapshots it spans.
    pub snapshots: i64,
    pub build: String,
    /// The builds its snapshots ran, oldest first.
    pub builds: Vec<CycleBuild>,
    /// Of `build`'s blocks and statements, the covered ones.
    pub totals: Totals,
    /// Of those, the statements covered on `build` itself, and covered on earlier builds
    /// only (carried).
    pub stmts_measured: i64,
    pub stmts_carried: i64,
    /// Functions of `build` by state.
    pub functions: StateCounts,
    /// Per file of `build`, by name.
    pub files: Vec<CycleFile>,
    /// Functions that only earlier builds have: edited or removed since, with what was
    /// measured on them.
    pub gone: Vec<GoneFunc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CycleBuild {
    pub build: String,
    /// The first and last snapshots of the cycle that hold it.
    pub first_snapshot: i64,
    pub last_snapshot: i64,
}

/// Functions by state: `measured` on the build reported, `carried` from an earlier build of
/// the same function, `changed` (edited or added) and not covered yet, `uncovered`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateCounts {
    pub measured: i64,
    pub carried: i64,
    pub changed: i64,
    pub uncovered: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CycleFile {
    pub file: String,
    pub totals: Totals,
    pub stmts_measured: i64,
    pub stmts_carried: i64,
    pub functions: StateCounts,
}

/// A function only other builds have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoneFunc {
    pub file: String,
    pub name: String,
    /// `edited` (the build reported has a new version) or `removed`.
    pub change: String,
    /// The newest build that has it.
    pub build: String,
    pub stmts: i64,
    pub stmts_covered: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiffTotals {
    pub blocks: i64,
    pub stmts: i64,
    pub a_blocks_covered: i64,
    pub b_blocks_covered: i64,
    pub a_stmts_covered: i64,
    pub b_stmts_covered: i64,
    /// Blocks b covers and a does not.
    pub newly_covered: i64,
    /// Blocks a covers and b does not.
    pub no_longer_covered: i64,
    pub newly_covered_stmts: i64,
    pub no_longer_covered_stmts: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileDiff {
    pub file: String,
    pub total: DiffTotals,
    pub newly_covered: Vec<BlockRef>,
    pub no_longer_covered: Vec<BlockRef>,
}

/// A block as coverprofiles name it, with its function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockRef {
    pub start_line: u32,
    pub start_col: u32,
    pub end_line: u32,
    pub end_col: u32,
    pub stmts: u32,
    pub func: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// `POST /api/v1/snapshots/{id}/patch`: of the executable lines a diff added or modified, how
/// many the snapshot covers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PatchCoverage {
    pub snapshot: i64,
    pub total: PatchTotals,
    /// Files with changed executable lines, by diff path.
    pub files: Vec<PatchFile>,
    /// Diff paths with changed lines that no build of the snapshot has (not Go, tests, not
    /// instrumented), sorted.
    pub not_measured: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PatchTotals {
    /// Changed executable lines.
    pub lines: i64,
    pub covered: i64,
    /// `covered` of `lines` in percent (0 when there are none).
    pub coverage: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchFile {
    /// The metadata's name of the file (import path).
    pub file: String,
    /// The file's path in the diff.
    pub diff_path: String,
    pub lines: i64,
    pub covered: i64,
    /// The uncovered changed lines as ranges: `12-14,20`.
    pub uncovered: String,
    pub uncovered_lines: Vec<u32>,
}

/// What `PUT /api/v1/builds/{build}/sources` takes, gzip-compressed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SourceUpload {
    pub files: Vec<SourceFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceFile {
    /// The file's coverprofile name, as the build's metadata names it.
    pub name: String,
    pub source: String,
}

/// The answer to an upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Uploaded {
    pub build: String,
    /// Files in the build.
    pub files: usize,
    /// Files whose sources the server now has.
    pub sources: usize,
    /// Of those, the ones this upload stored (the others were stored already).
    pub stored: u64,
}

/// Checks a name or label that comes from outside (a service name, a snapshot label): 1 to
/// `max` bytes without control characters. The error says so, naming `what`.
pub fn check_text(what: &str, text: &str, max: usize) -> Result<(), String> {
    if text.is_empty() || text.len() > max || text.chars().any(char::is_control) {
        return Err(format!(
            "{what}: 1 to {max} bytes without control characters"
        ));
    }
    Ok(())
}

/// The most labels an instance registers with.
pub const MAX_LABELS: usize = 32;

/// Checks an instance's labels: at most [`MAX_LABELS`], keys 1 to 63 ASCII letters, digits,
/// `.`, `_`, `-` or `/`, values at most 256 bytes without commas or control characters.
pub fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!(
            "labels: at most {MAX_LABELS}, got {}",
            labels.len()
        ));
    }
    for (k, v) in labels {
        check_label(k, v)?;
    }
    Ok(())
}

fn check_label(key: &str, value: &str) -> Result<(), String> {
    let key_ok = !key.is_empty()
        && key.len() <= 63
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
    if !key_ok {
        return Err(format!(
            "label key {key:?}: 1 to 63 ASCII letters, digits, '.', '_', '-' or '/'"
        ));
    }
    if value.len() > 256 || value.chars().any(|c| c.is_control() || c == ',') {
        return Err(format!(
            "label {key}: its value is at most 256 bytes without commas or control characters"
        ));
    }
    Ok(())
}

/// Which instances a snapshot reads: those whose labels hold every `key=value` pair.
/// Written `env=staging,region=eu`, as `LIVECOV_LABELS` is; [`Selector::text`] is its
/// canonical form (pairs sorted by key), the one stored and compared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(pub BTreeMap<String, String>);

impl std::str::FromStr for Selector {
    type Err = String;
    fn from_str(s: &str) -> Result<Selector, String> {
        let mut pairs = BTreeMap::new();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(format!(
                    "selector {s:?}: {pair:?} is not key=value (write env=staging,region=eu)"
                ));
            };
            let (k, v) = (k.trim(), v.trim());
            check_label(k, v).map_err(|e| format!("selector {s:?}: {e}"))?;
            if pairs.insert(k.to_string(), v.to_string()).is_some() {
                return Err(format!("selector {s:?}: {k} twice"));
            }
        }
        if pairs.is_empty() {
            return Err(format!("selector {s:?}: no key=value pair"));
        }
        Ok(Selector(pairs))
    }
}

impl Selector {
    /// Whether `labels` hold every pair.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// `a=1,b=2`, pairs sorted by key.
    pub fn text(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join(",")
    }
}

/// `POST /api/v1/agents/{instance}/final`: an agent's last counters, sent as its process
/// ends, with its registration (the process may end before it ever registered).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinalDelivery {
    /// As `POST /api/v1/agents/register` takes it; `port` 0 when the agent never listened.
    pub registration: Registration,
    /// The counters, `LCC1` (docs/COUNTERS.md), base64 (standard alphabet, padded).
    pub counters: String,
}

/// The answer to a final delivery or a collected counters file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ended {
    pub service: String,
    pub instance: String,
    pub build: String,
    /// `exited`, or `live` for a process still running whose counters file was collected.
    pub state: String,
    /// Whether these counters held anything the server did not have: false for a copy it
    /// had already (a delivery or a collection repeated changes nothing).
    pub changed: bool,
}
