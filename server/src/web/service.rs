//! The services page (`/`) and a service's page: its instances, its snapshot history with
//! the trend of its coverage, the snapshot and reset buttons, and the form that compares two
//! snapshots.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::page::{
    Page, WebError, coverage_cell, escape, num_cell, parse_id, percent, query_value, segment,
    service_href, time,
};
use crate::App;
use crate::registry;
use crate::store::SnapshotRow;
use report::rfc3339;

/// How many snapshots a service page lists and charts.
const HISTORY: i64 = 200;

/// How many services the front page lists at once.
const SERVICES_PER_PAGE: i64 = 200;

#[derive(Deserialize)]
pub struct IndexParams {
    /// List the services whose names sort after this one (the next page).
    after: Option<String>,
}

pub async fn index(
    State(app): State<Arc<App>>,
    Query(params): Query<IndexParams>,
) -> Result<Html<String>, WebError> {
    let (services, next) =
        registry::services_page(&app, params.after.as_deref(), Some(SERVICES_PER_PAGE)).await?;
    let mut page = Page::new("Services", &[], services.len() * 400);
    if services.is_empty() && params.after.is_some() {
        page.raw("<p class=\"empty\">No more services. <a href=\"/\">First services</a></p>\n");
        return Ok(page.finish());
    }
    if services.is_empty() {
        page.raw(
            "<p class=\"empty\">No service has registered yet. Build a service with \
             <code>livecov build</code> and run it with <code>LIVECOV_SERVER</code> pointing \
             here; it shows up as soon as it starts.</p>\n",
        );
        refusals(&mut page.out, &app.refusals.recent());
        return Ok(page.finish());
    }
    page.raw(
        "<table class=\"services\">\n<thead><tr><th class=\"l\">Service</th>\
         <th data-k=\"n\">Live instances</th><th data-k=\"n\">Instances</th>\
         <th class=\"l\">Builds</th><th class=\"l\">Latest snapshot</th>\
         <th data-k=\"n\">Coverage</th></tr></thead>\n<tbody>\n",
    );
    for s in &services {
        let out = &mut page.out;
        out.push_str("<tr><td class=\"l\"><a href=\"");
        escape(out, &service_href(&s.name));
        out.push_str("\">");
        escape(out, &s.name);
        out.push_str("</a></td>");
        num_cell(out, s.live_instances);
        num_cell(out, s.instances);
        out.push_str("<td class=\"l\">");
        for (i, b) in s.builds.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            build_id(out, b);
        }
        out.push_str("</td>");
        match &s.latest {
            Some(l) => {
                let _ = write!(
                    out,
                    "<td class=\"l\"><a href=\"/snapshots/{}\">#{}</a> {}</td>",
                    l.id,
                    l.id,
                    time(l.taken_at)
                );
                coverage_cell(out, l.totals.stmts_covered, l.totals.stmts);
            }
            None => out.push_str("<td class=\"l\">none yet</td><td data-v=\"-1\">n/a</td>"),
        }
        out.push_str("</tr>\n");
    }
    page.raw("</tbody>\n</table>\n");
    if params.after.is_some() {
        page.raw("<a class=\"newer\" href=\"/\">First services</a> ");
    }
    if let Some(next) = next {
        let out = &mut page.out;
        out.push_str("<a class=\"older\" href=\"/?after=");
        escape(out, &query_value(&next));
        out.push_str("\">More services</a>\n");
    }
    refusals(&mut page.out, &app.refusals.recent());
    Ok(page.finish())
}

