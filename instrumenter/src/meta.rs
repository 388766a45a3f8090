//! Coverage metadata: what each counter of a build means.
//!
//! Metadata is immutable and content-addressed: the [build id](BuildMeta::build_id) is a hash
//! of every block of every instrumented file, so two binaries with the same id count the same
//! blocks in the same order and their counters can be merged element by element.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::Mode;
use crate::position::Pos;

/// One coverage block: a range of source and the statements it counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Block {
    pub start: Pos,
    /// Exclusive end.
    pub end: Pos,
    pub num_stmt: u32,
    /// Index of the enclosing function in [`FileMeta::funcs`].
    pub func: u32,
}

impl Block {
    /// The lines that hold some of the block's text: see [`lines_between`].
    pub fn lines(&self) -> Option<std::ops::RangeInclusive<u32>> {
        lines_between(self.start, self.end)
    }
}

/// The lines that hold some of the text from `start` to `end` (exclusive), for line-based
/// reports. A range that ends at column 1 holds nothing of its last line (Go 1.27 ends a block
/// at the start of the line after its code, which may be blank, a comment or a `}`), and an
/// empty range (a Go 1.27 block without code) holds no line. Where `//line` directives make
/// `end` come before `start`, the range is its first line.
pub fn lines_between(start: Pos, end: Pos) -> Option<std::ops::RangeInclusive<u32>> {
    if start == end {
        return None;
    }
    let last = if end.col == 1 && end.line > start.line {
        end.line - 1
    } else {
        end.line
    };
    Some(start.line..=last.max(start.line))
}

/// A function whose blocks are counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Func {
    /// `F`, `T.M`, `*T.M`, or `func.L<line>.C<col>` for a func literal at package level.
    pub name: String,
    /// SHA-256 of the function's source text: equal hashes in two builds mean the function did
    /// not change, so its coverage can be carried from one build to the next.
    pub hash: [u8; 32],
}

/// The metadata of one instrumented file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileMeta {
    /// The name in coverprofiles: `importpath/file.go`.
    pub name: String,
    /// Blocks in counter order (the order `go tool cover` numbers them).
    pub blocks: Vec<Block>,
    pub funcs: Vec<Func>,
}

/// The metadata of a whole build: its counter mode and every instrumented file, in the order
/// their counters are laid out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BuildMeta {
    pub mode: Mode,
    pub files: Vec<FileMeta>,
}

impl BuildMeta {
    /// The build id: hex SHA-256 over the mode and every file's name, blocks and functions.
    pub fn build_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"livecov-meta-v1\n");
        h.update(self.mode.as_str().as_bytes());
        h.update(b"\n");
        for file in &self.files {
            file.hash_into(&mut h);
        }
        hex(&h.finalize())
    }

    /// Total number of blocks (and so of counters).
    pub fn num_blocks(&self) -> usize {
        self.files.iter().map(|f| f.blocks.len()).sum()
    }
}

impl FileMeta {
    fn hash_into(&self, h: &mut Sha256) {
        let mut line = String::new();
        // Lengths first, so that no two different files serialize to the same bytes.
        let _ = writeln!(
            line,
            "file {} {} {} {}",
            self.name.len(),
            self.name,
            self.blocks.len(),
            self.funcs.len()
        );
        h.update(line.as_bytes());
        for f in &self.funcs {
            line.clear();
            let _ = writeln!(line, "func {} {} {}", f.name.len(), f.name, hex(&f.hash));
            h.update(line.as_bytes());
        }
        for b in &self.blocks {
            line.clear();
            let _ = writeln!(
                line,
                "{}.{},{}.{} {} {}",
                b.start.line, b.start.col, b.end.line, b.end.col, b.num_stmt, b.func
            );
            h.update(line.as_bytes());
        }
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
