//! The testdata corpus against the block lists the real `go tool cover` produced for it.
//!
//! `testdata/cover/X.golden` holds what `go tool cover` cut `X.go` into, written by
//! `scripts/regen-golden.sh`. Each file exercises a family of constructs (labels and goto, func
//! literals in headers, `//line` directives, BOM, CRLF, `;;`, …); the blocks must match line for
//! line, in order.

use std::path::Path;

use instrumenter::{Mode, profile};

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
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let src = std::fs::read(path).unwrap();
        let want = std::fs::read_to_string(path.with_extension("golden")).unwrap_or_else(|e| {
            panic!("{name}: no golden file ({e}); run scripts/regen-golden.sh")
        });
        let meta = instrumenter::analyze(name, &src).unwrap_or_else(|e| panic!("{name}:{e}"));
        let mut got = profile::header(Mode::Set);
        profile::write_blocks(&mut got, &meta, |_| 0);
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .find(|(g, w)| g != w)
                .map(|(g, w)| format!("livecov {g}\n  go tool cover {w}"))
                .unwrap_or_else(|| "block counts differ".into());
            failures.push(format!("{name}:\n  {line}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_block_names_its_function() {
    for path in corpus() {
        let src = std::fs::read(&path).unwrap();
        let meta = instrumenter::analyze("f.go", &src).unwrap();
        for b in &meta.blocks {
            assert!(
                (b.func as usize) < meta.funcs.len(),
                "{}: block {b:?} has no function",
                path.display()
            );
        }
    }
}
