//! The operations on a service's windows: a snapshot of its round, a reset, sessions, and the
//! recovery of boundaries a stopped server left pending. Windows are drawn without resetting
//! any agent.
//!
//! Agents never zero their counters (`agent-go/doc.go`, "Epochs and boundaries"). A
//! **boundary** is a moment the server marks in every live instance of a service: the agent
//! starts a new epoch and answers its counters at that moment, which the server keeps
//! (`boundary_instances`). A window's coverage is then, per instance, what ran between its
//! start boundary and the moment it is read:
//!
//! - set mode: an agent's value for a block is the epoch it was last hit in, so the block ran in
//!   the window if that epoch is at least the one that began at the start boundary;
//! - count and atomic modes: values are counts since the process started, so the window's count
//!   is the count now less the count at the start boundary.
//!
//! An instance with no answer at the start boundary counts whole if it registered after the
//! boundary (it started inside the window); if it was there but missed the boundary, a round
//! applies the boundary to it at the next snapshot ("joined late") and a session leaves it out
//! of the window (its counts stay in the deploy view).
//!
//! A reset draws the boundary that ends the round and begins the next; a session's start and
//! stop are boundaries too. Each boundary is written, pending, before any agent is asked, and
//! done in one transaction with every answer and the snapshot it stores. A server that dies in
//! between applies the boundary again with the same token, which agents that applied it already
//! answer exactly as before ([`finish_pending`]): no operation loses a count.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::App;
use crate::snapshot::{self, Pulled, SnapshotError};
use crate::store::{
    BoundaryKind, BoundaryRow, InstanceRow, Record, SessionRow, StoreError, Window, now_ms,
};
use crate::types::{Selector, SessionInfo, SessionList};
use crate::window::{self, Since};

/// What the instances answered at boundary `b`, by instance.
async fn records(app: &App, b: &BoundaryRow) -> Result<BTreeMap<String, Since>, StoreError> {
    Ok(app
        .store
        .records(b.id)
        .await?
        .into_iter()
        .map(|r| {
            let since = Since::Boundary {
                epoch: u32::try_from(r.epoch).unwrap_or(u32::MAX),
                counters: Arc::new(r.counters),
            };
            (r.instance, since)
        })
        .collect())
}

/// The starts of `live` in the round that began at `round`: instances that were there and
/// missed it have it applied now, and `notes` says so.
pub(crate) async fn join_late(
    app: &Arc<App>,
    round: &BoundaryRow,
    live: &[InstanceRow],
    notes: &mut BTreeMap<String, String>,
) -> Result<BTreeMap<String, Since>, SnapshotError> {
    let mut known = records(app, round).await?;
    let late: Vec<InstanceRow> = live
        .iter()
        .filter(|i| !known.contains_key(&i.id) && i.registered_at <= round.created_at)
        .cloned()
        .collect();
    if late.is_empty() {
        return Ok(known);
    }
    for p in snapshot::gather(app, late, Some(&round.token)).await? {
        let Ok((_, answer)) = p.result else {
            continue;
        };
        let record = Record {
            instance: p.inst.id.clone(),
            epoch: i64::from(answer.epoch),
            counters: answer.body,
            at: now_ms(),
        };
        app.store.add_record(round.id, &record).await?;
        notes.insert(
            p.inst.id.clone(),
            format!(
                "joined the round late, at {}: what it ran before is in the deploy view only",
                report::rfc3339(record.at)
            ),
        );
        known.insert(
            p.inst.id,
            Since::Boundary {
                epoch: answer.epoch,
                counters: Arc::new(record.counters),
            },
        );
    }
    Ok(known)
}

/// Takes `service`'s lock, so that its snapshots, resets and sessions run one at a time, and
/// finishes what an earlier server left pending for it: every operation starts from a service
/// whose boundaries are all done (or given up).
async fn enter(app: &Arc<App>, service: &str) -> tokio::sync::OwnedMutexGuard<()> {
    let held = app.service_lock(service).lock_owned().await;
    finish_pending(app, Some(service)).await;
    held
}

