//! `LCM1`, the binary form in which the server keeps a build's metadata beside the agent's gzip
//! JSON (`builds.meta_bin`), so that loading a stored build costs a pass over a few bytes per
//! block instead of a gunzip and a JSON parse.
//!
//! Why: the gzip JSON is what agents serve and what the build id is checked against, but
//! reading it back is slow (inflating and parsing a 1,000,000-block build's took 139 ms, most
//! of a cold diff; `docs/BENCHMARKS.md`). `LCM1` holds exactly the
//! parsed [`BuildMeta`], no more: it is written once, when the build is stored, from
//! metadata that was checked against its build id, and read on every load of the build after
//! a start. The gzip JSON stays the reference; `LCM1` is derived from it and can always be
//! made again.
//!
//! Layout (integers are LEB128 "uvarint"s as in `LCC1`, `docs/COUNTERS.md`; an "svarint" is a
//! zigzag-encoded signed value, `(v << 1) ^ (v >> 63)`, in a uvarint):
//!
//! ```text
//! magic    4 bytes   "LCM1"
//! build    32 bytes  the build id, binary (its 64 hex digits as bytes)
//! mode     1 byte    0 set, 1 count, 2 atomic
//! nfiles   uvarint
//! nfiles times, in counter order:
//!   nameLen  uvarint, then the file's name (UTF-8)
//!   nfuncs   uvarint
//!   nfuncs times: nameLen uvarint, the function's name (UTF-8), its 32-byte hash
//!   nblocks  uvarint
//!   nblocks times, in counter order:
//!     line   svarint   start line − the previous block's end line (0 before the first)
//!     col    uvarint   start column
//!     lines  svarint   end line − start line
//!     col    uvarint   end column
//!     stmts  uvarint   number of statements
//!     func   uvarint   index into the file's functions
//! check    4 bytes   CRC-32 (IEEE, as gzip's) of every byte before it, little-endian
//! ```
//!
//! Positions are deltas so that a typical block takes 6 bytes (a 1,000,000-block build about
//! 6 MB, plus 32 bytes per function for its hash), stored uncompressed: inflating it would
//! take about as long as reading the bytes it saves. The check catches a row damaged behind
//! the server's back (a CRC, not a hash: whoever can write the row can write the gzip JSON
//! too, and a SHA-256 of it cost a third as much again as the whole decoding, a CRC next to
//! nothing); [`decode`] checks it first, then
//! every length against the bytes left before it allocates (a count of files, functions or
//! blocks cannot exceed the bytes left divided by the fewest bytes each takes), every value
//! against 32 bits, every function index against the file's functions, and refuses trailing
//! bytes. What the decoded metadata takes in memory is counted before it is allocated, against
//! a budget (the server's `--max-metadata-mb`, which bounds the JSON the same way). Whatever
//! it is handed, it answers an error or the metadata, never a panic.

use instrumenter::{Block, BuildMeta, FileMeta, Func, Mode, Pos};

const MAGIC: &[u8; 4] = b"LCM1";
/// The CRC-32 at the end.
const CHECK: usize = 4;
/// The fewest bytes a file, a function and a block take.
const MIN_FILE: usize = 3;
const MIN_FUNC: usize = 33;
const MIN_BLOCK: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("binary metadata at byte {offset}: {what}")]
pub struct DecodeError {
    pub offset: usize,
    pub what: String,
}

/// Encodes the metadata of build `id` (64 hex digits) as `LCM1`.
///
/// # Panics
///
/// If `id` is not 64 hex digits: the caller holds metadata checked against its id.
pub fn encode(id: &str, meta: &BuildMeta) -> Vec<u8> {
    let blocks = meta.num_blocks();
    let mut out = Vec::with_capacity(64 + blocks * 7 + meta.files.len() * 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&id_bytes(id).expect("a build id of 64 hex digits"));
    out.push(mode_byte(meta.mode));
    uvarint(&mut out, meta.files.len() as u64);
    for file in &meta.files {
        bytes(&mut out, file.name.as_bytes());
        uvarint(&mut out, file.funcs.len() as u64);
        for f in &file.funcs {
            bytes(&mut out, f.name.as_bytes());
            out.extend_from_slice(&f.hash);
        }
        uvarint(&mut out, file.blocks.len() as u64);
        let mut prev = 0u32;
        for b in &file.blocks {
            svarint(&mut out, i64::from(b.start.line) - i64::from(prev));
            uvarint(&mut out, u64::from(b.start.col));
            svarint(&mut out, i64::from(b.end.line) - i64::from(b.start.line));
            uvarint(&mut out, u64::from(b.end.col));
            uvarint(&mut out, u64::from(b.num_stmt));
            uvarint(&mut out, u64::from(b.func));
            prev = b.end.line;
        }
    }
    let check = crc32fast::hash(&out);
    out.extend_from_slice(&check.to_le_bytes());
    out
}

