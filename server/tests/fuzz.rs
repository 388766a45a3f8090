//! The decoders of outside input, fuzzed: the LCC1 counters an agent sends, a build's metadata
//! (gzip JSON, and the binary form the store keeps, LCM1, read back as if it came from
//! outside), a unified diff for patch coverage, a registration, and an upload of sources
//! (whose Go the instrumenter cuts into blocks). Each target takes the
//! inputs of its corpus (`tests/fuzz/TARGET/`), mutates them at random (bits flipped, bytes
//! changed, inserted, deleted or repeated, the end cut, two inputs spliced) and must answer a
//! value or an error for every one: a panic fails the test, naming the seed and the input.
//!
//! `LIVECOV_FUZZ_CASES` sets the cases per target (default 20,000, a few seconds in all);
//! `LIVECOV_FUZZ_SEED` replays a run. `scripts/test.sh` runs the default as part of the tests.

use std::path::Path;

use instrumenter::Mode;
use server::meta::{Build, Source};
use server::{lcc, lcm};

/// xorshift64*: small, fast and good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!inputs.is_empty(), "no corpus in {}", dir.display());
    inputs
}

/// One mutation of `input`, drawing a second input from `corpus` for splices.
fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(8) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] = [0, 0x7f, 0x80, 0xff, b'0', b'9', b'"', b'-'][rng.below(8)];
            }
            2 => out.insert(at, rng.next() as u8),
            3 if at < out.len() => {
                out.remove(at);
            }
            4 => out.truncate(at),
            5 if at < out.len() => {
                // A run repeated: lengths that overrun, deep nesting.
                let end = (at + 1 + rng.below(16)).min(out.len());
                let run = out[at..end].to_vec();
                for _ in 0..1 + rng.below(8) {
                    out.splice(at..at, run.iter().copied());
                }
            }
            6 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
            _ => {
                // A varint-sized number where the input had a byte: lengths at their limits.
                let n: &[u8] = [
                    &[0xff, 0xff, 0xff, 0xff, 0x0f][..],
                    &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01][..],
                ][rng.below(2)];
                out.splice(at..at, n.iter().copied());
            }
        }
    }
    out
}

/// Runs `decode` on every corpus input and on mutations of them; a panic names the input.
fn fuzz(target: &str, decode: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let cases: usize = std::env::var("LIVECOV_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("LIVECOV_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let corpus = corpus(target);
    let mut rng = Rng(seed | 1);
    for (n, input) in corpus
        .iter()
        .cloned()
        .chain((0..cases).map(|_| {
            let base = corpus[rng.below(corpus.len())].clone();
            mutate(&mut rng, &base, &corpus)
        }))
        .enumerate()
    {
        let result = std::panic::catch_unwind(|| decode(&input));
        if result.is_err() {
            panic!(
                "{target}: case {n} panicked (LIVECOV_FUZZ_SEED={seed}); input, {} bytes: {}",
                input.len(),
                input.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
        }
    }
    eprintln!("{target}: {} cases, seed {seed}", corpus.len() + cases);
}

const BUILD: &str = "abababababababababababababababababababababababababababababababab";

#[test]
fn lcc_counters() {
    // The shape the corpus was encoded for, and others it was not.
    let shapes: [&[u32]; 3] = [&[8, 0, 3], &[8], &[0, 0, 0, 1 << 20]];
    fuzz("lcc", |body| {
        for shape in shapes {
            if let Ok(s) = lcc::decode(body, BUILD, shape) {
                let total: u64 = shape.iter().map(|&n| u64::from(n)).sum();
                assert!(
                    s.nonzero
                        .iter()
                        .all(|&(i, v)| u64::from(i) < total && v != 0)
                );
                assert!(s.nonzero.windows(2).all(|w| w[0].0 < w[1].0));
                // What decodes encodes back to the same counters.
                let mut dense = vec![0u32; total as usize];
                for &(i, v) in &s.nonzero {
                    dense[i as usize] = v;
                }
                let again = lcc::encode(BUILD, s.mode, shape, &dense);
                assert_eq!(lcc::decode(&again, BUILD, shape).unwrap(), s);
            }
        }
    });
}

#[test]
fn build_metadata() {
    fuzz("meta", |json| {
        // The JSON mutated, then compressed as an agent serves it; and the gzip itself cut.
        let gz = report::gzip::gzip(json);
        let _ = Build::parse_now(&gz, BUILD, Source::Outside, 1 << 20);
        let _ = Build::parse_now(&gz[..gz.len() / 2], BUILD, Source::Outside, 1 << 20);
        let _ = Build::parse_now(&gz, BUILD, Source::Stored, 64);
    });
}

#[test]
fn binary_metadata() {
    fuzz("lcm", |bin| {
        // As mutated (which the CRC catches), then sealed again with a right CRC, so that the
        // mutations reach the checks of the structure.
        let _ = lcm::decode(bin, BUILD, 1 << 20);
        if bin.len() >= 4 {
            let mut sealed = bin[..bin.len() - 4].to_vec();
            let crc = crc32fast::hash(&sealed);
            sealed.extend_from_slice(&crc.to_le_bytes());
            for budget in [1 << 20, 64] {
                if let Ok(meta) = lcm::decode(&sealed, BUILD, budget) {
                    // What decodes encodes to bytes that decode to the same metadata.
                    let again = lcm::encode(BUILD, &meta);
                    assert_eq!(lcm::decode(&again, BUILD, u64::MAX).unwrap(), meta);
                }
            }
        }
    });
}

#[test]
fn unified_diffs() {
    fuzz("patch", |text| {
        if let Ok(text) = std::str::from_utf8(text) {
            let _ = report::patch::parse(text);
        }
    });
}

#[test]
fn registrations() {
    fuzz("registration", |json| {
        if let Ok(r) = serde_json::from_slice::<report::types::Registration>(json) {
            let _ = r.mode.parse::<Mode>();
            let _ = report::types::check_text("service", &r.service, 256);
        }
    });
}

#[test]
fn source_uploads() {
    // A build with the file the corpus uploads; the check cuts each uploaded source into
    // blocks with the instrumenter, so mangled Go meets the parser here.
    let meta = r#"{"build":"abababababababababababababababababababababababababababababababab",
        "mode":"set","files":[{"name":"example.com/m/a.go","funcs":[{"name":"main","hash":"0000000000000000000000000000000000000000000000000000000000000000"}],"blocks":[[5,13,7,3,1,0]]}]}"#;
    let build = Build::parse_now(
        &report::gzip::gzip(meta.as_bytes()),
        BUILD,
        Source::Stored,
        1 << 20,
    )
    .expect("the fuzz build parses");
    fuzz("upload", |json| {
        let body = report::gzip::gzip(json);
        if let Ok(upload) = server::sources::decode(&body) {
            let _ = server::sources::check(&build, upload);
        }
    });
}
