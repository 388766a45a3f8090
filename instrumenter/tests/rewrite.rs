//! Rewritten source, compiled and run by the real Go toolchain.
//!
//! `testdata/run/main.go` is instrumented in each mode, built (with `go vet` first), and run:
//! every block must have run exactly as often as the program's logic says, the race detector
//! must stay quiet in set mode, and a panic's stack trace must point at the original file and
//! lines (the rewritten file's line directives name the original).
//! Blocks are cut by the rules of the Go on PATH, the Go that builds them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use instrumenter::{Mode, Options, Rules};

const PROGRAM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/run");

struct Run {
    output: Output,
    /// Count of each block, keyed by its start `line.col`.
    counts: BTreeMap<String, u32>,
}

/// The rules of the Go on PATH.
fn rules() -> Rules {
    let out = go(Path::new(PROGRAM), &["env", "GOVERSION"]);
    instrumenter::version::rules_for(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
}

fn go(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new("go")
        .args(args)
        .current_dir(dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .output()
        .expect("go is installed");
    assert!(
        out.status.success(),
        "go {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Instruments the program in `mode`, vets and builds it (with `-race` if asked) and runs it
/// with `arg`.
fn run(mode: Mode, race: bool, arg: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(Path::new(PROGRAM).join("go.mod"), dir.path().join("go.mod")).unwrap();
    let src = std::fs::read(Path::new(PROGRAM).join("main.go")).unwrap();
    let opts = Options {
        mode,
        rules: rules(),
        source_path: Some(format!("{PROGRAM}/main.go")),
        race,
        ..Options::default()
    };
    let inst = instrumenter::instrument("example.com/run/main.go", &src, &opts).unwrap();
    std::fs::write(dir.path().join("main.go"), &inst.source).unwrap();
    let dump = format!(
        "package main\n\nimport \"fmt\"\n\nfunc dump() {{\n\tfor i, c := range {} {{\n\t\tfmt.Println(i, c)\n\t}}\n}}\n",
        inst.counter_var
    );
    std::fs::write(dir.path().join("dump.go"), dump).unwrap();

    go(dir.path(), &["vet", "."]);
    let mut build = vec!["build", "-o", "prog"];
    if race {
        build.push("-race");
    }
    go(dir.path(), &build);
    let output = Command::new(dir.path().join("prog"))
        .arg(arg)
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut counts = BTreeMap::new();
    for line in stdout.lines().skip_while(|l| *l != "done").skip(1) {
        let (i, c) = line.split_once(' ').unwrap();
        let b = &inst.meta.blocks[i.parse::<usize>().unwrap()];
        counts.insert(
            format!("{}.{}", b.start.line, b.start.col),
            c.parse().unwrap(),
        );
    }
    if arg != "panic" {
        assert_eq!(counts.len(), inst.meta.blocks.len(), "stdout:\n{stdout}");
    }
    Run { output, counts }
}

/// Expected counts of the blocks of `classify` (by start position) for 23 calls, x = -2..=20,
/// as Go 1.20 to 1.26 cut them (a block starts right after `{` or `:`) and as Go 1.27 does
/// (a block starts at its first code).
const SEQUENTIAL: &[(&str, &str, u32)] = &[
    ("11.29", "12.2", 23), // entry
    ("12.11", "13.3", 2),  // x < 0
    ("15.2", "15.2", 21),  // if x == 0
    ("15.12", "16.3", 1),  // zero
    ("17.8", "17.9", 20),  // else if x == 1
    ("17.19", "18.3", 1),  // one
    ("19.8", "20.3", 19),  // else
    ("22.2", "22.2", 19),  // switch
    ("23.15", "24.3", 0),  // huge
    ("25.14", "26.3", 9),  // big
    ("28.2", "28.2", 10),  // pos
];

/// The same blocks for 8 goroutines × 1000 calls, x = 0..1000.
const CONCURRENT: &[(&str, &str, u32)] = &[
    ("11.29", "12.2", 8000),
    ("12.11", "13.3", 0),
    ("15.2", "15.2", 8000),
    ("15.12", "16.3", 8),
    ("17.8", "17.9", 7992),
    ("17.19", "18.3", 8),
    ("19.8", "20.3", 7984),
    ("22.2", "22.2", 7984),
    ("23.15", "24.3", 7184),
    ("25.14", "26.3", 720),
    ("28.2", "28.2", 80),
];

/// The start of a block of the table under the rules in force.
fn at<'a>(go120: &'a str, go127: &'a str) -> &'a str {
    match rules() {
        Rules::Go120 => go120,
        Rules::Go127 => go127,
    }
}

fn assert_counts(run: &Run, want: &[(&str, &str, u32)], set: bool) {
    for &(go120, go127, n) in want {
        let pos = at(go120, go127);
        let want = if set { u32::from(n > 0) } else { n };
        assert_eq!(run.counts.get(pos), Some(&want), "block at {pos}");
    }
}

#[test]
fn count_mode_counts_every_execution() {
    let run = run(Mode::Count, false, "");
    assert!(run.output.status.success());
    assert_counts(&run, SEQUENTIAL, false);
    // main's own blocks: the default branch ran once, the others not at all.
    assert_eq!(run.counts[at("52.29", "53.4")], 23, "loop body");
    assert_eq!(run.counts[at("37.15", "38.3")], 0, "panic branch");
    if rules() == Rules::Go127 {
        // The loop body's statement after a blank line and a comment has its own counter.
        assert_eq!(run.counts["56.4"], 23, "loop body after the gap");
    }
}

#[test]
fn atomic_mode_counts_under_concurrency() {
    let run = run(Mode::Atomic, false, "concurrent");
    assert!(run.output.status.success());
    assert_counts(&run, CONCURRENT, false);
}

#[test]
fn set_mode_is_race_free_and_marks_reached_blocks() {
    let run = run(Mode::Set, true, "concurrent");
    let stderr = String::from_utf8_lossy(&run.output.stderr);
    assert!(run.output.status.success(), "stderr:\n{stderr}");
    assert!(!stderr.contains("DATA RACE"), "{stderr}");
    assert_counts(&run, CONCURRENT, true);
}

#[test]
fn set_mode_marks_reached_blocks_with_plain_stores() {
    let run = run(Mode::Set, false, "concurrent");
    assert!(run.output.status.success());
    assert_counts(&run, CONCURRENT, true);
}

#[test]
fn panics_point_at_the_original_lines() {
    for mode in [Mode::Set, Mode::Count, Mode::Atomic] {
        let run = run(mode, false, "panic");
        assert_eq!(run.output.status.code(), Some(2), "{mode}");
        let stderr = String::from_utf8_lossy(&run.output.stderr);
        assert!(stderr.contains("panic: boom"), "{stderr}");
        let frame_at = |line: u32| {
            stderr.lines().any(|l| {
                l.trim_start().split(' ').next() == Some(&*format!("{PROGRAM}/main.go:{line}"))
            })
        };
        assert!(frame_at(32), "{mode}: boom() frame:\n{stderr}");
        assert!(frame_at(38), "{mode}: main() frame:\n{stderr}");
    }
}

#[test]
fn rewriting_keeps_every_line_in_place() {
    let src = std::fs::read(Path::new(PROGRAM).join("main.go")).unwrap();
    let modes = [Mode::Set, Mode::Count, Mode::Atomic];
    let paths = [None, Some("/src/run/main.go".to_string())];
    for (mode, source_path) in modes
        .into_iter()
        .flat_map(|m| paths.clone().map(|p| (m, p)))
    {
        let opts = Options {
            mode,
            rules: rules(),
            source_path,
            ..Options::default()
        };
        let out = instrumenter::instrument("m/main.go", &src, &opts)
            .unwrap()
            .source;
        let (orig, new) = (String::from_utf8_lossy(&src), String::from_utf8_lossy(&out));
        let orig_lines: Vec<&str> = orig.lines().collect();
        let new_lines: Vec<&str> = new.lines().collect();
        assert!(new_lines.len() > orig_lines.len());
        for (n, (a, b)) in orig_lines.iter().zip(&new_lines).enumerate() {
            // Each original line survives on its own line, counters only added around it.
            let words: Vec<&str> = a.split_whitespace().collect();
            let mut rest = *b;
            for w in words {
                let at = rest
                    .find(w)
                    .unwrap_or_else(|| panic!("{mode}: line {} lost {w:?}: {b}", n + 1));
                rest = &rest[at + w.len()..];
            }
        }
    }
}
