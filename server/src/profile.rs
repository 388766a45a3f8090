//! The `go` export of a stored snapshot (see [`crate::export`]): the coverprofile text of
//! `go test -coverprofile`, which `go tool cover -func` and `-html` read.

use std::collections::BTreeMap;

use instrumenter::profile::{header, write_textual};
use instrumenter::{Block, FileMeta, Mode};

use crate::App;
use crate::error::ApiError;
use crate::lcc;
use crate::snapshot::counters;

/// The Go coverprofile of snapshot `id`. A snapshot of several builds lists each block once:
/// blocks that the builds share (same file, same position) are merged like counters of one
/// build.
pub async fn go_profile(app: &App, id: i64) -> Result<String, ApiError> {
    let parts = counters(app, id).await?;
    let modes: Vec<Mode> = parts.iter().map(|(b, _)| b.mode()).collect();
    let mode = if modes.windows(2).all(|w| w[0] == w[1]) {
        modes.first().copied().unwrap_or(Mode::Set)
    } else {
        Mode::Count
    };
    let mut out = header(mode);
    if let [(build, values)] = parts.as_slice() {
        write_textual(&mut out, &build.meta.files, |f, i| {
            u64::from(values[build.offsets[f] + i])
        });
        return Ok(out);
    }
    // Union of the builds, by file name and block position.
    type Key = (u32, u32, u32, u32, u32);
    let mut files: BTreeMap<&str, BTreeMap<Key, u32>> = BTreeMap::new();
    for (build, values) in &parts {
        for (f, file) in build.meta.files.iter().enumerate() {
            let blocks = files.entry(file.name.as_str()).or_default();
            for (i, b) in file.blocks.iter().enumerate() {
                let key = (b.start.line, b.start.col, b.end.line, b.end.col, b.num_stmt);
                lcc::merge(
                    mode,
                    blocks.entry(key).or_insert(0),
                    values[build.offsets[f] + i],
                );
            }
        }
    }
    let mut metas = Vec::with_capacity(files.len());
    let mut counts = Vec::with_capacity(files.len());
    for (name, blocks) in files {
        let mut meta = FileMeta {
            name: name.to_string(),
            blocks: Vec::with_capacity(blocks.len()),
            funcs: Vec::new(),
        };
        let mut c = Vec::with_capacity(blocks.len());
        for ((l0, c0, l1, c1, n), v) in blocks {
            meta.blocks.push(Block {
                start: instrumenter::Pos { line: l0, col: c0 },
                end: instrumenter::Pos { line: l1, col: c1 },
                num_stmt: n,
                func: 0,
            });
            c.push(v);
        }
        metas.push(meta);
        counts.push(c);
    }
    write_textual(&mut out, &metas, |f, i| u64::from(counts[f][i]));
    Ok(out)
}
