//! A build's block metadata, as agents serve it (`GET /livecov/v1/meta`, gzip JSON, see
//! `docs/COUNTERS.md`), checked against its build id, or as the store keeps it beside that
//! (`LCM1`, [`crate::lcm`]).
//!
//! The build id is a hash of the metadata, so the server recomputes it: an agent cannot store
//! metadata under another build's id, and metadata stored once is right for every instance of
//! that build. Metadata read back from the store is not hashed again (hashing a large build's
//! metadata costs more than reading it); its binary form was written from metadata that was.

use std::sync::Arc;

use instrumenter::{Block, BuildMeta, FileMeta, Func, Mode, Pos};
use serde::Deserialize;

use crate::lcm;

/// Metadata parsed or decoded at once (see [`one_at_a_time`]).
static PARSING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// A build's metadata with what the server derives from it.
#[derive(Debug)]
pub struct Build {
    pub id: String,
    pub meta: BuildMeta,
    /// Counters per file, in metadata order: the shape of the build's counters.
    pub shape: Vec<u32>,
    /// Index of each file's first counter in the flat counter array.
    pub offsets: Vec<usize>,
    /// Statements per file.
    pub file_stmts: Vec<u64>,
    /// What the build left uninstrumented, as its metadata says (`"excluded"`): known for
    /// metadata parsed from JSON, `None` for metadata decoded from the store's binary form
    /// (the store keeps it in a column of its own).
    pub excluded: Option<report::types::BuildExcluded>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata is not gzip JSON: {0}")]
    Encoding(String),
    #[error("metadata does not parse: {0}")]
    Json(#[from] serde_json::Error),
    #[error("metadata: {0}")]
    Invalid(String),
    /// The binary form the store keeps (`LCM1`) does not decode.
    #[error(transparent)]
    Binary(#[from] lcm::DecodeError),
}

#[derive(Deserialize)]
struct RawMeta {
    build: String,
    mode: String,
    files: Vec<RawFile>,
    /// Not part of the build id, which hashes the blocks only.
    #[serde(default)]
    excluded: Option<report::types::BuildExcluded>,
}

#[derive(Deserialize)]
struct RawFile {
    name: String,
    funcs: Vec<RawFunc>,
    blocks: Vec<[u32; 6]>,
}

#[derive(Deserialize)]
struct RawFunc {
    name: String,
    hash: String,
}

/// Whether metadata comes from outside (an agent, an upload: its build id is recomputed) or
/// from the store (it was checked before it was stored: hashing a large build's metadata
/// again costs more than parsing it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Outside,
    Stored,
}

impl Build {
    /// A build of metadata `meta` whose id is `id`, with what the server derives from it.
    pub fn new(id: String, meta: BuildMeta) -> Build {
        let shape: Vec<u32> = meta.files.iter().map(|f| f.blocks.len() as u32).collect();
        let mut offsets = Vec::with_capacity(shape.len());
        let mut at = 0usize;
        for &n in &shape {
            offsets.push(at);
            at += n as usize;
        }
        let file_stmts = meta
            .files
            .iter()
            .map(|f| f.blocks.iter().map(|b| u64::from(b.num_stmt)).sum())
            .collect();
        Build {
            id,
            meta,
            shape,
            offsets,
            file_stmts,
            excluded: None,
        }
    }

    /// Parses gzip-compressed metadata and checks that it is the metadata of build `expect`
    /// (for metadata from outside: that it hashes to that id), off the async threads and one
    /// at a time. Metadata of more than `limit` bytes uncompressed is refused as soon as the
    /// decompression passes that size, so a small gzip that inflates to gigabytes (a
    /// decompression bomb) costs at most `limit` bytes of reading.
    pub async fn parse(
        gz: Arc<[u8]>,
        expect: &str,
        source: Source,
        limit: u64,
    ) -> Result<Build, MetaError> {
        let expect = expect.to_string();
        one_at_a_time(move || Build::parse_now(&gz, &expect, source, limit)).await
    }

    /// [`Build::parse`] on the calling thread.
    pub fn parse_now(
        gz: &[u8],
        expect: &str,
        source: Source,
        limit: u64,
    ) -> Result<Build, MetaError> {
        let verify = source == Source::Outside;
        let json = std::io::BufReader::new(Limited {
            inner: flate2::read::GzDecoder::new(gz),
            left: limit,
        });
        let raw: RawMeta = serde_json::from_reader(json).map_err(|e| match e.io_error_kind() {
            Some(std::io::ErrorKind::FileTooLarge) => MetaError::Invalid(format!(
                "more than {limit} bytes uncompressed (the server's --max-metadata-mb)"
            )),
            Some(_) => MetaError::Encoding(e.to_string()),
            None => MetaError::Json(e),
        })?;
        let meta = convert(raw.mode.as_str(), raw.files)?;
        let id = if verify {
            meta.build_id()
        } else {
            raw.build.clone()
        };
        if raw.build != id || id != expect {
            return Err(MetaError::Invalid(format!(
                "metadata hashes to build {id}, it names {} and {expect} was expected",
                raw.build
            )));
        }
        let mut build = Build::new(id, meta);
        build.excluded = raw.excluded;
        Ok(build)
    }

    /// Decodes the binary form the store keeps (`LCM1`, [`crate::lcm`]), which must be the
    /// metadata of build `expect`, off the async threads and one at a time. More than `limit`
    /// bytes, or metadata that would take more than `limit` bytes of memory, are refused
    /// before they are decoded or allocated.
    pub async fn decode(bin: Vec<u8>, expect: &str, limit: u64) -> Result<Build, MetaError> {
        let expect = expect.to_string();
        one_at_a_time(move || Build::decode_now(&bin, &expect, limit)).await
    }

