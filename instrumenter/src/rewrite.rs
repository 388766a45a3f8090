//! Writing counters into Go source.
//!
//! Every insertion lands on an existing line (after a `{`, after a clause's `:`, or before the
//! statement that starts a block), and the declarations go after the last line, so every
//! original line keeps its number: a panic's stack trace points at the user's real line. The
//! only import added is `sync/atomic` from the standard library, under a name no user code
//! uses, so a rewritten file never needs anything from `go.mod`.

use crate::blocks::{Cut, Insert};
use crate::{Mode, Prologue};

/// The name under which rewritten files import `sync/atomic`.
pub const ATOMIC_ALIAS: &str = "_livecov_atomic";

/// Rewrites `src`: counters of `cut` go into the array `var`, declared at the end of the file.
pub(crate) fn rewrite(
    src: &[u8],
    cut: &Cut,
    mode: Mode,
    var: &str,
    package_name_end: usize,
    prologue: Option<(usize, &Prologue)>,
) -> Vec<u8> {
    let mut inserts: Vec<&Insert> = cut.inserts.iter().collect();
    // Stable: insertions at the same offset keep walk order (an `else if`'s `{` comes before
    // its counter).
    inserts.sort_by_key(|i| i.offset());

    let n = cut.blocks.len();
    let mut out = Vec::with_capacity(src.len() + n * 48 + 128);
    out.extend_from_slice(&src[..package_name_end]);
    if n > 0 && mode != Mode::Count {
        out.extend_from_slice(format!("; import {ATOMIC_ALIAS} \"sync/atomic\"").as_bytes());
    }
    if let Some((_, p)) = prologue {
        out.extend_from_slice(format!("; import {} {:?}", p.import.0, p.import.1).as_bytes());
    }
    let mut copied = package_name_end;
    let mut prologue = prologue;
    for insert in inserts {
        let offset = insert.offset();
        // The prologue goes first in main's body, before main's own counter.
        if let Some((at, p)) = prologue.filter(|(at, _)| *at <= offset) {
            out.extend_from_slice(&src[copied..at]);
            out.extend_from_slice(p.statement.as_bytes());
            out.push(b';');
            copied = at;
            prologue = None;
        }
        out.extend_from_slice(&src[copied..offset]);
        copied = offset;
        match *insert {
            Insert::Text { text, .. } => out.extend_from_slice(text.as_bytes()),
            Insert::Counter { index, .. } => {
                out.extend_from_slice(counter_stmt(mode, var, index).as_bytes());
                out.push(b';');
            }
        }
    }
    if let Some((at, p)) = prologue {
        out.extend_from_slice(&src[copied..at]);
        out.extend_from_slice(p.statement.as_bytes());
        out.push(b';');
        copied = at;
    }
    out.extend_from_slice(&src[copied..]);
    out.extend_from_slice(format!("\n\nvar {var} [{n}]uint32\n").as_bytes());
    out
}

/// The statement that records one execution of block `index`.
///
/// In set mode the counter is written only while it is still zero, with atomic loads and
/// stores: a hot block costs one load and a compare, no cache line is dirtied after the first
/// hit, and the race detector sees no race from instrumentation.
fn counter_stmt(mode: Mode, var: &str, index: usize) -> String {
    match mode {
        Mode::Set => format!(
            "if {ATOMIC_ALIAS}.LoadUint32(&{var}[{index}]) == 0 {{ {ATOMIC_ALIAS}.StoreUint32(&{var}[{index}], 1) }}"
        ),
        Mode::Count => format!("{var}[{index}]++"),
        Mode::Atomic => format!("{ATOMIC_ALIAS}.AddUint32(&{var}[{index}], 1)"),
    }
}
