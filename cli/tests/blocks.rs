//! `livecov blocks` as a user runs it: the real binary, real files.

use std::path::Path;
use std::process::{Command, Output};

fn livecov(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_livecov"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const GOOD: &str =
    "package p\n\nfunc Abs(x int) int {\n\tif x < 0 {\n\t\treturn -x\n\t}\n\treturn x\n}\n";

#[test]
fn prints_blocks_in_go_profile_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("abs.go"), GOOD).unwrap();
    std::fs::write(dir.path().join("b.go"), "package p\n\nfunc B() {}\n").unwrap();
    let blocks = |go: &str| {
        let out = livecov(
            &[
                "blocks",
                "--go",
                go,
                "--pkg-path",
                "example.com/p",
                "b.go",
                "abs.go",
            ],
            dir.path(),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    // Go 1.27 starts a block at its first code and ends it where the code ends (the start of
    // a line holding only `}`); an empty body gets a zero-width block.
    for (go, want) in [
        (
            "1.26",
            ["3.21,4.11 1", "4.11,6.3 1", "7.2,7.10 1", "3.11,3.12 0"],
        ),
        (
            "1.27",
            ["4.2,4.11 1", "5.3,6.1 1", "7.2,7.10 1", "3.11,3.11 0"],
        ),
    ] {
        let files = ["abs.go", "abs.go", "abs.go", "b.go"];
        let lines: Vec<String> = files
            .iter()
            .zip(want)
            .map(|(f, b)| format!("example.com/p/{f}:{b} 0\n"))
            .collect();
        assert_eq!(
            blocks(go),
            format!("mode: set\n{}", lines.concat()),
            "go {go}"
        );
    }
}

#[test]
fn follows_the_go_on_path_and_refuses_releases_it_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("abs.go"), GOOD).unwrap();
    let version = Command::new("go")
        .args(["env", "GOVERSION"])
        .output()
        .unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    let release: String = version
        .trim()
        .trim_start_matches("go")
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    let default = livecov(&["blocks", "abs.go"], dir.path());
    let chosen = livecov(&["blocks", "--go", &release, "abs.go"], dir.path());
    assert!(default.status.success(), "{}", stderr(&default));
    assert_eq!(default.stdout, chosen.stdout, "go {release}");

    for (go, want) in [
        (
            "1.28",
            "livecov knows the block rules of Go 1.20 to 1.27, not of 1.28",
        ),
        (
            "1.19",
            "livecov knows the block rules of Go 1.20 to 1.27, not of 1.19",
        ),
        ("2.0", "\"2.0\" is not a Go release"),
    ] {
        let out = livecov(&["blocks", "--go", go, "abs.go"], dir.path());
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains(want), "{go}: {}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn names_files_by_the_path_given_without_pkg_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/abs.go"), GOOD).unwrap();
    let out = livecov(&["blocks", "--go", "1.26", "sub/abs.go"], dir.path());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\nsub/abs.go:3.21,4.11 1 0\n"), "{text}");
}

#[test]
fn refuses_unparseable_go_with_its_position_and_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.go"), GOOD).unwrap();
    std::fs::write(
        dir.path().join("bad.go"),
        "package p\n\nfunc f() {\n\tx := \n}\n",
    )
    .unwrap();
    let out = livecov(&["blocks", "good.go", "bad.go"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "a refused run prints no blocks at all"
    );
    let err = stderr(&out);
    assert!(err.starts_with("livecov: bad.go:4:"), "{err}");
    assert!(err.contains("syntax error"), "{err}");
}

#[test]
fn refuses_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = livecov(&["blocks", "nope.go"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.contains("cannot read nope.go"), "{err}");
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn refuses_a_directory_and_says_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pkg")).unwrap();
    let out = livecov(&["blocks", "pkg"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("pkg: is a directory; give the .go files in it"));
}

#[test]
fn refuses_a_file_that_is_not_go() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.go"), "# Notes\n\nSome prose.\n").unwrap();
    let out = livecov(&["blocks", "notes.go"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("livecov: notes.go:1:1: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn requires_at_least_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = livecov(&["blocks"], dir.path());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("FILE.go"), "{}", stderr(&out));
}
