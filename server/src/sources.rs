//! Builds and their sources, uploaded by `livecov build --upload-sources` so that the
//! dashboard can show each file's source annotated with its coverage.
//!
//! A build's metadata is content-addressed (`PUT /api/v1/builds/{build}` checks that it hashes
//! to the id), and a source is stored only if cutting it into blocks gives exactly the blocks
//! and function hashes the build's metadata lists for that file: the page can then never
//! annotate a source with blocks from another version of it. Stored sources never change.

use report::gzip::{gunzip, gzip};

use crate::meta::{Build, MetaError};
use crate::store::StoreError;
use crate::{App, BuildError};
pub use report::types::{SourceFile, SourceUpload, Uploaded};

/// Why an upload was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    /// The upload is not what it should be, and why.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    TooLarge(String),
    #[error(
        "build {0} is unknown: PUT its metadata to /api/v1/builds/{0} first \
         (livecov build --upload-sources does both)"
    )]
    UnknownBuild(String),
    /// The store holds something it never wrote.
    #[error("stored metadata of build {build}")]
    StoredMeta {
        build: String,
        #[source]
        source: MetaError,
    },
    #[error("stored source of {name}: {message}")]
    StoredSource { name: String, message: String },
    /// The check running off the async threads did not finish.
    #[error("checking an upload: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores a build's metadata, exactly as its agent serves it at `/livecov/v1/meta` (gzip
/// JSON), once it is checked against the build id. Answers what the server holds of the build
/// and whether the metadata is new.
pub async fn put_build(
    app: &App,
    build: String,
    gz: Vec<u8>,
) -> Result<(Uploaded, bool), SourcesError> {
    let gz: std::sync::Arc<[u8]> = gz.into();
    let (parsed, bin) = Build::parse_to_store(gz.clone(), &build, app.config.max_meta_bytes)
        .await
        .map_err(|e| SourcesError::Invalid(format!("metadata of build {build}: {e}")))?;
    let new = app.store.insert_build(&parsed, &gz, &bin).await?;
    let sources = app
        .store
        .source_files(std::slice::from_ref(&build))
        .await?
        .len();
    let uploaded = Uploaded {
        build,
        files: parsed.meta.files.len(),
        sources,
        stored: 0,
    };
    Ok((uploaded, new))
}

/// Stores sources of files of a stored build, a gzip [`SourceUpload`]. All are checked before
/// any is stored; one that does not match the build rejects the upload.
pub async fn put_sources(
    app: &App,
    build: String,
    body: Vec<u8>,
) -> Result<Uploaded, SourcesError> {
    // The stored build, as every other request loads it (and keeps it in memory).
    let meta = match app.build(&build, &[]).await {
        Ok(meta) => meta,
        Err(BuildError::Unreachable { .. }) => return Err(SourcesError::UnknownBuild(build)),
        Err(BuildError::Stored { source, .. }) => {
            return Err(SourcesError::StoredMeta { build, source });
        }
        Err(BuildError::Store(e)) => return Err(e.into()),
    };
    let (total, files) = tokio::task::spawn_blocking(move || -> Result<_, SourcesError> {
        let upload = decode(&body)?;
        let files = check(&meta, upload)?;
        Ok((meta.meta.files.len(), files))
    })
    .await??;
    let stored = app.store.insert_sources(&build, &files).await?;
    let sources = app
        .store
        .source_files(std::slice::from_ref(&build))
        .await?
        .len();
    Ok(Uploaded {
        build,
        files: total,
        sources,
        stored,
    })
}

/// The most an upload may be, compressed.
pub const MAX_UPLOAD: usize = 64 << 20;
/// The most an upload of sources may be, uncompressed.
pub(crate) const MAX_SOURCES_JSON: u64 = 512 << 20;

/// A body of `PUT /api/v1/builds/{build}/sources`: gzip JSON, bounded when inflated.
pub fn decode(body: &[u8]) -> Result<SourceUpload, SourcesError> {
    let json = gunzip(body, MAX_SOURCES_JSON)
        .map_err(|e| SourcesError::Invalid(format!("sources: not gzip-compressed JSON: {e}")))?;
    if json.len() as u64 > MAX_SOURCES_JSON {
        return Err(SourcesError::TooLarge(format!(
            "sources: more than {MAX_SOURCES_JSON} bytes uncompressed"
        )));
    }
    serde_json::from_slice(&json).map_err(|e| SourcesError::Invalid(format!("sources: {e}")))
}

/// Checks every uploaded file against the build: it must be one of the build's files, once,
/// and cut into the same blocks and functions. Answers (file index, gzip source) per file.
pub fn check(build: &Build, upload: SourceUpload) -> Result<Vec<(usize, Vec<u8>)>, SourcesError> {
    let mut out: Vec<(usize, Vec<u8>)> = Vec::with_capacity(upload.files.len());
    let mut seen = std::collections::HashSet::new();
    for f in upload.files {
        let Some(index) = build.meta.files.iter().position(|m| m.name == f.name) else {
            return Err(SourcesError::Invalid(format!(
                "{:?} is not a file of build {}",
                f.name, build.id
            )));
        };
        if !seen.insert(index) {
            return Err(SourcesError::Invalid(format!(
                "{:?} is uploaded twice",
                f.name
            )));
        }
        let want = &build.meta.files[index];
        // The build's blocks were cut by the rules of the Go that built it, whichever that was.
        let cut = instrumenter::cut_from(want, f.source.as_bytes()).map_err(|e| {
            SourcesError::Invalid(format!("{}: the source does not parse: {e}", f.name))
        })?;
        if cut.is_none() {
            return Err(SourcesError::Invalid(format!(
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
pub async fn text(
    app: &App,
    builds: &[String],
    name: &str,
) -> Result<Option<String>, SourcesError> {
    for build in builds {
        if let Some(gz) = app.store.source(build, name).await? {
            let text = gunzip(&gz, u64::MAX)
                .map_err(|e| e.to_string())
                .and_then(|bytes| String::from_utf8(bytes).map_err(|e| e.to_string()))
                .map_err(|message| SourcesError::StoredSource {
                    name: name.to_string(),
                    message,
                })?;
            return Ok(Some(text));
        }
    }
    Ok(None)
}
