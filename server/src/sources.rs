//! Builds and their sources, uploaded by `livecov build --upload-sources` so that the
//! dashboard can show each file's source annotated with its coverage.
//!
//! A build's metadata is content-addressed (`PUT /api/v1/builds/{build}` checks that it hashes
//! to the id), and a source is stored only if cutting it into blocks gives exactly the blocks
//! and function hashes the build's metadata lists for that file: the page can then never
//! annotate a source with blocks from another version of it. Stored sources never change.

use report::gzip::{gunzip, gzip};

use crate::App;
use crate::error::ApiError;
use crate::meta::Build;
pub use report::types::{SourceFile, SourceUpload, Uploaded};

/// The most an upload may be, compressed.
pub const MAX_UPLOAD: usize = 64 << 20;
/// The most an upload of sources may be, uncompressed.
pub(crate) const MAX_SOURCES_JSON: u64 = 512 << 20;

pub(crate) fn decode(body: &[u8]) -> Result<SourceUpload, ApiError> {
    let json = gunzip(body, MAX_SOURCES_JSON)
        .map_err(|e| ApiError::BadRequest(format!("sources: not gzip-compressed JSON: {e}")))?;
    if json.len() as u64 > MAX_SOURCES_JSON {
        return Err(ApiError::PayloadTooLarge(format!(
            "sources: more than {MAX_SOURCES_JSON} bytes uncompressed"
        )));
    }
    serde_json::from_slice(&json).map_err(|e| ApiError::BadRequest(format!("sources: {e}")))
}

/// Checks every uploaded file against the build: it must be one of the build's files, once,
/// and cut into the same blocks and functions. Answers (file index, gzip source) per file.
pub fn check(build: &Build, upload: SourceUpload) -> Result<Vec<(usize, Vec<u8>)>, ApiError> {
    let mut out: Vec<(usize, Vec<u8>)> = Vec::with_capacity(upload.files.len());
    let mut seen = std::collections::HashSet::new();
    for f in upload.files {
        let Some(index) = build.meta.files.iter().position(|m| m.name == f.name) else {
            return Err(ApiError::BadRequest(format!(
                "{:?} is not a file of build {}",
                f.name, build.id
            )));
        };
        if !seen.insert(index) {
            return Err(ApiError::BadRequest(format!(
                "{:?} is uploaded twice",
                f.name
            )));
        }
        let want = &build.meta.files[index];
        // The build's blocks were cut by the rules of the Go that built it, whichever that was.
        let cut = instrumenter::cut_from(want, f.source.as_bytes()).map_err(|e| {
            ApiError::BadRequest(format!("{}: the source does not parse: {e}", f.name))
        })?;
        if cut.is_none() {
            return Err(ApiError::BadRequest(format!(
                "{}: the source is not the one build {} was made from (it does not cut into \
                 the build's {} blocks in {} functions under the rules of any Go release)",
                f.name,
                build.id,
                want.blocks.len(),
                want.funcs.len()
            )));
        }
        out.push((index, gzip(f.source.as_bytes())));
    }
    Ok(out)
}

/// The source of file `name` from the first of `builds` that has it stored.
pub async fn text(app: &App, builds: &[String], name: &str) -> Result<Option<String>, ApiError> {
    for build in builds {
        if let Some(gz) = app.store.source(build, name).await? {
            let text = gunzip(&gz, u64::MAX)
                .map_err(|e| e.to_string())
                .and_then(|bytes| String::from_utf8(bytes).map_err(|e| e.to_string()))
                .map_err(|e| ApiError::internal(format!("stored source of {name}: {e}")))?;
            return Ok(Some(text));
        }
    }
    Ok(None)
}