/// Decodes `LCM1` bytes, which must hold the metadata of build `expect`, in at most `budget`
/// bytes of memory (what the decoded metadata would take is counted before it is allocated).
pub fn decode(buf: &[u8], expect: &str, budget: u64) -> Result<BuildMeta, DecodeError> {
    let fail = |offset: usize, what: String| Err(DecodeError { offset, what });
    if buf.len() < MAGIC.len() + 32 + 1 + CHECK || !buf.starts_with(MAGIC) {
        return fail(0, "not LCM1 metadata (bad magic or too short)".into());
    }
    let (body, check) = buf.split_at(buf.len() - CHECK);
    if crc32fast::hash(body).to_le_bytes() != check {
        return fail(
            body.len(),
            "the CRC does not match: the bytes changed".into(),
        );
    }
    let id = &body[4..36];
    if id_bytes(expect).as_ref().map(|e| e.as_slice()) != Some(id) {
        return fail(
            4,
            format!(
                "metadata of build {}, expected {expect}",
                instrumenter::hex(id)
            ),
        );
    }
    let mut r = Reader {
        bytes: crate::bytes::Reader::new(body, 36),
        budget,
    };
    let mode = match r.byte()? {
        0 => Mode::Set,
        1 => Mode::Count,
        2 => Mode::Atomic,
        m => return r.fail(format!("unknown mode {m}")),
    };
    let nfiles = r.count(MIN_FILE, "files")?;
    r.spend::<FileMeta>(nfiles)?;
    let mut files = Vec::with_capacity(nfiles);
    for f in 0..nfiles {
        let name = r.string()?;
        let nfuncs = r.count(MIN_FUNC, "functions")?;
        r.spend::<Func>(nfuncs)?;
        let mut funcs = Vec::with_capacity(nfuncs);
        for _ in 0..nfuncs {
            let name = r.string()?;
            let hash = r.take(32)?.try_into().expect("32 bytes");
            funcs.push(Func { name, hash });
        }
        let nblocks = r.count(MIN_BLOCK, "blocks")?;
        r.spend::<Block>(nblocks)?;
        let mut blocks = Vec::with_capacity(nblocks);
        let mut prev = 0u32;
        for _ in 0..nblocks {
            let [dline, start_col, span, end_col, num_stmt, func] = r.block()?;
            let start_line = r.line(prev, dline)?;
            let end_line = r.line(start_line, span)?;
            let [start_col, end_col, num_stmt, func] = [
                r.fit(start_col)?,
                r.fit(end_col)?,
                r.fit(num_stmt)?,
                r.fit(func)?,
            ];
            if func as usize >= nfuncs {
                return r.fail(format!(
                    "file {f}: a block names function {func} of {nfuncs}"
                ));
            }
            blocks.push(Block {
                start: Pos {
                    line: start_line,
                    col: start_col,
                },
                end: Pos {
                    line: end_line,
                    col: end_col,
                },
                num_stmt,
                func,
            });
            prev = end_line;
        }
        files.push(FileMeta {
            name,
            blocks,
            funcs,
        });
    }
    if r.pos != body.len() {
        return r.fail(format!("{} bytes after the last file", body.len() - r.pos));
    }
    Ok(BuildMeta { mode, files })
}

