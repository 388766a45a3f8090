//! gzip, the encoding of build metadata and sources on the wire and in the store.

use std::io::{Read as _, Write as _};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

/// `bytes` gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).expect("writing to memory");
    e.finish().expect("writing to memory")
}

/// `gz` decompressed, reading at most `limit + 1` bytes of output: a result longer than
/// `limit` means the input holds more than `limit` bytes.
pub fn gunzip(gz: &[u8], limit: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    GzDecoder::new(gz)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)?;
    Ok(out)
}
