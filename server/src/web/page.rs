//! The frame every page shares, the errors pages answer, and small writers.

use std::fmt::Write as _;

use axum::response::{Html, IntoResponse, Response};

use crate::error::ApiError;
pub(crate) use report::html::escape;
use report::html::{self, Stmts};

/// A page being written: `new` opens the frame with a title and a trail of links back to the
/// services, `finish` closes it.
pub struct Page {
    pub out: String,
}

impl Page {
    /// A page titled `title`, under the crumbs `trail` (text and address; the last one is the
    /// page itself and is not linked).
    pub fn new(title: &str, trail: &[(&str, Option<String>)], capacity: usize) -> Page {
        let mut out = String::with_capacity(capacity + 2048);
        out.push_str(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
        );
        escape(&mut out, title);
        out.push_str(
            " · livecov</title>\n<link rel=\"stylesheet\" href=\"/assets/livecov.css\">\n\
             <link rel=\"icon\" href=\"/assets/livecov.svg\" type=\"image/svg+xml\">\n\
             </head>\n<body>\n<nav class=\"trail\"><a href=\"/\">livecov</a>",
        );
        for (text, href) in trail {
            out.push_str(" / ");
            match href {
                Some(h) => {
                    out.push_str("<a href=\"");
                    escape(&mut out, h);
                    out.push_str("\">");
                    escape(&mut out, text);
                    out.push_str("</a>");
                }
                None => escape(&mut out, text),
            }
        }
        out.push_str("</nav>\n<h1>");
        escape(&mut out, title);
        out.push_str("</h1>\n");
        Page { out }
    }

    pub fn finish(mut self) -> Html<String> {
        let _ = write!(
            self.out,
            "<footer>livecov {}</footer>\n<script src=\"/assets/livecov.js\"></script>\n\
             </body>\n</html>\n",
            env!("CARGO_PKG_VERSION")
        );
        Html(self.out)
    }

    /// Text, escaped.
    pub fn text(&mut self, s: &str) -> &mut Page {
        escape(&mut self.out, s);
        self
    }

    /// Markup, as is.
    pub fn raw(&mut self, s: &str) -> &mut Page {
        self.out.push_str(s);
        self
    }
}

/// A path segment, percent-encoded: service names may hold any character but controls.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A query value, percent-encoded.
pub fn query_value(s: &str) -> String {
    segment(s)
}

/// The dashboard address of a service.
pub fn service_href(name: &str) -> String {
    format!("/services/{}", segment(name))
}

/// A time for people: `2026-11-25 23:08:49 UTC` in a `<time>` element that carries the exact
/// RFC 3339 time (shown on hover).
pub fn time(ms: i64) -> String {
    let exact = report::rfc3339(ms);
    let shown = format!(
        "{} UTC",
        exact.get(..19).unwrap_or(&exact).replacen('T', " ", 1)
    );
    format!("<time datetime=\"{exact}\" title=\"{exact}\">{shown}</time>")
}

/// `covered` of `total` as a percentage with one decimal, rounded down; `n/a` for none (as
/// the reports write it).
pub fn percent(covered: i64, total: i64) -> String {
    let mut out = String::new();
    html::percent(&mut out, Stmts::new(covered, total));
    out
}

/// A table cell with a bar and the percentage, sortable by `data-v` (tenths; -1 for none), as
/// the reports write it.
pub fn coverage_cell(out: &mut String, covered: i64, total: i64) {
    html::cell(out, Stmts::new(covered, total));
}

/// A number cell, sortable.
pub fn num_cell(out: &mut String, n: i64) {
    let _ = write!(out, "<td data-v=\"{n}\">{n}</td>");
}

/// A page's error: the API's, as a page with the same status.
#[derive(Debug)]
pub struct WebError(pub ApiError);

impl<E: Into<ApiError>> From<E> for WebError {
    fn from(e: E) -> WebError {
        WebError(e.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self.0, "page failed");
        }
        let title = status.canonical_reason().unwrap_or("Error");
        let mut page = Page::new(title, &[], 0);
        page.raw("<p class=\"error\">")
            .text(&self.0.to_string())
            .raw("</p>\n");
        (status, page.finish()).into_response()
    }
}

/// A path or query value that does not parse: 400, as a page.
pub fn bad_request(what: impl Into<String>) -> WebError {
    WebError(ApiError::BadRequest(what.into()))
}

/// Ids in paths and queries are positive integers.
pub fn parse_id(what: &str, s: &str) -> Result<i64, WebError> {
    s.parse::<i64>()
        .ok()
        .filter(|&id| id > 0)
        .ok_or_else(|| bad_request(format!("{what} {s:?}: want a positive integer")))
}

/// The form that leaves files out of a page's report (`exclude=`), keeping the rest of the
/// page's query (`hidden`: name and value), with a link back to every file.
pub fn exclude_form(out: &mut String, filter: &report::Filter, hidden: &[(&str, &str)]) {
    out.push_str(
        "<form class=\"actions exclude\" method=\"get\">\n<label>Exclude files \
         <input id=\"exclude\" name=\"exclude\" maxlength=\"2048\" size=\"50\" \
         placeholder=\"example.com/m/internal/mocks/..., **/*_mock.go\" value=\"",
    );
    escape(out, &filter.texts().join(","));
    out.push_str("\"></label>\n");
    let mut all = String::from("?");
    for (i, (name, value)) in hidden.iter().enumerate() {
        out.push_str("<input type=\"hidden\" name=\"");
        escape(out, name);
        out.push_str("\" value=\"");
        escape(out, value);
        out.push_str("\">\n");
        if i > 0 {
            all.push_str("&amp;");
        }
        all.push_str(&query_value(name));
        all.push('=');
        all.push_str(&query_value(value));
    }
    out.push_str("<button type=\"submit\">Filter</button>\n");
    if !filter.is_empty() {
        out.push_str("<a href=\"");
        out.push_str(&all);
        out.push_str("\">All files</a>\n");
    }
    out.push_str("</form>\n");
}
