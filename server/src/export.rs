//! Exports of a stored snapshot: its builds' counters read back and handed to the report
//! writers of [`report`] (`go`, `lcov`, `cobertura`, `json`, `html`).

use report::{Coverage, Format, Options};

use crate::App;
use crate::snapshot::{SnapshotError, stored};
use crate::store::SnapshotRow;

/// Snapshot `id` in `format`.
pub async fn export(
    app: &App,
    id: i64,
    format: Format,
    options: &Options,
) -> Result<String, SnapshotError> {
    let (row, parts) = stored(app, id).await?;
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
    let (row, parts) = stored(app, id).await?;
    let cov = Coverage::merge(
        id,
        row.taken_at,
        parts.iter().map(|(b, v)| (&b.meta, v.as_slice())),
    );
    Ok((row, cov))
}
