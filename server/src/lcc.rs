//! The `LCC1` counters encoding (`docs/COUNTERS.md`): what agents send, and how the server
//! stores a snapshot's merged counters.
//!
//! Decoding is strict because bodies come from processes the server does not control: every
//! length is checked against the build's metadata before anything is allocated, and a body
//! that breaks any rule is refused whole.

use instrumenter::Mode;

const MAGIC: &[u8; 4] = b"LCC1";

/// The shape of a build's counters: how many counters each file has, in metadata order.
pub trait Shape {
    fn file_lens(&self) -> &[u32];
}

impl Shape for [u32] {
    fn file_lens(&self) -> &[u32] {
        self
    }
}

/// Counters decoded from an `LCC1` body, kept sparse: mostly-unreached builds are the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sparse {
    pub build: String,
    pub mode: Mode,
    /// `(index, value)` of every non-zero counter, index into the build's flat counter array
    /// (file after file, in metadata order), increasing.
    pub nonzero: Vec<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("counters at byte {offset}: {what}")]
pub struct DecodeError {
    pub offset: usize,
    pub what: String,
}

impl crate::bytes::Fault for DecodeError {
    fn at(offset: usize, what: String) -> Self {
        DecodeError { offset, what }
    }
}

type Reader<'a> = crate::bytes::Reader<'a, DecodeError>;

/// Decodes `body`, which must be the counters of build `build` with the file lengths of
/// `shape`.
pub fn decode(body: &[u8], build: &str, shape: &[u32]) -> Result<Sparse, DecodeError> {
    let mut r = Reader::new(body, 0);
    if r.take(4).ok() != Some(MAGIC.as_slice()) {
        r.pos = 0;
        return r.fail("not LCC1 counters (bad magic)");
    }
    let id_len = r.uvarint()?;
    if id_len > r.left() as u64 {
        return r.fail(format!("build id of {id_len} bytes, {} left", r.left()));
    }
    let id = r.take(id_len as usize)?;
    if id != build.as_bytes() {
        let what = format!(
            "counters of build {:?}, expected {build}",
            String::from_utf8_lossy(id)
        );
        return r.fail(what);
    }
    let mode = match r.take(1)?[0] {
        0 => Mode::Set,
        1 => Mode::Count,
        2 => Mode::Atomic,
        m => return r.fail(format!("unknown mode {m}")),
    };
    let nfiles = r.uvarint()?;
    if nfiles != shape.len() as u64 {
        return r.fail(format!("{nfiles} files, the build has {}", shape.len()));
    }
    let mut nonzero = Vec::new();
    let mut base: u64 = 0;
    for (f, &want) in shape.iter().enumerate() {
        let n = r.uvarint()?;
        if n != u64::from(want) {
            return r.fail(format!("file {f} has {n} counters, the build has {want}"));
        }
        let mut i: u64 = 0;
        while i < n {
            let z = r.uvarint()?;
            let k = r.uvarint()?;
            if z == 0 && k == 0 {
                return r.fail("empty run");
            }
            if z > n - i || k > n - i - z {
                return r.fail(format!("run of {z}+{k} overshoots file {f}"));
            }
            i += z;
            if k == 0 && i != n {
                return r.fail("run without counters before the end of its file");
            }
            for _ in 0..k {
                let v = r.uvarint()?;
                if v == 0 || v > u64::from(u32::MAX) {
                    return r.fail(format!("counter value {v} inside a run"));
                }
                nonzero.push(((base + i) as u32, v as u32));
                i += 1;
            }
        }
        base += n;
    }
    if r.left() != 0 {
        return r.fail(format!("{} trailing bytes", r.left()));
    }
    Ok(Sparse {
        build: build.to_string(),
        mode,
        nonzero,
    })
}

fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// The build id an `LCC1` body names, read before its build's metadata is at hand (a body
/// from disk names its build only there). Everything else is checked by [`decode`].
pub fn build_of(body: &[u8]) -> Result<String, DecodeError> {
    let mut r = Reader::new(body, 0);
    if r.take(4).ok() != Some(MAGIC.as_slice()) {
        r.pos = 0;
        return r.fail("not LCC1 counters (bad magic)");
    }
    let id_len = r.uvarint()?;
    if id_len > 128 || id_len > r.left() as u64 {
        return r.fail(format!("build id of {id_len} bytes, {} left", r.left()));
    }
    let id = r.take(id_len as usize)?;
    match std::str::from_utf8(id) {
        Ok(id) => Ok(id.to_string()),
        Err(_) => r.fail("the build id is not text"),
    }
}

