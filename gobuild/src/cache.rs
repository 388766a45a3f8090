//! Instrumented files, cached on disk by content: a file whose bytes, name, mode and block
//! rules did not change since the last build is not instrumented again.
//!
//! Layout under the cache directory: `files/<key>.go` (the rewritten source) and
//! `files/<key>.meta` (its block metadata, one line per function and per block). The key is a
//! hash of everything the output depends on, so entries never need invalidating; files are
//! written to a temporary name and renamed, so concurrent builds never see half an entry.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use instrumenter::{Block, FileMeta, Func, Mode, Options, Pos, Prologue, Rules};
use sha2::{Digest, Sha256};

use crate::Error;

/// One instrumented file, from the cache or freshly made.
pub struct Entry {
    /// The rewritten source on disk.
    pub source: PathBuf,
    pub counter_var: String,
    pub meta: FileMeta,
    pub reused: bool,
}

/// What every file of a build is instrumented with.
#[derive(Debug, Clone, Copy)]
pub struct Counting<'a> {
    pub mode: Mode,
    /// The build runs under the race detector (`instrumenter::Options::race`).
    pub race: bool,
    pub rules: Rules,
    /// The agent's import path, for `main`'s prologue.
    pub agent_import: &'a str,
}

/// Returns the instrumented form of `path` (named `profile_name` in profiles). With
/// `source_path` (the path `go` names the file by), positions in the rewritten file are the
/// user's (`instrumenter::Options::source_path`).
pub fn instrument(
    cache: &Path,
    path: &Path,
    profile_name: &str,
    how: Counting,
    source_path: Option<&str>,
) -> Result<Entry, Error> {
    let Counting {
        mode,
        race,
        rules,
        agent_import,
    } = how;
    let src = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let prologue = main_prologue(agent_import);
    let key = key(profile_name, how, &prologue, source_path, &src);
    let dir = cache.join("files");
    let source = dir.join(format!("{key}.go"));
    let meta_path = dir.join(format!("{key}.meta"));
    let counter_var = instrumenter::counter_var(profile_name);
    if let Ok(text) = std::fs::read_to_string(&meta_path)
        && source.is_file()
        && let Some(meta) = decode_meta(profile_name, &text)
    {
        return Ok(Entry {
            source,
            counter_var,
            meta,
            reused: true,
        });
    }
    let opts = Options {
        mode,
        counter_var: Some(counter_var.clone()),
        main_prologue: Some(prologue),
        rules,
        source_path: source_path.map(str::to_string),
        race,
    };
    let out = instrumenter::instrument(profile_name, &src, &opts).map_err(|e| Error::Syntax {
        path: path.to_path_buf(),
        error: e,
    })?;
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    write_atomic(&source, &out.source)?;
    write_atomic(&meta_path, encode_meta(&out.meta).as_bytes())?;
    Ok(Entry {
        source,
        counter_var,
        meta: out.meta,
        reused: false,
    })
}

/// What every binary's `func main()` runs first: a deferred final write and delivery of the
/// counters, so that counts up to a normal return of main are kept (see the agent's
/// `Finish`).
fn main_prologue(agent_import: &str) -> Prologue {
    Prologue {
        import: ("_livecov_agent".into(), agent_import.into()),
        statement: "defer _livecov_agent.Finish()".into(),
    }
}