/// Reads every live instance of `service` (those `selector` matches, if given) and stores the
/// coverage of its current round (and since each instance started) under `label` (1 to 1,024
/// bytes without control characters). Returns the snapshot's id.
pub async fn take(
    app: &Arc<App>,
    service: &str,
    label: Option<String>,
    selector: Option<&Selector>,
) -> Result<i64, SnapshotError> {
    let started = Instant::now();
    snapshot::check_label(label.as_deref())?;
    let _held = enter(app, service).await;
    if !app.store.service_exists(service).await? {
        return Err(SnapshotError::UnknownService(service.to_string()));
    }
    let mut live = app.store.instances(service, true).await?;
    if let Some(sel) = selector {
        live.retain(|i| sel.matches(&i.labels));
    }
    let round = app.store.round_boundary(service).await?;
    // The processes that ended in this round count with the live ones.
    let since_ms = round.as_ref().map_or(0, |r| r.created_at);
    let ended = crate::exited::pulls(app, service, since_ms, selector).await?;
    if live.is_empty() && ended.is_empty() {
        return Err(match selector {
            Some(sel) => SnapshotError::NoMatch {
                service: service.to_string(),
                selector: sel.text(),
            },
            None => SnapshotError::NoLiveInstances(service.to_string()),
        });
    }
    app.store.ping().await?;
    let taken_at = now_ms();
    let mut notes = BTreeMap::new();
    let since = match &round {
        Some(r) => join_late(app, r, &live, &mut notes).await?,
        None => BTreeMap::new(),
    };
    let mut pulled = snapshot::gather(app, live, None).await?;
    notes.extend(ended.iter().map(ended_note));
    pulled.extend(ended);
    let window = Window {
        kind: "snapshot".into(),
        session: None,
        since: round.as_ref().map(|r| r.created_at),
    };
    let since_of = |i: &InstanceRow| window::since(round.as_ref(), &since, i);
    let mut snap = snapshot::compose(
        service, label, window, false, started, taken_at, &pulled, since_of, &notes,
    )?;
    snap.selector = selector.map(Selector::text);
    let id = snapshot::store(app, &snap).await?;
    Ok(id)
}

/// Ends `service`'s round and begins the next: the snapshot of the round that ended, stored
/// with the new round's start. Returns the snapshot's id.
pub async fn reset(
    app: &Arc<App>,
    service: &str,
    label: Option<String>,
) -> Result<i64, SnapshotError> {
    snapshot::check_label(label.as_deref())?;
    let _held = enter(app, service).await;
    snapshot::live_instances(app, service).await?;
    let b = app
        .store
        .new_round(service, label.as_deref(), &new_token(), now_ms())
        .await?;
    finish(app, &b).await?.ok_or_else(|| given_up(service))
}

/// Starts session `name` of `service` (or answers the one of that name already open, with
/// false).
pub async fn start_session(
    app: &Arc<App>,
    service: &str,
    name: &str,
) -> Result<(SessionInfo, bool), SnapshotError> {
    report::types::check_text("session name", name, 256).map_err(SnapshotError::Invalid)?;
    let _held = enter(app, service).await;
    if !app.store.service_exists(service).await? {
        return Err(SnapshotError::UnknownService(service.to_string()));
    }
    let (session, b) = match app
        .store
        .start_session(service, name, &new_token(), now_ms())
        .await?
    {
        Ok(started) => started,
        Err(open) => return Ok((session_info(&open), false)),
    };
    finish(app, &b).await?;
    let session = app.store.session(session.id).await?.unwrap_or(session);
    Ok((session_info(&session), true))
}

