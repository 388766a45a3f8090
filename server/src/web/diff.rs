//! The diff page: what snapshot `b` covers that `a` did not and the reverse, in total and per
//! file against b's newest build, with the blocks themselves, and the functions that changed
//! between their builds.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::page::{
    Page, WebError, bad_request, escape, num_cell, parse_id, percent, query_value, service_href,
};
use crate::App;
use crate::types::{BlockRef, DiffTotals, FuncDiff};

#[derive(Deserialize)]
pub struct DiffParams {
    a: Option<String>,
    b: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    Query(params): Query<DiffParams>,
) -> Result<Html<String>, WebError> {
    let (Some(a), Some(b)) = (params.a, params.b) else {
        return Err(bad_request("a diff needs two snapshots: /diff?a=ID&b=ID"));
    };
    let (a, b) = (parse_id("snapshot", &a)?, parse_id("snapshot", &b)?);
    let row_a = crate::snapshot::row(&app, a).await?;
    let row_b = crate::snapshot::row(&app, b).await?;
    let diff = crate::diff::diff(&app, a, b, crate::snapshot::View::Window, true, None).await?;

    let title = format!("Snapshot #{a} → #{b}");
    let mut trail = vec![(row_a.service.as_str(), Some(service_href(&row_a.service)))];
    if row_b.service != row_a.service {
        trail.push((row_b.service.as_str(), Some(service_href(&row_b.service))));
    }
    trail.push((title.as_str(), None));
    let mut page = Page::new(&title, &trail, 4096);
    let out = &mut page.out;
    let t = &diff.total;
    let _ = write!(
        out,
        "<dl class=\"meta\">\n<dt>A</dt><dd><a href=\"/snapshots/{a}\">#{a}</a> "
    );
    escape(out, row_a.label.as_deref().unwrap_or(""));
    let _ = write!(
        out,
        " — {} of {} statements covered ({})</dd>\n<dt>B</dt><dd><a href=\"/snapshots/{b}\">#{b}</a> ",
        t.a_stmts_covered,
        t.stmts,
        percent(t.a_stmts_covered, t.stmts)
    );
    escape(out, row_b.label.as_deref().unwrap_or(""));
    let _ = write!(
        out,
        " — {} of {} statements covered ({})</dd>\n\
         <dt>Newly covered</dt><dd id=\"newly-covered\">{} blocks, {} statements</dd>\n\
         <dt>No longer covered</dt><dd id=\"no-longer-covered\">{} blocks, {} statements</dd>\n",
        t.b_stmts_covered,
        t.stmts,
        percent(t.b_stmts_covered, t.stmts),
        t.newly_covered,
        t.newly_covered_stmts,
        t.no_longer_covered,
        t.no_longer_covered_stmts
    );
    out.push_str("<dt>Against build</dt><dd><code>");
    escape(out, &diff.build);
    out.push_str("</code> (B's newest; A's builds carried into its unchanged functions)</dd>\n");
    out.push_str("</dl>\n");

    let with_source: HashSet<String> = app
        .store
        .source_files(std::slice::from_ref(&diff.build))
        .await?
        .into_iter()
        .collect();
    functions(out, &diff.functions);
    let changed: Vec<_> = diff
        .files
        .iter()
        .filter(|f| f.total.newly_covered + f.total.no_longer_covered > 0)
        .collect();
    if changed.is_empty() {
        out.push_str("<p class=\"empty\">The two snapshots cover the same blocks.</p>\n");
        return Ok(page.finish());
    }
    out.push_str(
        "<table class=\"diff\">\n<thead><tr><th class=\"l\">File</th>\
         <th data-k=\"n\">Statements</th><th data-k=\"n\">Covered in A</th>\
         <th data-k=\"n\">Covered in B</th><th data-k=\"n\">Newly covered</th>\
         <th data-k=\"n\">No longer covered</th></tr></thead>\n<tbody>\n",
    );
    for (i, f) in changed.iter().enumerate() {
        let _ = write!(out, "<tr><td class=\"l\"><a href=\"#d{i}\">");
        escape(out, &f.file);
        out.push_str("</a></td>");
        row(out, &f.total);
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    for (i, f) in changed.iter().enumerate() {
        let _ = write!(out, "<h2 id=\"d{i}\"><code>");
        escape(out, &f.file);
        out.push_str("</code></h2>\n");
        // Blocks link to their lines in snapshot B's annotated source, where it was uploaded.
        let source = with_source
            .contains(&f.file)
            .then(|| format!("/snapshots/{b}/source?file={}", query_value(&f.file)));
        let source = source.as_deref();
        blocks(out, "Newly covered", "newly", &f.newly_covered, source);
        blocks(
            out,
            "No longer covered",
            "lost",
            &f.no_longer_covered,
            source,
        );
    }
    Ok(page.finish())
}

/// The functions that are not the same on both sides: edited, added, removed.
fn functions(out: &mut String, list: &[FuncDiff]) {
    if list.is_empty() {
        return;
    }
    out.push_str(
        "<table class=\"functions\">\n<caption>Changed functions</caption>\n<thead><tr>\
         <th class=\"l\">File</th><th class=\"l\">Function</th><th class=\"l\">Change</th>\
         <th data-k=\"n\">Statements in A</th><th data-k=\"n\">Covered in A</th>\
         <th data-k=\"n\">Statements in B</th><th data-k=\"n\">Covered in B</th></tr></thead>\n\
         <tbody>\n",
    );
    for f in list {
        out.push_str("<tr><td class=\"l\">");
        escape(out, &f.file);
        out.push_str("</td><td class=\"l\"><code>");
        escape(out, &f.name);
        let _ = write!(out, "</code></td><td class=\"l\">{}</td>", f.change);
        num_cell(out, f.a_stmts);
        num_cell(out, f.a_stmts_covered);
        num_cell(out, f.b_stmts);
        num_cell(out, f.b_stmts_covered);
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

fn row(out: &mut String, t: &DiffTotals) {
    num_cell(out, t.stmts);
    num_cell(out, t.a_stmts_covered);
    num_cell(out, t.b_stmts_covered);
    num_cell(out, t.newly_covered_stmts);
    num_cell(out, t.no_longer_covered_stmts);
}

/// A list of blocks: where each is, its statements, its function.
fn blocks(out: &mut String, what: &str, class: &str, list: &[BlockRef], source: Option<&str>) {
    if list.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<table class=\"blocks {class}\">\n<caption>{what}</caption>\n<thead><tr>\
         <th class=\"l\">Block</th><th class=\"l\">Function</th><th data-k=\"n\">Statements</th>\
         </tr></thead>\n<tbody>\n"
    );
    for b in list {
        let at = format!(
            "{}:{}–{}:{}",
            b.start_line, b.start_col, b.end_line, b.end_col
        );
        let _ = write!(out, "<tr><td class=\"l\" data-v=\"{}\">", b.start_line);
        match source {
            Some(href) => {
                out.push_str("<a href=\"");
                escape(out, href);
                let _ = write!(out, "#L{}\">{at}</a>", b.start_line);
            }
            None => out.push_str(&at),
        }
        out.push_str("</td><td class=\"l\"><code>");
        escape(out, &b.func);
        out.push_str("</code></td>");
        num_cell(out, i64::from(b.stmts));
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}
