//! The arithmetic of windows: what an instance ran between a boundary and the moment it was
//! read, from what it answered at both (docs/ARCHITECTURE.md, "Rounds, sessions and
//! boundaries").

use std::collections::BTreeMap;
use std::sync::Arc;

use instrumenter::Mode;

use crate::lcc::{self, Sparse};
use crate::meta::Build;
use crate::store::{BoundaryRow, InstanceRow};

/// Where an instance's window begins.
#[derive(Debug, Clone)]
pub enum Since {
    /// When the instance started: all it ran counts.
    Start,
    /// At a boundary it answered: the epoch that began there and its counters then (LCC1).
    Boundary { epoch: u32, counters: Arc<Vec<u8>> },
    /// It was live at the start boundary and did not answer: the window cannot say what it
    /// ran.
    Missed,
}

impl Since {
    /// The counters at the start, decoded against the instance's build; None if there are
    /// none or they do not decode (then the window holds nothing of the instance).
    pub fn base(&self, build: &Build) -> Option<Sparse> {
        match self {
            Since::Boundary { counters, .. } => lcc::decode(counters, &build.id, &build.shape).ok(),
            _ => None,
        }
    }

    /// What an instance's outcome says of its window.
    pub fn note(&self) -> Option<String> {
        match self {
            Since::Missed => Some(
                "missed the start of this window: its counts are in the deploy view only".into(),
            ),
            _ => None,
        }
    }
}

/// An instance's window: the non-zero `(index, value)` of what it ran since `since`, from its
/// counters `now` (set: 1 per block run; count and atomic: the number of runs).
pub fn window(mode: Mode, now: &Sparse, since: &Since, base: Option<&Sparse>) -> Vec<(u32, u32)> {
    match (since, mode) {
        (Since::Missed, _) => Vec::new(),
        (Since::Start, _) => deploy(mode, now),
        (Since::Boundary { epoch, .. }, Mode::Set) => now
            .nonzero
            .iter()
            .filter(|&&(_, stamp)| stamp >= *epoch)
            .map(|&(i, _)| (i, 1))
            .collect(),
        (Since::Boundary { .. }, Mode::Count | Mode::Atomic) => {
            let Some(base) = base else {
                return Vec::new();
            };
            let mut before = base.nonzero.iter().peekable();
            let mut out = Vec::new();
            for &(i, v) in &now.nonzero {
                while before.next_if(|&&(j, _)| j < i).is_some() {}
                let was = before.next_if(|&&(j, _)| j == i).map_or(0, |&(_, b)| b);
                if v > was {
                    out.push((i, v - was));
                }
            }
            out
        }
    }
}

/// What an instance ran since it started: set mode 1 per block, counts as they are.
pub fn deploy(mode: Mode, now: &Sparse) -> Vec<(u32, u32)> {
    match mode {
        Mode::Set => now.nonzero.iter().map(|&(i, _)| (i, 1)).collect(),
        Mode::Count | Mode::Atomic => now.nonzero.clone(),
    }
}

/// Where `inst`'s window begins, for a window that began at `start` (None: at each instance's
/// start) given what instances answered there.
pub fn since(
    start: Option<&BoundaryRow>,
    records: &BTreeMap<String, Since>,
    inst: &InstanceRow,
) -> Since {
    match start {
        None => Since::Start,
        Some(b) => match records.get(&inst.id) {
            Some(s) => s.clone(),
            None if inst.registered_at > b.created_at => Since::Start,
            None => Since::Missed,
        },
    }
}
