//! Sources for the annotated HTML report, read from the checkout by `livecov report --format
//! html` (the upload after `livecov build --upload-sources` is `client::upload`).
//!
//! A source is used only if cutting it into blocks gives the blocks of the build: a checkout
//! that moved on since the build would otherwise be annotated at the wrong lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use report::Coverage;

/// The Go module `dir` is in: its root directory and its module path, from the nearest
/// go.mod at or above `dir`.
pub fn module_of(dir: &Path) -> Option<(PathBuf, String)> {
    let mut at = Some(dir);
    while let Some(d) = at {
        if let Ok(text) = std::fs::read_to_string(d.join("go.mod")) {
            let path = text.lines().find_map(|l| {
                let rest = l.trim().strip_prefix("module")?;
                rest.starts_with([' ', '\t'])
                    .then(|| rest.trim().trim_matches('"').to_string())
            })?;
            return Some((d.to_path_buf(), path));
        }
        at = d.parent();
    }
    None
}

/// The sources of `cov`'s files found in the module at `root` (module path `module`), by
/// coverprofile name: those that exist and cut into exactly the blocks the snapshot has.
/// Answers them and the names of the files found but changed since the build.
pub fn local(cov: &Coverage, root: &Path, module: &str) -> (HashMap<String, String>, Vec<String>) {
    let mut found = HashMap::new();
    let mut changed = Vec::new();
    let prefix = format!("{}/", module.trim_end_matches('/'));
    for file in &cov.files {
        let Some(rel) = file.name.strip_prefix(&prefix) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(root.join(rel)) else {
            continue;
        };
        if same_blocks(file, &text) {
            found.insert(file.name.clone(), text);
        } else {
            changed.push(file.name.clone());
        }
    }
    (found, changed)
}

/// Whether `text` cuts into the blocks of `file` (positions and statements) under the rules
/// of some Go release: the check the server makes of an upload, short of function hashes,
/// which a report does not carry.
fn same_blocks(file: &report::FileCov, text: &str) -> bool {
    let cut = instrumenter::cut_where(&file.meta(), text.as_bytes(), instrumenter::Same::Blocks);
    matches!(cut, Ok(Some(_)))
}

/// The `html` report of a snapshot's `export`, with the sources of the Go module around
/// `dir` where they match; says on stderr which files it annotated and which it could not.
pub fn html(
    export: &report::ExportJson,
    snapshot: &report::types::SnapshotInfo,
    options: &report::Options,
    dir: &Path,
) -> String {
    let cov = export.coverage();
    let (found, changed) = match module_of(dir) {
        Some((root, module)) => local(&cov, &root, &module),
        None => (HashMap::new(), Vec::new()),
    };
    if found.is_empty() && changed.is_empty() {
        eprintln!(
            "livecov: no sources of the snapshot's files here: run in the service's checkout \
             to see them annotated"
        );
    } else {
        eprintln!(
            "livecov: {} of {} files annotated with their sources",
            found.len(),
            cov.files.len()
        );
    }
    if !changed.is_empty() {
        eprintln!(
            "livecov: {} files changed since the build and are not annotated: {}",
            changed.len(),
            changed.join(", ")
        );
    }
    let source = |name: &str| found.get(name).map(String::as_str);
    let notes = export.notes();
    let header = report::html::Header {
        service: &snapshot.service,
        label: snapshot.label.as_deref(),
        notes: &notes,
    };
    report::html::write(
        &cov,
        &header,
        options,
        report::html::Sources::Inline(&source),
    )
}
