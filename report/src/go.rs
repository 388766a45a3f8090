//! The `go` format: the coverprofile text of `go test -coverprofile`, which
//! `go tool cover -func` and `-html` read.

use instrumenter::BuildMeta;
use instrumenter::profile::{header, write_textual};

use crate::coverage::{Coverage, merged_mode};

/// The Go coverprofile of builds with their counters. One build is written in counter order;
/// several list each block once, in position order per file: blocks that the builds share
/// (same file, same position) are merged like counters of one build ([`Coverage::merge`]).
pub fn write(builds: &[(&BuildMeta, &[u32])]) -> String {
    let mode = merged_mode(builds.iter().map(|(m, _)| m.mode));
    let mut out = header(mode);
    if let [(meta, values)] = builds {
        let mut offsets = Vec::with_capacity(meta.files.len());
        let mut at = 0;
        for f in &meta.files {
            offsets.push(at);
            at += f.blocks.len();
        }
        write_textual(&mut out, &meta.files, |f, i| {
            u64::from(values[offsets[f] + i])
        });
        return out;
    }
    let cov = Coverage::merge(0, 0, builds.iter().copied());
    let metas: Vec<_> = cov.files.iter().map(|f| f.meta()).collect();
    write_textual(&mut out, &metas, |f, i| {
        u64::from(cov.files[f].blocks[i].count)
    });
    out
}
