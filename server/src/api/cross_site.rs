//! Requests a browser can forge from another site: a page anywhere can make a visitor's
//! browser send a form POST (or a `fetch` without credentials) to the server, and with no
//! admin token configured (the default) nothing else would stop it from taking a snapshot,
//! ending a round or registering a fake instance. Browsers say where such a request comes from
//! (`Origin`, `Sec-Fetch-Site`); agents, the CLI and `curl` send neither, so refusing those
//! that come from elsewhere costs them nothing.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Refuses a request that changes something (any method but GET, HEAD and OPTIONS) when its
/// browser says it comes from another origin.
pub async fn refuse(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && let Some(why) = cross_site(req.headers()) {
        return ApiError::Forbidden(format!(
            "cross-site request refused ({why}): a page of another site cannot change this \
             server; use the dashboard, the livecov command or curl"
        ))
        .into_response();
    }
    next.run(req).await
}

/// Why the request comes from another site, if it does.
fn cross_site(headers: &HeaderMap) -> Option<String> {
    let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site")
        && site != "same-origin"
        && site != "none"
    {
        return Some(format!("Sec-Fetch-Site: {site}"));
    }
    let origin = headers.get(header::ORIGIN)?;
    let Ok(origin) = origin.to_str() else {
        return Some("an Origin that is not text".into());
    };
    // `Origin: scheme://host[:port]` against the Host the request was sent to.
    let host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    match get("host") {
        Some(h) if h.eq_ignore_ascii_case(host) => None,
        _ => Some(format!("Origin: {origin}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_other_origins_are_refused() {
        assert_eq!(cross_site(&headers(&[("host", "lc:7777")])), None);
        assert_eq!(
            cross_site(&headers(&[
                ("host", "lc:7777"),
                ("origin", "http://lc:7777")
            ])),
            None
        );
        assert_eq!(
            cross_site(&headers(&[
                ("host", "lc:7777"),
                ("sec-fetch-site", "same-origin")
            ])),
            None
        );
        for bad in [
            headers(&[("host", "lc:7777"), ("origin", "http://evil.example")]),
            headers(&[("host", "lc:7777"), ("origin", "null")]),
            headers(&[("host", "lc:7777"), ("origin", "http://lc:7778")]),
            headers(&[("host", "lc:7777"), ("sec-fetch-site", "cross-site")]),
            headers(&[("host", "lc:7777"), ("sec-fetch-site", "same-site")]),
            headers(&[("origin", "http://lc:7777")]),
        ] {
            assert!(cross_site(&bad).is_some(), "{bad:?}");
        }
    }
}