/// Encodes the dense counters `values` (file after file, as `shape` cuts them) with the
/// fewest runs.
pub fn encode(build: &str, mode: Mode, shape: &[u32], values: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + shape.len() * 2);
    out.extend_from_slice(MAGIC);
    put_uvarint(&mut out, build.len() as u64);
    out.extend_from_slice(build.as_bytes());
    out.push(match mode {
        Mode::Set => 0,
        Mode::Count => 1,
        Mode::Atomic => 2,
    });
    put_uvarint(&mut out, shape.len() as u64);
    let mut base = 0usize;
    for &n in shape {
        let file = &values[base..base + n as usize];
        base += n as usize;
        put_uvarint(&mut out, u64::from(n));
        let mut i = 0;
        while i < file.len() {
            let z = file[i..].iter().take_while(|&&v| v == 0).count();
            let k = file[i + z..].iter().take_while(|&&v| v != 0).count();
            put_uvarint(&mut out, z as u64);
            put_uvarint(&mut out, k as u64);
            for &v in &file[i + z..i + z + k] {
                put_uvarint(&mut out, u64::from(v));
            }
            i += z + k;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "ab";

    /// The example in docs/COUNTERS.md.
    const EXAMPLE: &[u8] = &[
        0x4c, 0x43, 0x43, 0x31, 0x02, 0x61, 0x62, 0x01, 0x02, 0x08, 0x02, 0x01, 0x05, 0x01, 0x02,
        0x01, 0x01, 0x02, 0x00, 0x00,
    ];

    #[test]
    fn documented_example() {
        let got = decode(EXAMPLE, ID, &[8, 0]).unwrap();
        assert_eq!(got.mode, Mode::Count);
        assert_eq!(got.nonzero, vec![(2, 5), (4, 1), (5, 1)]);
        let dense = [0, 0, 5, 0, 1, 1, 0, 0];
        assert_eq!(encode(ID, Mode::Count, &[8, 0], &dense), EXAMPLE);
    }

    #[test]
    fn round_trip() {
        let shape = [3, 0, 5, 1];
        let dense = [0, 0, 0, 7, 1, 0, 0, u32::MAX, 2];
        let body = encode(ID, Mode::Atomic, &shape, &dense);
        let got = decode(&body, ID, &shape).unwrap();
        assert_eq!(got.nonzero, vec![(3, 7), (4, 1), (7, u32::MAX), (8, 2)]);
    }

    #[test]
    fn other_splits_are_accepted() {
        // [0 1 1 0] as (1 zero, 1 value), (0 zeros, 1 value), (1 zero, none) instead of the
        // fewest runs (1 zero, 2 values), (1 zero, none).
        let mut body = b"LCC1\x02ab\x00\x01\x04".to_vec();
        body.extend_from_slice(&[0x01, 0x01, 0x01, 0x00, 0x01, 0x01, 0x01, 0x00]);
        let got = decode(&body, ID, &[4]).unwrap();
        assert_eq!(got.nonzero, vec![(1, 1), (2, 1)]);
    }

    #[test]
    fn refusals() {
        let cases: &[(&[u8], &[u32], &str)] = &[
            (b"LCC2\x02ab\x00\x00", &[], "bad magic"),
            (b"LCC1\x02ac\x00\x00", &[], "expected ab"),
            (b"LCC1\x7fab", &[], "build id of 127 bytes"),
            (b"LCC1\x02ab\x03\x00", &[], "unknown mode"),
            (b"LCC1\x02ab\x00\x01\x00", &[], "1 files, the build has 0"),
            (
                b"LCC1\x02ab\x00\x01\x02\x00\x02\x01\x01",
                &[3],
                "has 2 counters",
            ),
            (b"LCC1\x02ab\x00\x01\x02\x03\x00", &[2], "overshoots"),
            (
                b"LCC1\x02ab\x00\x01\x02\x00\x03\x01\x01\x01",
                &[2],
                "overshoots",
            ),
            (b"LCC1\x02ab\x00\x01\x02\x00\x00", &[2], "empty run"),
            (
                b"LCC1\x02ab\x00\x01\x02\x01\x00\x00\x01\x01",
                &[2],
                "before the end",
            ),
            (b"LCC1\x02ab\x00\x01\x02\x00\x02\x01\x00", &[2], "value 0"),
            (
                b"LCC1\x02ab\x00\x01\x01\x00\x01\x80\x80\x80\x80\x10",
                &[1],
                "value 4294967296",
            ),
            (
                b"LCC1\x02ab\x00\x01\x01\x00\x01\x01\x00",
                &[1],
                "1 trailing",
            ),
            (b"LCC1\x02ab\x00\x01\x01\x00\x01", &[1], "truncated"),
            (
                b"LCC1\x02ab\x00\x01\x81\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
                &[1],
                "overflows 64 bits",
            ),
            (b"", &[], "bad magic"),
        ];
        for (body, shape, want) in cases {
            let err = decode(body, ID, shape).unwrap_err();
            assert!(
                err.to_string().contains(want),
                "{body:?}: got {err}, want {want}"
            );
        }
    }
}