/// A hash of everything the instrumented file depends on.
fn key(
    profile_name: &str,
    how: Counting,
    prologue: &Prologue,
    source_path: Option<&str>,
    src: &[u8],
) -> String {
    let mut h = Sha256::new();
    h.update(concat!("livecov ", env!("CARGO_PKG_VERSION"), "\n"));
    // The shape of the counter statements, whenever it changes within a version.
    h.update(b"counters 2\n");
    h.update(format!("{:?}\n", how.rules).as_bytes());
    h.update(format!("{prologue:?}\n").as_bytes());
    h.update(how.mode.as_str());
    h.update(if how.race {
        &b" race\n"[..]
    } else {
        &b"\n"[..]
    });
    h.update(profile_name.as_bytes());
    h.update(b"\n");
    // The line directives name the file: its path is part of the output.
    h.update(format!("{source_path:?}\n").as_bytes());
    h.update(src);
    instrumenter::hex(&h.finalize())
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn encode_meta(meta: &FileMeta) -> String {
    let mut out = String::new();
    for f in &meta.funcs {
        let _ = writeln!(out, "f {} {}", instrumenter::hex(&f.hash), f.name);
    }
    for b in &meta.blocks {
        let _ = writeln!(
            out,
            "b {} {} {} {} {} {}",
            b.start.line, b.start.col, b.end.line, b.end.col, b.num_stmt, b.func
        );
    }
    out
}

/// Reads what [`encode_meta`] wrote; `None` for anything else (a damaged entry is rebuilt).
fn decode_meta(name: &str, text: &str) -> Option<FileMeta> {
    let mut meta = FileMeta {
        name: name.to_string(),
        blocks: Vec::new(),
        funcs: Vec::new(),
    };
    for line in text.lines() {
        match line.split_once(' ')? {
            ("f", rest) => {
                let (hash, fname) = rest.split_once(' ')?;
                let mut bytes = [0u8; 32];
                if hash.len() != 64 {
                    return None;
                }
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = u8::from_str_radix(hash.get(2 * i..2 * i + 2)?, 16).ok()?;
                }
                meta.funcs.push(Func {
                    name: fname.to_string(),
                    hash: bytes,
                });
            }
            ("b", rest) => {
                let n: Vec<u32> = rest
                    .split(' ')
                    .map(|s| s.parse().ok())
                    .collect::<Option<_>>()?;
                let [l0, c0, l1, c1, num_stmt, func] = n[..] else {
                    return None;
                };
                meta.blocks.push(Block {
                    start: Pos { line: l0, col: c0 },
                    end: Pos { line: l1, col: c1 },
                    num_stmt,
                    func,
                });
            }
            _ => return None,
        }
    }
    Some(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips() {
        let src = b"package p\n\nfunc (t *T) F(x int) int {\n\tif x > 0 {\n\t\treturn 1\n\t}\n\treturn 0\n}\n";
        let meta =
            instrumenter::analyze("example.com/p/f.go", src, instrumenter::Rules::Go120).unwrap();
        let back = decode_meta("example.com/p/f.go", &encode_meta(&meta)).unwrap();
        assert_eq!(back, meta);
        assert!(decode_meta("x", "b 1 2 3\n").is_none());
    }

    #[test]
    fn second_instrumentation_comes_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.go");
        std::fs::write(&file, "package p\n\nfunc F() {}\n").unwrap();
        let cache = dir.path().join("cache");
        let at = |mode, rules, path: Option<&str>| {
            let how = Counting {
                mode,
                race: false,
                rules,
                agent_import: "a",
            };
            instrument(&cache, &file, "p/f.go", how, path)
        };
        let go120 = Rules::Go120;
        let first = at(Mode::Set, go120, None).unwrap();
        let second = at(Mode::Set, go120, None).unwrap();
        assert!(!first.reused && second.reused);
        assert_eq!(first.meta, second.meta);
        assert_eq!(first.source, second.source);
        let count = at(Mode::Count, go120, None).unwrap();
        assert!(!count.reused, "the mode is part of the key");
        let how = Counting {
            mode: Mode::Set,
            race: true,
            rules: go120,
            agent_import: "a",
        };
        let race = instrument(&cache, &file, "p/f.go", how, None).unwrap();
        assert!(!race.reused, "the race detector is part of the key");
        let go127 = at(Mode::Set, Rules::Go127, None).unwrap();
        assert!(!go127.reused, "the rules are part of the key");
        assert_ne!(
            go127.meta, first.meta,
            "Go 1.27 cuts the empty body zero-wide"
        );
        let named = at(Mode::Set, go120, Some("/src/p/f.go")).unwrap();
        assert!(!named.reused, "the source path is part of the key");
        let text = std::fs::read_to_string(&named.source).unwrap();
        assert!(
            text.starts_with("/*line /src/p/f.go:1:1*/package p"),
            "{text}"
        );
        assert!(at(Mode::Set, go120, Some("/src/p/f.go")).unwrap().reused);
        std::fs::write(&file, "package p\n\nfunc F() { _ = 1 }\n").unwrap();
        assert!(!at(Mode::Set, go120, None).unwrap().reused);
    }
}