/// Stops session `name` of `service`: the snapshot of what ran while it was open. Returns the
/// snapshot's id.
pub async fn stop_session(
    app: &Arc<App>,
    service: &str,
    name: &str,
    label: Option<String>,
) -> Result<i64, SnapshotError> {
    snapshot::check_label(label.as_deref())?;
    let _held = enter(app, service).await;
    if !app.store.service_exists(service).await? {
        return Err(SnapshotError::UnknownService(service.to_string()));
    }
    let no_session = || SnapshotError::NoSession {
        service: service.to_string(),
        name: name.to_string(),
    };
    let session = app
        .store
        .open_session(service, name)
        .await?
        .ok_or_else(no_session)?;
    app.store.ping().await?;
    let b = app
        .store
        .stop_session(&session, label.as_deref(), &new_token(), now_ms())
        .await?
        .ok_or_else(no_session)?;
    finish(app, &b).await?.ok_or_else(|| given_up(service))
}

/// A reset or stop that another server process sharing the database gave up meanwhile.
fn given_up(service: &str) -> SnapshotError {
    SnapshotError::NoAnswer {
        service: service.to_string(),
        why: "another server gave this operation up: no instance answered it".into(),
    }
}

/// The sessions of `service`, newest first.
pub async fn sessions(app: &App, service: &str) -> Result<SessionList, SnapshotError> {
    if !app.store.service_exists(service).await? {
        return Err(SnapshotError::UnknownService(service.to_string()));
    }
    let rows = app.store.sessions(service).await?;
    Ok(SessionList {
        service: service.to_string(),
        sessions: rows.iter().map(session_info).collect(),
    })
}

pub fn session_info(s: &SessionRow) -> SessionInfo {
    SessionInfo {
        id: s.id,
        service: s.service.clone(),
        name: s.name.clone(),
        state: s.state().to_string(),
        started_at: report::rfc3339(s.started_at),
        stopped_at: s.stopped_at.map(report::rfc3339),
        snapshot: s.snapshot_id,
    }
}

/// Finishes the boundaries left pending (by a server that stopped, or a database that went
/// away), oldest first: of `service`, whose lock the caller holds, or of every service whose
/// lock is free. A boundary that cannot be finished yet stays pending.
pub async fn finish_pending(app: &Arc<App>, service: Option<&str>) {
    let pending = match app.store.pending_boundaries(service).await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %crate::error::Chain(&e), "pending boundaries not read");
            return;
        }
    };
    for b in pending {
        let lock = app.service_lock(&b.service);
        let _held = match service {
            Some(_) => None,
            None => match lock.try_lock() {
                Ok(held) => Some(held),
                Err(_) => continue,
            },
        };
        // Read again under the lock: another task may have finished it meanwhile.
        match app.store.boundary(b.id).await {
            Ok(Some(b)) if b.done_at.is_none() => {}
            _ => continue,
        }
        match finish(app, &b).await {
            Ok(_) => tracing::info!(
                service = b.service,
                boundary = b.id,
                kind = b.kind.as_str(),
                "finished a pending boundary"
            ),
            Err(e) => tracing::warn!(
                service = b.service,
                boundary = b.id,
                error = %crate::error::Chain(&e),
                "pending boundary not finished yet"
            ),
        }
    }
}

/// Applies pending boundary `b` in every live instance of its service and stores what they
/// answered, with the snapshot the boundary ends (a reset's round, a session). Safe to run
/// again: agents answer a token they applied as they did the first time. A reset or stop
/// that no instance answers is given up, changing nothing.
async fn finish(app: &Arc<App>, b: &BoundaryRow) -> Result<Option<i64>, SnapshotError> {
    let what = match b.kind {
        BoundaryKind::Round => "reset",
        BoundaryKind::Start => "session's start",
        BoundaryKind::Stop => "session's stop",
    };
    // The boundary is written: whatever the database does now, the server finishes it later.
    finish_once(app, b).await.map_err(|e| match e {
        SnapshotError::Store(source) | SnapshotError::Build(crate::BuildError::Store(source)) => {
            SnapshotError::Pending { what, source }
        }
        e => e,
    })
}

