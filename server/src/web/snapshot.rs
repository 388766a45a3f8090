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
    Page, WebError, coverage_cell, escape, exclude_form, num_cell, parse_id, query_value,
    service_href,
};
use crate::App;
use crate::error::ApiError;
use crate::snapshot::{Against, View, projected};
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
    uri: axum::http::Uri,
) -> Result<Html<String>, WebError> {
    let id = parse_id("snapshot", &id)?;
    let view: View = match params.view.as_deref() {
        None => View::Window,
        Some(v) => v.parse().map_err(ApiError::BadRequest)?,
    };
    let exclude = crate::export::excludes(&uri)?;
    let detail = crate::snapshot::detail(&app, id).await?;
    let p = projected(&app, id, view, None).await?;
    let proj = p.project();
    let (cov, dropped) = if exclude.is_empty() {
        (Coverage::of(id, p.row.taken_at, &p.target().meta, &proj), 0)
    } else {
        let (meta, proj, dropped) = exclude.apply(&p.target().meta, &proj);
        (Coverage::of(id, p.row.taken_at, &meta, &proj), dropped)
    };
    let row = &p.row;
    let target = p.target().id.clone();
    let exclusions = report::Exclusions {
        built: detail
            .builds
            .iter()
            .find(|b| b.build == target)
            .and_then(|b| b.excluded.as_ref())
            .map(|e| e.summary()),
        filter: exclude,
    };
    let notes = exclusions.notes(dropped);
    // What links keep: the filter, as one comma-separated value.
    let kept = if exclusions.filter.is_empty() {
        String::new()
    } else {
        format!(
            "&amp;exclude={}",
            query_value(&exclusions.filter.texts().join(","))
        )
    };
    let with_source: HashSet<String> = app
        .store
        .source_files(std::slice::from_ref(&target))
        .await?
        .into_iter()
        .collect();

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
    window(out, &detail.snapshot, view, &kept);
    if dropped > 0 || !exclusions.filter.is_empty() {
        out.push_str(
            "<p class=\"filtered\">These percentages count every file of the snapshot; the \
             report below leaves out the files the filter excludes.</p>\n",
        );
    }
    let hidden: &[(&str, &str)] = match view {
        View::Window => &[],
        View::Deploy => &[("view", "deploy")],
    };
    exclude_form(out, &exclusions.filter, hidden);
    let v = match view {
        View::Window => String::new(),
        View::Deploy => "&amp;view=deploy".to_string(),
    } + &kept;
    let _ = writeln!(
        out,
        "<p class=\"downloads\">Download: \
         <a href=\"/api/v1/snapshots/{id}/profile?format=go{v}\">coverprofile</a> · \
         <a href=\"/api/v1/snapshots/{id}/profile?format=lcov{v}\">LCOV</a> · \
         <a href=\"/api/v1/snapshots/{id}/profile?format=cobertura{v}\">Cobertura</a> · \
         <a href=\"/api/v1/snapshots/{id}/profile?format=json{v}\">JSON</a> · \
         <a href=\"/api/v1/snapshots/{id}/profile?format=html{v}\">HTML report</a></p>"
    );
    if p.parts.len() > 1 {
        let _ = writeln!(
            out,
            "<p class=\"against\">Its instances ran {} builds. Every statement is counted \
             once, against the newest, <code>{}</code>: what older builds measured is carried \
             into its unchanged functions (<span class=\"carried\">carried</span>), changed \
             functions start afresh, and functions only older builds have are listed at the \
             end.</p>",
            p.parts.len(),
            &target[..12]
        );
    }
    builds_table(out, &detail, &target);
    let link = |file: &str| {
        with_source
            .contains(file)
            .then(|| format!("/snapshots/{id}/source?file={}", query_value(file)))
    };
    let header = Header {
        service: &row.service,
        label: row.label.as_deref(),
        notes: &notes,
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

/// What the snapshot measures, both coverages, and a link to the one not shown (keeping
/// `kept`, the rest of the query).
fn window(out: &mut String, s: &crate::types::SnapshotInfo, view: View, kept: &str) {
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
    let kept = match view {
        View::Window => kept,
        View::Deploy => kept.strip_prefix("&amp;").unwrap_or(kept),
    };
    let _ = writeln!(
        out,
        "<p class=\"window\">Measures {what}: <b>{:.2}%</b> of statements; since the instances \
         started: <b>{:.2}%</b>{shown}. <a href=\"{href}{kept}\">Show {other}</a></p>",
        s.totals.coverage, s.deploy.coverage
    );
}

/// The builds the snapshot merged and what each instance answered; `target` the build it is
/// seen against.
fn builds_table(out: &mut String, d: &crate::types::SnapshotDetail, target: &str) {
    out.push_str(
        "<details class=\"pulled\"><summary>Builds and instances</summary>\n\
         <table>\n<thead><tr><th class=\"l\">Build</th><th class=\"l\">Mode</th>\
         <th data-k=\"n\">Instances</th><th data-k=\"n\">Statements</th>\
         <th data-k=\"n\">Covered</th><th data-k=\"n\">Coverage</th></tr></thead>\n<tbody>\n",
    );
    for b in &d.builds {
        out.push_str("<tr><td class=\"l\"><code>");
        escape(out, &b.build);
        out.push_str("</code>");
        if b.build == target && d.builds.len() > 1 {
            out.push_str(" (newest: the report is against it)");
        }
        out.push_str("</td><td class=\"l\">");
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

/// One file of a snapshot with its source annotated: the source of the build the snapshot
/// is seen against, with what other builds carried into it.
pub async fn source(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(params): Query<SourceParams>,
) -> Result<Html<String>, WebError> {
    let id = parse_id("snapshot", &id)?;
    let p = projected(&app, id, View::Window, None).await?;
    let row = &p.row;
    let builds = [p.target().id.clone()];
    let Some(text) = crate::sources::text(&app, &builds, &params.file).await? else {
        return Err(ApiError::NotFound(format!(
            "snapshot {id} has no uploaded source for {:?}: upload it with \
             `livecov build --upload-sources`",
            params.file
        ))
        .into());
    };
    // Only this file's blocks are projected: the page must not cost what the whole build
    // does. A build without the file takes part with none.
    let one: Vec<(instrumenter::BuildMeta, &[u32], &str)> = p
        .parts
        .iter()
        .map(|(b, v)| {
            let f = b.meta.files.iter().position(|f| f.name == params.file);
            let files = f.map(|f| b.meta.files[f].clone()).into_iter().collect();
            let values = f.map_or(&[][..], |f| {
                &v[b.offsets[f]..b.offsets[f] + b.shape[f] as usize]
            });
            let meta = instrumenter::BuildMeta {
                mode: b.meta.mode,
                files,
            };
            (meta, values, b.id.as_str())
        })
        .collect();
    let parts: Vec<report::Part> = one
        .iter()
        .map(|(meta, values, build)| report::Part {
            build,
            meta,
            values,
        })
        .collect();
    let proj = report::project::project(&parts, p.target);
    let cov = Coverage::of(id, row.taken_at, &one[p.target].0, &proj);
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
                  <span class=\"c2\">covered on an earlier build (carried)</span> \
                  <span class=\"c0\">not covered</span> not a statement; \
                  hover a block for its count.</p>\n",
    );
    html::annotate(out, file, &text, "L");
    Ok(page.finish())
}