/// The bytes of a build id, 64 lower-case hex digits.
fn id_bytes(id: &str) -> Option<[u8; 32]> {
    if id.len() != 64 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&id[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn mode_byte(mode: Mode) -> u8 {
    match mode {
        Mode::Set => 0,
        Mode::Count => 1,
        Mode::Atomic => 2,
    }
}

fn uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn svarint(out: &mut Vec<u8>, v: i64) {
    uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

impl crate::bytes::Fault for DecodeError {
    fn at(offset: usize, what: String) -> Self {
        DecodeError { offset, what }
    }
}

/// The shared reader ([`crate::bytes::Reader`]), with what the decoded metadata may still take.
struct Reader<'a> {
    bytes: crate::bytes::Reader<'a, DecodeError>,
    /// Bytes of memory the decoded metadata may still take.
    budget: u64,
}

impl<'a> std::ops::Deref for Reader<'a> {
    type Target = crate::bytes::Reader<'a, DecodeError>;
    fn deref(&self) -> &Self::Target {
        &self.bytes
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.bytes
    }
}

impl Reader<'_> {
    /// A block's six values, as they are written (the line deltas still zigzag-encoded).
    #[inline]
    fn block(&mut self) -> Result<[u64; 6], DecodeError> {
        // Most blocks are six one-byte values: read them at once when the next eight bytes
        // are there and the first six have no continuation bit.
        if let Some(next) = self.buf.get(self.pos..self.pos + 8) {
            let w = u64::from_le_bytes(next.try_into().expect("8 bytes"));
            if w & 0x0000_8080_8080_8080 == 0 {
                self.pos += 6;
                let b = w.to_le_bytes();
                return Ok([b[0], b[1], b[2], b[3], b[4], b[5]].map(u64::from));
            }
        }
        Ok([
            self.uvarint()?,
            self.uvarint()?,
            self.uvarint()?,
            self.uvarint()?,
            self.uvarint()?,
            self.uvarint()?,
        ])
    }

    #[inline]
    fn fit(&self, v: u64) -> Result<u32, DecodeError> {
        u32::try_from(v).or_else(|_| self.fail(format!("{v} does not fit in 32 bits")))
    }

    /// `base` plus the zigzag-encoded `z`, which must land in 32 bits.
    #[inline]
    fn line(&self, base: u32, z: u64) -> Result<u32, DecodeError> {
        let delta = (z >> 1) as i64 ^ -((z & 1) as i64);
        match i64::from(base).checked_add(delta).map(u32::try_from) {
            Some(Ok(line)) => Ok(line),
            _ => self.fail(format!("line {base} {delta:+} out of range")),
        }
    }

    /// A count of things that take at least `min` bytes each, checked against the bytes left.
    fn count(&mut self, min: usize, what: &str) -> Result<usize, DecodeError> {
        let n = self.uvarint()?;
        if n > (self.left() / min) as u64 {
            return self.fail(format!("{n} {what} announced, {} bytes left", self.left()));
        }
        Ok(n as usize)
    }

    /// Counts `n` values of type `T` against the budget, before they are allocated.
    fn spend<T>(&mut self, n: usize) -> Result<(), DecodeError> {
        let bytes = (n as u64).saturating_mul(std::mem::size_of::<T>() as u64);
        if bytes > self.budget {
            return self.fail(format!(
                "the metadata would take more than the {} bytes allowed",
                self.budget
            ));
        }
        self.budget -= bytes;
        Ok(())
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.uvarint()?;
        if n > self.left() as u64 {
            return self.fail(format!("a name of {n} bytes, {} left", self.left()));
        }
        self.spend::<u8>(n as usize)?;
        let at = self.pos;
        let s = self.take(n as usize)?;
        match std::str::from_utf8(s) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => Err(DecodeError {
                offset: at,
                what: "a name that is not UTF-8".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (String, BuildMeta) {
        let meta = BuildMeta {
            mode: Mode::Count,
            files: vec![
                FileMeta {
                    name: "example.com/m/a.go".into(),
                    funcs: vec![
                        Func {
                            name: "F".into(),
                            hash: [7; 32],
                        },
                        Func {
                            name: "(*T).Méthode".into(),
                            hash: [9; 32],
                        },
                    ],
                    blocks: vec![
                        Block {
                            start: Pos { line: 3, col: 14 },
                            end: Pos { line: 5, col: 2 },
                            num_stmt: 1,
                            func: 0,
                        },
                        // A //line directive can put a block before the previous one, and
                        // its end before its start.
                        Block {
                            start: Pos { line: 1, col: 1 },
                            end: Pos { line: 0, col: 0 },
                            num_stmt: 0,
                            func: 1,
                        },
                        Block {
                            start: Pos {
                                line: u32::MAX,
                                col: u32::MAX,
                            },
                            end: Pos { line: 0, col: 1 },
                            num_stmt: u32::MAX,
                            func: 1,
                        },
                    ],
                },
                FileMeta {
                    name: "example.com/m/empty.go".into(),
                    funcs: vec![],
                    blocks: vec![],
                },
            ],
        };
        (meta.build_id(), meta)
    }

    #[test]
    fn round_trip() {
        let (id, meta) = sample();
        let bin = encode(&id, &meta);
        assert_eq!(decode(&bin, &id, u64::MAX).unwrap(), meta);
        let empty = BuildMeta {
            mode: Mode::Set,
            files: vec![],
        };
        let eid = empty.build_id();
        assert_eq!(
            decode(&encode(&eid, &empty), &eid, u64::MAX).unwrap(),
            empty
        );
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        let (id, meta) = sample();
        let bin = encode(&id, &meta);
        let other = "0".repeat(64);
        let err = decode(&bin, &other, u64::MAX).unwrap_err();
        assert!(err.what.contains("expected 0000"), "{err}");
        for n in 0..bin.len() {
            assert!(decode(&bin[..n], &id, u64::MAX).is_err(), "cut at {n}");
        }
        for i in 0..bin.len() {
            let mut bad = bin.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad, &id, u64::MAX).is_err(), "byte {i} changed");
        }
        let mut longer = bin.clone();
        longer.push(0);
        assert!(decode(&longer, &id, u64::MAX).is_err());
        // What the metadata takes in memory is bounded.
        let err = decode(&bin, &id, 100).unwrap_err();
        assert!(
            err.what.contains("more than the 100 bytes allowed"),
            "{err}"
        );
    }

    /// Bodies with a valid check but broken insides: the structural checks hold on their own.
    #[test]
    fn checks_lengths_behind_a_valid_check() {
        let (id, _) = sample();
        let sealed = |body: Vec<u8>| {
            let mut out = MAGIC.to_vec();
            out.extend_from_slice(&id_bytes(&id).unwrap());
            out.extend_from_slice(&body);
            let check = crc32fast::hash(&out);
            out.extend_from_slice(&check.to_le_bytes());
            out
        };
        let huge = |out: &mut Vec<u8>| uvarint(out, u64::MAX >> 1);
        let mut files = vec![0];
        huge(&mut files);
        let mut funcs = vec![0, 1, 0];
        huge(&mut funcs);
        let mut blocks = vec![0, 1, 0, 0];
        huge(&mut blocks);
        let mut name = vec![0, 1];
        huge(&mut name);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![3, 0], "unknown mode"),
            (files, "files announced"),
            (funcs, "functions announced"),
            (blocks, "blocks announced"),
            (name, "a name of"),
            (vec![0, 1, 1, 0xff, 0, 0], "not UTF-8"),
            (
                vec![0, 1, 0, 0, 1, 2, 1, 2, 1, 1, 0],
                "names function 0 of 0",
            ),
            (
                vec![0, 1, 0, 0, 1, 1, 1, 2, 1, 1, 0],
                "line 0 -1 out of range",
            ),
            (
                vec![0, 1, 0, 0, 1, 2, 0x80, 0x80, 0x80, 0x80, 0x10, 2, 1, 1, 0],
                "does not fit in 32 bits",
            ),
            (vec![0, 0, 0], "after the last file"),
            (vec![0, 1, 0, 0, 0x80], "truncated varint"),
        ];
        for (body, want) in cases {
            let err = decode(&sealed(body.clone()), &id, u64::MAX).unwrap_err();
            assert!(err.what.contains(want), "{body:?}: {err}");
        }
    }
}