async fn finish_once(app: &Arc<App>, b: &BoundaryRow) -> Result<Option<i64>, SnapshotError> {
    let started = Instant::now();
    let taken_at = now_ms();
    let live = app.store.instances(&b.service, true).await?;
    let pulled = snapshot::gather(app, live, Some(&b.token)).await?;
    let records: Vec<Record> = pulled
        .iter()
        .filter_map(|p| {
            let (_, answer) = p.result.as_ref().ok()?;
            Some(Record {
                instance: p.inst.id.clone(),
                epoch: i64::from(answer.epoch),
                counters: answer.body.clone(),
                at: taken_at,
            })
        })
        .collect();
    let composed = match b.kind {
        BoundaryKind::Start => None,
        BoundaryKind::Round => {
            let start = app.store.round_boundary(&b.service).await?;
            Some(ending(app, b, start, "reset", None, pulled, started, taken_at).await)
        }
        BoundaryKind::Stop => {
            let session = match b.session_id {
                Some(id) => app.store.session(id).await?,
                None => None,
            };
            let start = match &session {
                Some(s) => app.store.boundary(s.start_boundary).await?,
                None => None,
            };
            let name = session.map(|s| s.name);
            Some(ending(app, b, start, "session", name, pulled, started, taken_at).await)
        }
    };
    let composed = match composed {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            if let SnapshotError::NoAnswer { .. } = e {
                app.store.abandon_boundary(b, now_ms()).await?;
            }
            return Err(e);
        }
    };
    let snap = composed.as_ref();
    let stored = app
        .store
        .complete_boundary(b, &records, snap, now_ms())
        .await
        .map_err(SnapshotError::from);
    match snap {
        Some(snap) => {
            snapshot::stored_or_failed(app, snap, stored.map(|id| id.unwrap_or(0))).map(Some)
        }
        None => stored,
    }
}

/// The snapshot of the window that boundary `b` ends, which began at `start`.
#[allow(clippy::too_many_arguments)]
async fn ending(
    app: &App,
    b: &BoundaryRow,
    start: Option<BoundaryRow>,
    kind: &str,
    session: Option<String>,
    mut pulled: Vec<Pulled>,
    started: Instant,
    taken_at: i64,
) -> Result<crate::store::NewSnapshot, SnapshotError> {
    let starts = match &start {
        Some(s) => records(app, s).await?,
        None => BTreeMap::new(),
    };
    // The processes that ended in the window count with those that answered the boundary.
    let since_ms = start.as_ref().map_or(0, |s| s.created_at);
    let ended = crate::exited::pulls(app, &b.service, since_ms, None).await?;
    let notes: BTreeMap<String, String> = ended.iter().map(ended_note).collect();
    pulled.extend(ended);
    let window = Window {
        kind: kind.to_string(),
        session,
        since: start.as_ref().map(|s| s.created_at),
    };
    snapshot::compose(
        &b.service,
        b.label.clone(),
        window,
        b.kind == BoundaryKind::Round,
        started,
        taken_at,
        &pulled,
        |i| window::since(start.as_ref(), &starts, i),
        &notes,
    )
}

/// What a snapshot says of a process that ended: its outcome is its last counters.
fn ended_note(p: &Pulled) -> (String, String) {
    let when = p.inst.exited_at.unwrap_or(p.inst.last_seen);
    let note = format!(
        "ended at {}: its last counters, delivered by its agent or collected",
        report::rfc3339(when)
    );
    (p.inst.id.clone(), note)
}

/// A boundary's token: unique across servers and databases, so that an agent never takes a
/// new boundary for one it applied.
fn new_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut token = String::with_capacity(32);
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_i64(now_ms());
        h.write_u32(std::process::id());
        token.push_str(&format!("{:016x}", h.finish()));
    }
    token
}
