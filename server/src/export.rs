//! Exports of a stored snapshot: its builds' counters read back and handed to the report
//! writers of [`report`] (`go`, `lcov`, `cobertura`, `json`, `html`), whole or restricted to
//! the lines a [`Patch`] changed; and the patch coverage of a snapshot ([`report::patch`]).

/// Why a patch's coverage was not answered.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The patch's paths match the builds' files ambiguously, or its lines cannot be written
    /// in the format asked for.
    #[error("{0}")]
    Invalid(String),
}

use std::collections::BTreeSet;

use report::patch::{Patch, changed_lines, measure};
use report::types::PatchCoverage;
use report::{Coverage, Format, Options};

use crate::App;
use crate::snapshot::{SnapshotError, View, stored};
use crate::store::SnapshotRow;

/// Snapshot `id`'s `view` in `format`.
pub async fn export(
    app: &App,
    id: i64,
    view: View,
    format: Format,
    options: &Options,
) -> Result<String, SnapshotError> {
    let (row, parts) = stored(app, id, view).await?;
    let builds: Vec<_> = parts.iter().map(|(b, v)| (&b.meta, v.as_slice())).collect();
    let snapshot = report::Snapshot {
        id,
        taken_at: row.taken_at,
        service: row.service,
        label: row.label,
    };
    Ok(report::write(format, &builds, &snapshot, options))
}

/// Snapshot `id`'s row and its coverage merged across its builds.
pub async fn load(app: &App, id: i64) -> Result<(SnapshotRow, Coverage), SnapshotError> {
    let (row, parts) = stored(app, id, View::Window).await?;
    let cov = Coverage::merge(
        id,
        row.taken_at,
        parts.iter().map(|(b, v)| (&b.meta, v.as_slice())),
    );
    Ok((row, cov))
}

/// The patch coverage of snapshot `id`: of the executable lines `patch` added or modified,
/// those the snapshot covers. `module` names the module the patch's paths are relative to.
pub async fn patch_coverage(
    app: &App,
    id: i64,
    patch: &Patch,
    module: Option<&str>,
) -> Result<PatchCoverage, PatchError> {
    let builds = crate::snapshot::counters(app, id).await?;
    let builds: Vec<_> = builds
        .iter()
        .map(|(b, v)| (&b.meta, v.as_slice()))
        .collect();
    measure(id, &builds, patch, module).map_err(PatchError::Invalid)
}

/// Snapshot `id` in `format` (a line format), restricted to the lines `patch` gained.
pub async fn patch_export(
    app: &App,
    id: i64,
    patch: &Patch,
    module: Option<&str>,
    format: Format,
    options: &Options,
) -> Result<String, PatchError> {
    let (_, cov) = load(app, id).await?;
    let names: BTreeSet<&str> = cov.files.iter().map(|f| f.name.as_str()).collect();
    let keep = changed_lines(&names, patch, module).map_err(PatchError::Invalid)?;
    report::write_lines(&cov.restrict(&keep), format, options).map_err(|e| PatchError::Invalid(e.0))
}