    /// [`Build::decode`] on the calling thread.
    pub fn decode_now(bin: &[u8], expect: &str, limit: u64) -> Result<Build, MetaError> {
        if bin.len() as u64 > limit {
            return Err(MetaError::Invalid(format!(
                "{} bytes of binary metadata, more than {limit} (the server's \
                 --max-metadata-mb)",
                bin.len()
            )));
        }
        let meta = lcm::decode(bin, expect, limit)?;
        Ok(Build::new(expect.to_string(), meta))
    }

    /// [`Build::parse`] of metadata from outside, with its binary form (`LCM1`) for the
    /// store, encoded in the same task.
    pub async fn parse_to_store(
        gz: Arc<[u8]>,
        expect: &str,
        limit: u64,
    ) -> Result<(Build, Vec<u8>), MetaError> {
        let expect = expect.to_string();
        one_at_a_time(move || {
            let b = Build::parse_now(&gz, &expect, Source::Outside, limit)?;
            let bin = lcm::encode(&b.id, &b.meta);
            Ok((b, bin))
        })
        .await
    }

    pub fn mode(&self) -> Mode {
        self.meta.mode
    }

    pub fn num_blocks(&self) -> usize {
        self.offsets.last().map_or(0, |&o| o) + self.shape.last().map_or(0, |&n| n as usize)
    }

    pub fn num_stmts(&self) -> u64 {
        self.file_stmts.iter().sum()
    }

    /// The file and block within it of flat counter `index`.
    pub fn locate(&self, index: usize) -> (usize, usize) {
        // The last file starting at or before `index`: files without blocks share their
        // offset with the next file, so this is never one of them.
        let f = self.offsets.partition_point(|&o| o <= index) - 1;
        (f, index - self.offsets[f])
    }
}

fn convert(mode: &str, files: Vec<RawFile>) -> Result<BuildMeta, MetaError> {
    let mode: Mode = mode
        .parse()
        .map_err(|_| MetaError::Invalid(format!("unknown mode {mode:?}")))?;
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let funcs = file
            .funcs
            .into_iter()
            .map(|f| {
                let hash = parse_hash(&f.hash).ok_or_else(|| {
                    MetaError::Invalid(format!("function {}: bad hash {:?}", f.name, f.hash))
                })?;
                Ok(Func { name: f.name, hash })
            })
            .collect::<Result<Vec<_>, MetaError>>()?;
        let blocks = file
            .blocks
            .into_iter()
            .map(|[l0, c0, l1, c1, n, func]| {
                if func as usize >= funcs.len() {
                    return Err(MetaError::Invalid(format!(
                        "{}: block names function {func} of {}",
                        file.name,
                        funcs.len()
                    )));
                }
                Ok(Block {
                    start: Pos { line: l0, col: c0 },
                    end: Pos { line: l1, col: c1 },
                    num_stmt: n,
                    func,
                })
            })
            .collect::<Result<Vec<_>, MetaError>>()?;
        out.push(FileMeta {
            name: file.name,
            blocks,
            funcs,
        });
    }
    Ok(BuildMeta { mode, files: out })
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Whether `s` looks like a build id: 64 lower-case hex digits.
pub fn is_build_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Runs `work` off the async threads, one at a time: each holds a build's whole metadata in
/// memory, so two large (or hostile) ones at a time would double the server's peak.
async fn one_at_a_time<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, MetaError> + Send + 'static,
) -> Result<T, MetaError> {
    let _one = PARSING
        .acquire()
        .await
        .map_err(|e| MetaError::Encoding(e.to_string()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| MetaError::Invalid(format!("parsing stopped: {e}")))?
}

/// A reader that fails with `FileTooLarge` once more than `left` bytes were asked of it.
struct Limited<R> {
    inner: R,
    left: u64,
}

impl<R: std::io::Read> std::io::Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "over the limit",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn gz(json: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(json.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn what_a_build_excluded_is_kept_and_outside_its_id() {
        let meta = BuildMeta {
            mode: Mode::Set,
            files: vec![FileMeta {
                name: "example.com/m/a.go".into(),
                blocks: vec![Block {
                    start: Pos { line: 3, col: 10 },
                    end: Pos { line: 5, col: 2 },
                    num_stmt: 1,
                    func: 0,
                }],
                funcs: vec![Func {
                    name: "F".into(),
                    hash: [7; 32],
                }],
            }],
        };
        let id = meta.build_id();
        let files = format!(
            r#""files":[{{"name":"example.com/m/a.go","funcs":[{{"name":"F","hash":"{}"}}],"blocks":[[3,10,5,2,1,0]]}}]"#,
            instrumenter::hex(&[7; 32])
        );
        let plain = format!(r#"{{"build":"{id}","mode":"set",{files}}}"#);
        let b = Build::parse_now(&gz(&plain), &id, Source::Outside, 1 << 20).unwrap();
        assert_eq!(b.excluded, None);
        let with = format!(
            r#"{{"build":"{id}","mode":"set",{files},"excluded":{{"patterns":["**/*_mock.go"],"generated":true,"files":["example.com/m/a_mock.go"]}}}}"#
        );
        let b = Build::parse_now(&gz(&with), &id, Source::Outside, 1 << 20).unwrap();
        let e = b.excluded.unwrap();
        assert_eq!(e.patterns, ["**/*_mock.go"]);
        assert!(e.generated);
        assert_eq!(e.files, ["example.com/m/a_mock.go"]);
    }
}
