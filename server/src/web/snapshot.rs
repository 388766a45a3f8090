//! A snapshot's page: what it took (builds, instances and their outcomes), then the report of
//! its files and functions that the `html` export writes; and a file's annotated source, where
//! the sources of its build were uploaded (`livecov build --upload-sources`).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::page::{
    Page, WebError, coverage_cell, escape, num_cell, parse_id, query_value, service_href,
};
use crate::App;
use crate::error::ApiError;
use crate::snapshot::{View, stored};
use report::html::{self, Header, Sources};
use report::{Coverage, Options};

#[derive(Deserialize)]
pub struct PageParams {
    view: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Html<String>, WebError> {
    let id = parse_id("snapshot", &id)?;
    let view: View = match params.view.as_deref() {
        None => View::Window,
        Some(v) => v.parse().map_err(ApiError::BadRequest)?,
    };
    let detail = crate::snapshot::detail(&app, id).await?;
    let (row, parts) = stored(&app, id, view).await?;
    let cov = Coverage::merge(
        id,
        row.taken_at,
        parts.iter().map(|(b, v)| (&b.meta, v.as_slice())),
    );
    let builds: Vec<String> = parts.iter().map(|(b, _)| b.id.clone()).collect();
    let with_source: HashSet<String> = app.store.source_files(&builds).await?.into_iter().collect();

    let title = format!("Snapshot #{id}");
    let mut page = Page::new(
        &title,
        &[
            (&row.service, Some(service_href(&row.service))),
            (&title, None),
        ],
        html::capacity(&cov),
    );
    let out = &mut page.out;
    window(out, &detail.snapshot, view);
    let v = match view {
        View::Window => "",
        View::Deploy => "&amp;view=deploy",
    };
    let _ = writeln!(
        out,
        "<p class=\"downloads\">Download: \
         <a href=\"/api/v1/snapshots/{id}/profile?format=go{v}\">coverprofile</a> · \
         <a href=\"/api/v1/snapshots/{id}/profile?format=lcov{v}\">LCOV</a> · \
         <a href=\"/api/v1/snapshots/{id}/profile?format=cobertura{v}\">Cobertura</a> · \
         <a href=\"/api/v1/snapshots/{id}/profile?format=json{v}\">JSON</a> · \
         <a href=\"/api/v1/snapshots/{id}/profile?format=html{v}\">HTML report</a></p>"
    );
    builds_table(out, &detail);
    let link = |file: &str| {
        with_source
            .contains(file)
            .then(|| format!("/snapshots/{id}/source?file={}", query_value(file)))
    };
    let header = Header {
        service: &row.service,
        label: row.label.as_deref(),
    };
    html::body(
        out,
        &cov,
        &header,
        &Options::default(),
        Sources::Linked(&link),
    );
    Ok(page.finish())
}

/// What the snapshot measures, both coverages, and a link to the one not shown.
fn window(out: &mut String, s: &crate::types::SnapshotInfo, view: View) {
    let since = s.since.as_deref().unwrap_or("the instances started");
    let what = match (s.kind.as_str(), &s.session) {
        ("session", Some(name)) => {
            let mut n = String::new();
            escape(&mut n, name);
            format!("session <b>{n}</b>, open from {since} to {}", s.taken_at)
        }
        ("reset", _) => format!("the round from {since} to this reset"),
        _ => format!("this round, since {since}"),
    };
    let (shown, other, href) = match view {
        View::Window => ("", "since the instances started", "?view=deploy"),
        View::Deploy => (
            " (shown below: since the instances started)",
            "the window",
            "?",
        ),
    };
    let _ = writeln!(
        out,
        "<p class=\"window\">Measures {what}: <b>{:.2}%</b> of statements; since the instances \
         started: <b>{:.2}%</b>{shown}. <a href=\"{href}\">Show {other}</a></p>",
        s.totals.coverage, s.deploy.coverage
    );
}

/// The builds the snapshot merged and what each instance answered.
fn builds_table(out: &mut String, d: &crate::types::SnapshotDetail) {
    out.push_str(
        "<details class=\"pulled\"><summary>Builds and instances</summary>\n\
         <table>\n<thead><tr><th class=\"l\">Build</th><th class=\"l\">Mode</th>\
         <th data-k=\"n\">Instances</th><th data-k=\"n\">Statements</th>\
         <th data-k=\"n\">Covered</th><th data-k=\"n\">Coverage</th></tr></thead>\n<tbody>\n",
    );
    for b in &d.builds {
        out.push_str("<tr><td class=\"l\"><code>");
        escape(out, &b.build);
        out.push_str("</code></td><td class=\"l\">");
        escape(out, &b.mode);
        out.push_str("</td>");
        num_cell(out, b.instances);
        num_cell(out, b.totals.stmts);
        num_cell(out, b.totals.stmts_covered);
        coverage_cell(out, b.totals.stmts_covered, b.totals.stmts);
        out.push_str("</tr>\n");
    }
    out.push_str(
        "</tbody>\n</table>\n<table>\n<thead><tr><th class=\"l\">Instance</th>\
         <th class=\"l\">Address</th><th class=\"l\">Outcome</th><th data-k=\"n\">ms</th>\
         <th class=\"l\">Message</th></tr></thead>\n<tbody>\n",
    );
    for i in &d.instance_results {
        out.push_str("<tr><td class=\"l\"><code>");
        escape(out, &i.instance);
        out.push_str("</code></td><td class=\"l\">");
        escape(out, &i.address);
        let _ = write!(
            out,
            "</td><td class=\"l outcome-{o}\">{o}</td>",
            o = i.outcome
        );
        num_cell(out, i.duration_ms);
        out.push_str("<td class=\"l\">");
        escape(out, i.message.as_deref().unwrap_or(""));
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</details>\n");
}

#[derive(Deserialize)]
pub struct SourceParams {
    file: String,
}

/// One file of a snapshot with its source annotated, from the first of the snapshot's builds
/// that has both the file and its uploaded source.
pub async fn source(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(params): Query<SourceParams>,
) -> Result<Html<String>, WebError> {
    let id = parse_id("snapshot", &id)?;
    let (row, parts) = stored(&app, id, View::Window).await?;
    let builds: Vec<String> = parts.iter().map(|(b, _)| b.id.clone()).collect();
    let Some(text) = crate::sources::text(&app, &builds, &params.file).await? else {
        return Err(ApiError::NotFound(format!(
            "snapshot {id} has no uploaded source for {:?}: upload it with \
             `livecov build --upload-sources`",
            params.file
        ))
        .into());
    };
    // Only this file's blocks are merged: the page must not cost what the whole build does.
    let one: Vec<(instrumenter::BuildMeta, &[u32])> = parts
        .iter()
        .filter_map(|(b, v)| {
            let f = b.meta.files.iter().position(|f| f.name == params.file)?;
            let at = b.offsets[f];
            let meta = instrumenter::BuildMeta {
                mode: b.meta.mode,
                files: vec![b.meta.files[f].clone()],
            };
            Some((meta, &v[at..at + b.shape[f] as usize]))
        })
        .collect();
    let cov = Coverage::merge(id, row.taken_at, one.iter().map(|(m, v)| (m, *v)));
    let Some(file) = cov.files.first() else {
        return Err(
            ApiError::NotFound(format!("snapshot {id} has no file {:?}", params.file)).into(),
        );
    };
    let snapshot = format!("Snapshot #{id}");
    let mut page = Page::new(
        &params.file,
        &[
            (&row.service, Some(service_href(&row.service))),
            (&snapshot, Some(format!("/snapshots/{id}"))),
            (&params.file, None),
        ],
        text.len() * 2,
    );
    let out = &mut page.out;
    out.push_str(
        "<p class=\"legend\"><span class=\"c1\">covered</span> \
                  <span class=\"c0\">not covered</span> not a statement; \
                  hover a block for its count.</p>\n",
    );
    html::annotate(out, file, &text, "L");
    Ok(page.finish())
}
