//! The testdata corpus against the block lists the real `go tool cover` produced for it.
//!
//! `testdata/cover/X.go120.golden` holds what `go tool cover` of Go 1.26 cut `X.go` into, and
//! `X.go127.golden` what Go 1.27's did, both written by `scripts/regen-golden.sh`. Each file
//! exercises a family of constructs (labels and goto, func literals in headers, `//line`
//! directives, BOM, CRLF, `;;`, blank and comment lines inside blocks, …); under each release's
//! rules the blocks must match line for line, in order.

use std::path::Path;

use instrumenter::{Mode, Rules, profile};

fn corpus() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cover");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "go"))
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_matches_go_tool_cover() {
    let files = corpus();
    assert!(files.len() >= 10, "corpus went missing: {files:?}");
    let mut failures = Vec::new();
    for rules in Rules::ALL {
        for path in &files {
            let name = path.file_name().unwrap().to_str().unwrap();
            let golden = path.with_extension(format!("{}.golden", rules.tag()));
            let want = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; run scripts/regen-golden.sh",
                    golden.file_name().unwrap().to_string_lossy()
                )
            });
            let meta = match instrumenter::analyze(name, &src(path), rules) {
                Ok(meta) => meta,
                Err(e) => {
                    failures.push(format!("{name} ({rules:?}): refused: {e}"));
                    continue;
                }
            };
            let mut got = profile::header(Mode::Set);
            profile::write_blocks(&mut got, &meta, |_| 0);
            if got != want {
                let line = got
                    .lines()
                    .zip(want.lines())
                    .find(|(g, w)| g != w)
                    .map(|(g, w)| format!("livecov {g}\n  go tool cover {w}"))
                    .unwrap_or_else(|| "block counts differ".into());
                failures.push(format!("{name} ({rules:?}):\n  {line}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn src(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn every_block_names_its_function() {
    for (path, rules) in corpus()
        .into_iter()
        .flat_map(|p| Rules::ALL.map(|r| (p.clone(), r)))
    {
        let meta = instrumenter::analyze("f.go", &src(&path), rules).unwrap();
        for b in &meta.blocks {
            assert!(
                (b.func as usize) < meta.funcs.len(),
                "{}: block {b:?} has no function",
                path.display()
            );
        }
    }
}
