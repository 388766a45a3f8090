//! The `go` format: the coverprofile text of `go test -coverprofile`, which
//! `go tool cover -func` and `-html` read.

use instrumenter::profile::{header, write_textual};
use instrumenter::{BuildMeta, Mode};

/// The Go coverprofile of one build's blocks with `counts` (in its counter order), written
/// in counter order as `go test -coverprofile` writes them. A view of several builds is
/// against one of them ([`crate::project`]), so no two blocks ever overlap.
pub fn write(meta: &BuildMeta, mode: Mode, counts: &[u32]) -> String {
    let mut out = header(mode);
    let mut offsets = Vec::with_capacity(meta.files.len());
    let mut at = 0;
    for f in &meta.files {
        offsets.push(at);
        at += f.blocks.len();
    }
    write_textual(&mut out, &meta.files, |f, i| {
        u64::from(counts.get(offsets[f] + i).copied().unwrap_or(0))
    });
    out
}
