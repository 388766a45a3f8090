//! JSON answers. Each ends with a newline, as text tools expect of a line: `curl` leaves the
//! shell's prompt on a line of its own, and `jq`, `grep` and friends see a complete line.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A value answered as JSON, newline-terminated.
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = match serde_json::to_vec(&self.0) {
            Ok(body) => body,
            // Only a map with non-string keys or a failing Serialize impl gets here; the
            // API's types have neither.
            Err(e) => {
                tracing::error!(error = %e, "answer not serializable");
                return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        body.push(b'\n');
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    }
}
