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
use report::{Coverage, Exclusions, Filter, Format, Options};

use crate::App;
use crate::error::ApiError;
use crate::snapshot::{Against, SnapshotError, View, projected};
use crate::store::SnapshotRow;

/// Snapshot `id`'s `view` in `format`, against `build` (default: the build it was taken
/// against), without the files `exclude` matches; answers the text and how many files the
/// filter took out. The `json` and `html` exports say what the build left uninstrumented.
pub async fn export(
    app: &App,
    id: i64,
    view: View,
    build: Option<&str>,
    format: Format,
    options: &Options,
    exclude: &Filter,
) -> Result<(String, usize), SnapshotError> {
    let p = projected(app, id, view, build).await?;
    let snapshot = report::Snapshot {
        id,
        taken_at: p.row.taken_at,
        service: p.row.service.clone(),
        label: p.row.label.clone(),
    };
    let exclusions = Exclusions {
        filter: exclude.clone(),
        built: built_without(app, &p.target().id).await?,
    };
    let proj = p.project();
    Ok(report::write_excluding(
        format,
        &p.target().meta,
        &proj,
        &snapshot,
        options,
        &exclusions,
    ))
}

/// The filter of a request's `exclude=` query parameters (repeatable, each a pattern or a
/// comma-separated list of them, see [`report::filter`]); a bad pattern is a 400 that says
/// why.
pub fn excludes(uri: &axum::http::Uri) -> Result<Filter, ApiError> {
    let axum::extract::Query(pairs) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Filter::parse(pairs.iter().filter(|(k, _)| k == "exclude").map(|(_, v)| v))
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// What build `build` left uninstrumented, as one line for people.
pub async fn built_without(app: &App, build: &str) -> Result<Option<String>, SnapshotError> {
    Ok(app.store.build_excluded(build).await?.map(|e| e.summary()))
}

/// Snapshot `id`'s row and its window's coverage against the build it was taken against.
pub async fn load(app: &App, id: i64) -> Result<(SnapshotRow, Coverage), SnapshotError> {
    let p = projected(app, id, View::Window, None).await?;
    let cov = Coverage::of(id, p.row.taken_at, &p.target().meta, &p.project());
    Ok((p.row, cov))
}

/// The patch coverage of snapshot `id`: of the executable lines `patch` added or modified,
/// those the snapshot covers. `module` names the module the patch's paths are relative to.
pub async fn patch_coverage(
    app: &App,
    id: i64,
    patch: &Patch,
    module: Option<&str>,
) -> Result<PatchCoverage, PatchError> {
    let p = projected(app, id, View::Window, None).await?;
    let counts = p.project().counts;
    let builds = [(&p.target().meta, counts.as_slice())];
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