/// The agents' requests this server refused lately (since it started), newest first: a wrong
/// token or a bad registration shows here rather than nowhere.
fn refusals(out: &mut String, refusals: &[registry::Refusal]) {
    if refusals.is_empty() {
        return;
    }
    out.push_str(
        "<h2>Refused agents</h2>\n<p>Requests of agents this server refused since it started \
         (the last 50): check the agents' <code>LIVECOV_TOKEN</code> against the server's \
         <code>--agent-token</code>.</p>\n<table class=\"refusals\">\n<thead><tr>\
         <th class=\"l\">When</th><th class=\"l\">From</th><th class=\"l\">Request</th>\
         <th class=\"l\">Why</th></tr></thead>\n<tbody>\n",
    );
    for r in refusals {
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td class=\"l\">",
            time(r.at)
        );
        escape(
            out,
            &r.peer.map_or_else(|| "?".to_string(), |p| p.to_string()),
        );
        out.push_str("</td><td class=\"l\">");
        escape(out, &r.what);
        out.push_str("</td><td class=\"l\">");
        escape(out, &r.why);
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

#[derive(Deserialize)]
pub struct PageParams {
    /// Show the snapshots older than this one (the history's next page).
    before: Option<String>,
    /// Show the instances with these labels, and the snapshots taken of them.
    selector: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Html<String>, WebError> {
    let before = match &params.before {
        Some(b) => Some(parse_id("snapshot", b)?),
        None => None,
    };
    let selector = match params.selector.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            s.parse::<crate::types::Selector>()
                .map_err(super::page::bad_request)?,
        ),
        None => None,
    };
    let (service, mut instances) = registry::service(&app, &name).await?;
    let text = selector.as_ref().map(|s| s.text());
    let snapshots = app
        .store
        .snapshots(&name, HISTORY, before, text.as_deref())
        .await?;
    if let Some(sel) = &selector {
        instances.retain(|i| sel.matches(&i.labels));
    }
    let sessions = app.store.sessions(&name).await?;

    let mut page = Page::new(&name, &[(&name, None)], snapshots.len() * 500);
    let out = &mut page.out;
    let _ = write!(
        out,
        "<dl class=\"meta\">\n<dt>First seen</dt><dd>{}</dd>\n<dt>Instances</dt>\
         <dd>{} live of {}</dd>\n</dl>\n",
        time(service.created_at),
        service.live_instances,
        service.instances
    );
    actions(out, &name, text.as_deref());
    if let Some(t) = &text {
        out.push_str("<p class=\"selector\">Only the instances labelled <code>");
        escape(out, t);
        out.push_str("</code>, and the snapshots taken of them. <a href=\"");
        escape(out, &service_href(&name));
        out.push_str("\">All</a></p>\n");
    }

    out.push_str("<h2>Coverage over time</h2>\n");
    if snapshots.is_empty() && before.is_some() {
        out.push_str("<p class=\"empty\">No older snapshot.</p>\n");
    } else if snapshots.is_empty() {
        out.push_str("<p class=\"empty\">No snapshot yet: take one with the button above.</p>\n");
    } else {
        // The revision each build was made from, where its instances said (vcs.revision).
        let revisions: std::collections::BTreeMap<&str, &str> = instances
            .iter()
            .filter_map(|i| Some((i.build.as_str(), i.labels.get("vcs.revision")?.as_str())))
            .collect();
        trend(out, &snapshots, &revisions);
        compare(out, &snapshots);
        cycle(out, &name, &snapshots);
        history(out, &snapshots);
    }
    // The history in pages of HISTORY snapshots, newest first.
    if before.is_some() {
        out.push_str("<a class=\"newer\" href=\"");
        escape(out, &service_href(&name));
        out.push_str("\">Newest snapshots</a> ");
    }
    if let Some(last) = snapshots
        .last()
        .filter(|_| snapshots.len() as i64 == HISTORY)
    {
        out.push_str("<a class=\"older\" href=\"");
        escape(out, &service_href(&name));
        let _ = write!(out, "?before={}", last.id);
        if let Some(t) = &text {
            out.push_str("&amp;selector=");
            escape(out, &query_value(t));
        }
        out.push_str("\">Older snapshots</a>");
    }

    self::sessions(out, &name, &sessions);

    out.push_str("<h2>Instances</h2>\n");
    out.push_str(
        "<table class=\"instances\">\n<thead><tr><th class=\"l\">Instance</th>\
         <th class=\"l\">State</th><th class=\"l\">Build</th><th class=\"l\">Mode</th>\
         <th class=\"l\">Address</th><th class=\"l\">Host</th><th data-k=\"n\">PID</th>\
         <th class=\"l\">Go</th><th class=\"l\">Registered</th><th class=\"l\">Last seen</th>\
         <th class=\"l\">Labels</th></tr></thead>\n<tbody>\n",
    );
    for i in &instances {
        out.push_str("<tr><td class=\"l\"><code>");
        escape(out, &i.id);
        let state = i.state();
        let _ = write!(
            out,
            "</code></td><td class=\"l state-{state}\">{state}</td><td class=\"l\">"
        );
        build_id(out, &i.build);
        out.push_str("</td><td class=\"l\">");
        escape(out, &i.mode);
        out.push_str("</td><td class=\"l\">");
        escape(out, &i.address);
        if app.agents.channels.reads_over(&i.id, i.channel_seen) {
            // The server cannot connect there: it reads the agent over the agent's connection.
            out.push_str(" <span class=\"channel\" title=\"read over the connection its agent keeps to the server\">via its connection</span>");
        }
        out.push_str("</td><td class=\"l\">");
        escape(out, &i.hostname);
        out.push_str("</td>");
        num_cell(out, i.pid);
        out.push_str("<td class=\"l\">");
        escape(out, &i.go_version);
        let _ = write!(
            out,
            "</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l labels\">",
            time(i.registered_at),
            time(i.last_seen)
        );
        for (k, v) in &i.labels {
            // Each label links to the page of the instances that have it.
            let pair = format!("{k}={v}");
            out.push_str("<a class=\"label\" href=\"");
            escape(out, &service_href(&name));
            out.push_str("?selector=");
            escape(out, &query_value(&pair));
            out.push_str("\">");
            escape(out, &pair);
            out.push_str("</a> ");
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    Ok(page.finish())
}

/// A build id, shortened, with the whole as its title.
fn build_id(out: &mut String, id: &str) {
    out.push_str("<code title=\"");
    escape(out, id);
    out.push_str("\">");
    escape(out, id.get(..12).unwrap_or(id));
    out.push_str("</code>");
}

/// The snapshot and reset buttons. They call the API from the browser (`livecov.js`) with
/// the admin token typed in here, which the browser keeps for the tab's session only.
fn actions(out: &mut String, service: &str, selector: Option<&str>) {
    out.push_str("<form id=\"actions\" class=\"actions\" data-api=\"/api/v1/services/");
    escape(out, &segment(service));
    out.push_str("/snapshots\" data-service=\"");
    escape(out, service);
    out.push_str(
        "\">\n<label>Label <input id=\"label\" name=\"label\" maxlength=\"1024\" \
         placeholder=\"optional, e.g. round 2\"></label>\n\
         <label>Instances <input id=\"selector\" name=\"selector\" maxlength=\"2048\" \
         placeholder=\"all, or labels: env=staging\" value=\"",
    );
    escape(out, selector.unwrap_or(""));
    out.push_str(
        "\"></label>\n\
         <label>Admin token <input id=\"token\" name=\"token\" type=\"password\" \
         autocomplete=\"off\" placeholder=\"if the server has one\"></label>\n\
         <button type=\"button\" id=\"take-snapshot\">Take snapshot</button>\n\
         <button type=\"button\" id=\"snapshot-reset\" class=\"danger\">Snapshot and reset\
         </button>\n<output id=\"action-status\" role=\"status\"></output>\n</form>\n",
    );
}

/// The coverage of the snapshots (newest first) as a line over time, oldest on the left: an
/// inline SVG, so the chart needs no script. Each point links to its snapshot; reset
/// snapshots are drawn hollow, since the counters start again after them; a dashed line
/// marks where the build changes.
fn trend(
    out: &mut String,
    snapshots: &[SnapshotRow],
    revisions: &std::collections::BTreeMap<&str, &str>,
) {
    const W: f64 = 800.0;
    const H: f64 = 200.0;
    const LEFT: f64 = 40.0;
    const RIGHT: f64 = 10.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 20.0;
    let points: Vec<&SnapshotRow> = snapshots.iter().rev().collect();
    let n = points.len();
    let x = |i: usize| {
        if n == 1 {
            LEFT + (W - LEFT - RIGHT) / 2.0
        } else {
            LEFT + (W - LEFT - RIGHT) * i as f64 / (n - 1) as f64
        }
    };
    let ratio = |s: &SnapshotRow| {
        if s.totals.stmts > 0 {
            s.totals.stmts_covered as f64 / s.totals.stmts as f64
        } else {
            0.0
        }
    };
    let y = |r: f64| TOP + (H - TOP - BOTTOM) * (1.0 - r);
    let _ = writeln!(
        out,
        "<svg class=\"trend\" id=\"trend\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-label=\"statement coverage of the last {n} snapshots\">"
    );
    for pct in [0, 25, 50, 75, 100] {
        let yy = y(f64::from(pct) / 100.0);
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"{:.1}\">{pct}%</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0
        );
    }
    // Where the build changes, a marker with the new build's id: coverage before and after
    // is of different code.
    for (i, pair) in points.windows(2).enumerate() {
        let (Some(prev), Some(next)) = (&pair[0].build, &pair[1].build) else {
            continue;
        };
        if prev != next {
            let xx = (x(i) + x(i + 1)) / 2.0;
            let _ = write!(
                out,
                "<line class=\"build\" x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{}\">\
                 <title>build ",
                H - BOTTOM
            );
            escape(out, next);
            let revision = revisions.get(next.as_str()).copied();
            if let Some(r) = revision {
                out.push_str(", commit ");
                escape(out, r);
            }
            let _ = writeln!(
                out,
                " from #{}</title></line><text class=\"build-label\" x=\"{:.1}\" y=\"{}\">",
                pair[1].id,
                xx + 2.0,
                TOP + 8.0
            );
            // The commit when known, else the build id.
            let shown = revision.unwrap_or(next);
            escape(out, shown.get(..7).unwrap_or(shown));
            out.push_str("</text>\n");
        }
    }
    out.push_str("<polyline class=\"line\" points=\"");
    for (i, s) in points.iter().enumerate() {
        let _ = write!(out, "{:.1},{:.1} ", x(i), y(ratio(s)));
    }
    out.push_str("\"/>\n");
    for (i, s) in points.iter().enumerate() {
        let class = if s.reset { "point reset" } else { "point" };
        let _ = write!(
            out,
            "<a href=\"/snapshots/{id}\"><circle class=\"{class}\" cx=\"{:.1}\" cy=\"{:.1}\" \
             r=\"4\"><title>#{id} ",
            x(i),
            y(ratio(s)),
            id = s.id
        );
        if let Some(l) = &s.label {
            escape(out, l);
            out.push(' ');
        }
        let _ = write!(
            out,
            "{}: {}",
            rfc3339(s.taken_at),
            percent(s.totals.stmts_covered, s.totals.stmts)
        );
        if let Some(b) = &s.build {
            out.push_str(", build ");
            escape(out, b.get(..12).unwrap_or(b));
            if s.builds > 1 {
                let _ = write!(out, " and {} older", s.builds - 1);
            }
        }
        out.push_str("</title></circle></a>\n");
    }
    out.push_str("</svg>\n");
}

/// Two lists of the snapshots and a button that opens their diff; the newest two are chosen.
fn compare(out: &mut String, snapshots: &[SnapshotRow]) {
    if snapshots.len() < 2 {
        return;
    }
    out.push_str("<form class=\"compare\" action=\"/diff\" method=\"get\">Compare ");
    for (name, chosen) in [("a", 1), ("b", 0)] {
        let _ = write!(out, "<select name=\"{name}\" id=\"diff-{name}\">");
        for (i, s) in snapshots.iter().enumerate() {
            let selected = if i == chosen { " selected" } else { "" };
            let _ = write!(out, "<option value=\"{}\"{selected}>#{}", s.id, s.id);
            if let Some(l) = &s.label {
                out.push(' ');
                escape(out, l);
            }
            out.push_str("</option>");
        }
        out.push_str("</select>");
        if name == "a" {
            out.push_str(" with ");
        }
    }
    out.push_str(" <button type=\"submit\" id=\"compare\">Compare</button></form>\n");
}

/// A list of the snapshots and a button that opens the cycle from the chosen one to the
/// newest; the oldest listed is chosen.
fn cycle(out: &mut String, service: &str, snapshots: &[SnapshotRow]) {
    out.push_str("<form class=\"compare\" action=\"");
    escape(out, &service_href(service));
    out.push_str(
        "/cycle\" method=\"get\">Coverage of the cycle since \
         <select name=\"from\" id=\"cycle-from\">",
    );
    let oldest = snapshots.len() - 1;
    for (i, s) in snapshots.iter().enumerate() {
        let selected = if i == oldest { " selected" } else { "" };
        let _ = write!(out, "<option value=\"{}\"{selected}>#{}", s.id, s.id);
        if let Some(l) = &s.label {
            out.push(' ');
            escape(out, l);
        }
        out.push_str("</option>");
    }
    out.push_str(
        "</select>, across builds <button type=\"submit\" id=\"cycle\">Show</button></form>\n",
    );
}

/// The service's sessions, newest first, with a form to start one and a button to stop each
/// open one (`livecov.js` calls the API with the admin token typed above).
fn sessions(out: &mut String, service: &str, sessions: &[crate::store::SessionRow]) {
    out.push_str(
        "<h2>Sessions</h2>\n<form id=\"sessions\" class=\"actions\" data-api=\"/api/v1/services/",
    );
    escape(out, &segment(service));
    out.push_str(
        "/sessions\">\n<label>Name <input id=\"session-name\" name=\"name\" maxlength=\"256\" \
         placeholder=\"e.g. checkout flow\"></label>\n\
         <button type=\"button\" id=\"start-session\">Start session</button>\n\
         <output id=\"session-status\" role=\"status\"></output>\n</form>\n",
    );
    if sessions.is_empty() {
        out.push_str(
            "<p class=\"empty\">No session yet: a session measures what ran while it was \
             open, beside the round and other sessions.</p>\n",
        );
        return;
    }
    out.push_str(
        "<table class=\"sessions\">\n<thead><tr><th class=\"l\">Session</th>\
         <th class=\"l\">State</th><th class=\"l\">Started</th><th class=\"l\">Stopped</th>\
         <th class=\"l\">Snapshot</th></tr></thead>\n<tbody>\n",
    );
    for s in sessions {
        out.push_str("<tr><td class=\"l\">");
        escape(out, &s.name);
        let state = s.state();
        let _ = write!(
            out,
            "</td><td class=\"l\">{state}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>\
             <td class=\"l\">",
            time(s.started_at),
            s.stopped_at.map(time).unwrap_or_default()
        );
        match s.snapshot_id {
            Some(id) => {
                let _ = write!(out, "<a href=\"/snapshots/{id}\">#{id}</a>");
            }
            None if state == "open" => {
                out.push_str("<button type=\"button\" class=\"stop-session\" data-name=\"");
                escape(out, &s.name);
                out.push_str("\">Stop</button>");
            }
            None => {}
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// The snapshots, newest first.
fn history(out: &mut String, snapshots: &[SnapshotRow]) {
    out.push_str(
        "<table class=\"snapshots\">\n<thead><tr><th data-k=\"n\">Snapshot</th>\
         <th class=\"l\">Label</th><th class=\"l\">Taken at</th><th class=\"l\">Reset</th>\
         <th class=\"l\">Build</th><th data-k=\"n\">Instances</th><th data-k=\"n\">Failed</th>\
         <th data-k=\"n\">Statements</th><th data-k=\"n\">Covered</th>\
         <th data-k=\"n\">Coverage</th><th data-k=\"n\">Since start</th></tr></thead>\n\
         <tbody>\n",
    );
    for s in snapshots {
        let _ = write!(
            out,
            "<tr><td data-v=\"{id}\"><a href=\"/snapshots/{id}\">#{id}</a></td><td class=\"l\">",
            id = s.id
        );
        if let Some(session) = &s.window.session {
            out.push_str("session ");
            escape(out, session);
            out.push_str(if s.label.is_some() { ": " } else { "" });
        }
        if let Some(sel) = &s.selector {
            out.push_str("<code class=\"selector\">");
            escape(out, sel);
            out.push_str("</code> ");
        }
        escape(out, s.label.as_deref().unwrap_or(""));
        let _ = write!(
            out,
            "</td><td class=\"l\">{}</td><td class=\"l\">{}</td>",
            time(s.taken_at),
            if s.reset { "reset" } else { "" }
        );
        out.push_str("<td class=\"l\">");
        if let Some(b) = &s.build {
            build_id(out, b);
        }
        if s.builds > 1 {
            let _ = write!(out, " +{} older", s.builds - 1);
        }
        out.push_str("</td>");
        num_cell(out, s.instances_ok);
        num_cell(out, s.instances_failed);
        num_cell(out, s.totals.stmts);
        num_cell(out, s.totals.stmts_covered);
        coverage_cell(out, s.totals.stmts_covered, s.totals.stmts);
        coverage_cell(out, s.deploy.stmts_covered, s.deploy.stmts);
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}
