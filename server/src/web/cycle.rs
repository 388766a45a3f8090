//! A QA cycle's page: the coverage of every snapshot of a service from a chosen first one to
//! the newest (or a chosen last one), against the newest build, with each function marked
//! measured on it, carried from an earlier build, or changed and not covered yet
//! (`crate::cycle`).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::page::{
    Page, WebError, bad_request, escape, exclude_form, parse_id, percent, query_value, service_href,
};
use crate::App;
use crate::snapshot::{Against, View};
use report::html::{self, Header, Sources};
use report::{Coverage, Options};

#[derive(Deserialize)]
pub struct CycleParams {
    from: Option<String>,
    to: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(params): Query<CycleParams>,
    uri: axum::http::Uri,
) -> Result<Html<String>, WebError> {
    let exclude = crate::export::excludes(&uri)?;
    let Some(from) = params.from.as_deref().filter(|f| !f.is_empty()) else {
        return Err(bad_request(
            "a cycle needs its first snapshot: /services/NAME/cycle?from=ID",
        ));
    };
    let from = parse_id("snapshot", from)?;
    let to = match params.to.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => Some(parse_id("snapshot", t)?),
        None => None,
    };
    let c = crate::cycle::load(&app, &name, from, to, View::Window, None)
        .await
        .map_err(crate::error::ApiError::from)?;
    let proj = c.project();
    let target = c.target().clone();
    let sum = crate::cycle::summary(&c);
    let (cov, dropped) = if exclude.is_empty() {
        (Coverage::of(c.to, c.taken_at, &target.meta, &proj), 0)
    } else {
        let (meta, proj, dropped) = exclude.apply(&target.meta, &proj);
        (Coverage::of(c.to, c.taken_at, &meta, &proj), dropped)
    };
    let exclusions = report::Exclusions {
        built: crate::export::built_without(&app, &target.id)
            .await
            .map_err(crate::error::ApiError::from)?,
        filter: exclude,
    };
    let notes = exclusions.notes(dropped);

    let title = format!("Cycle #{} → #{}", c.from, c.to);
    let mut page = Page::new(
        &title,
        &[(&name, Some(service_href(&name))), (&title, None)],
        html::capacity(&cov),
    );
    let out = &mut page.out;
    let t = &sum.totals;
    let _ = write!(
        out,
        "<dl class=\"meta cycle\">\n<dt>Snapshots</dt><dd>{} (<a href=\"/snapshots/{}\">#{}</a> \
         to <a href=\"/snapshots/{}\">#{}</a>)</dd>\n<dt>Against build</dt><dd><code>",
        sum.snapshots, c.from, c.from, c.to, c.to
    );
    escape(out, &sum.build);
    let _ = write!(
        out,
        "</code> (the newest)</dd>\n<dt>Builds</dt><dd>{}</dd>\n\
         <dt>Covered</dt><dd id=\"cycle-covered\">{} of {} statements ({})</dd>\n\
         <dt>Measured on this build</dt><dd>{} statements</dd>\n\
         <dt>Carried from earlier builds</dt><dd>{} statements</dd>\n\
         <dt>Functions</dt><dd id=\"cycle-functions\">{} measured, {} carried, {} changed and \
         not covered yet, {} not covered</dd>\n</dl>\n",
        sum.builds.len(),
        t.stmts_covered,
        t.stmts,
        percent(t.stmts_covered, t.stmts),
        sum.stmts_measured,
        sum.stmts_carried,
        sum.functions.measured,
        sum.functions.carried,
        sum.functions.changed,
        sum.functions.uncovered,
    );
    let (from, to) = (c.from.to_string(), c.to.to_string());
    if !exclusions.filter.is_empty() {
        out.push_str(
            "<p class=\"filtered\">These figures count every file of the cycle; the report \
             below and the downloads leave out the files the filter excludes.</p>\n",
        );
    }
    exclude_form(out, &exclusions.filter, &[("from", &from), ("to", &to)]);
    let q = format!("from={from}&amp;to={to}");
    // The exports take the filter too; the summary counts every file.
    let mut qx = q.clone();
    if !exclusions.filter.is_empty() {
        qx.push_str("&amp;exclude=");
        escape(&mut qx, &query_value(&exclusions.filter.texts().join(",")));
    }
    let _ = writeln!(
        out,
        "<p class=\"downloads\">Download: \
         <a href=\"/api/v1/services/{s}/cycle/profile?format=go&amp;{qx}\">coverprofile</a> · \
         <a href=\"/api/v1/services/{s}/cycle/profile?format=lcov&amp;{qx}\">LCOV</a> · \
         <a href=\"/api/v1/services/{s}/cycle/profile?format=json&amp;{qx}\">JSON</a> · \
         <a href=\"/api/v1/services/{s}/cycle?{q}\">summary</a></p>",
        s = super::page::segment(&name),
    );
    let header = Header {
        service: &name,
        label: Some(&title),
        notes: &notes,
    };
    html::body(out, &cov, &header, &Options::default(), Sources::None);
    Ok(page.finish())
}
