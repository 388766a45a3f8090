//! Line directives in rewritten source (`Options::source_path`): the Go compiler reports the
//! positions of the user's file, `//line` directives of the user's included, also on rewritten
//! lines longer than the 255 columns it keeps, and the header `go` reads build constraints
//! from stays as it was.

use std::path::Path;
use std::process::{Command, Output};

use instrumenter::{Mode, Options};

fn instrument(src: &[u8], mode: Mode, path: Option<&Path>) -> String {
    let opts = Options {
        mode,
        counter_var: Some("cv".into()),
        source_path: path.map(|p| p.to_str().unwrap().to_string()),
        ..Options::default()
    };
    let out = instrumenter::instrument("example.com/p/f.go", src, &opts).unwrap();
    String::from_utf8(out.source).unwrap()
}

fn go(dir: &Path, args: &[&str]) -> Output {
    Command::new("go")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("go is installed")
}

/// Counters before type errors on the same lines, under every kind of line directive.
const GENERATED: &str = "package p

func plain(x int) int {
\tif x > 0 { a := 1 }
\treturn 0
}

//line gen.y:100:5
func withColumn(x int) int {
\tif x > 0 { b := 2 }
\treturn 0
}

//line other.y:200
func withoutColumn(x int) int {
\tif x > 0 { c := 3 }
\treturn 0
}

//line :300:7
func previousName(x int) int {
\tif x > 0 { d := 4 }
\t/*line inline.y:50:10*/ if x > 1 { e := 5 }
\treturn 0
}

// Far past column 255 once rewritten.
func dense(x int) int { if x > 0 { f := 1 } else if x < -1 { g := \"s\\\"\" + '\\'' /* c */ } else { _, _ = 0x1p-2 + x.y/2, `raw` }; return 0 }
";

#[test]
fn directives_carry_the_users_adjusted_positions() {
    let dir = tempfile::tempdir().unwrap();
    let orig = dir.path().join("f.go");
    let out = instrument(GENERATED.as_bytes(), Mode::Count, Some(&orig));
    let o = orig.display();
    let want = [
        format!("/*line {o}:1:1*/package p\n"),
        "if x > 0 {cv[2] = cv[2] + 1;/*line :4:12*/ a := 1 }".into(),
        // The user's directives are kept, and ours continue from the positions they give,
        // keeping the file name they give.
        "//line gen.y:100:5\nfunc withColumn(x int) int {cv[3] = cv[3] + 1;/*line :100:33*/\n"
            .into(),
        "if x > 0 {cv[5] = cv[5] + 1;/*line :101:12*/ b := 2 }".into(),
        // No column after `//line f:N`: none in ours either, which then need the name.
        "if x > 0 {cv[8] = cv[8] + 1;/*line other.y:201*/ c := 3 }".into(),
        // `//line :N:C` keeps the previous name.
        "if x > 0 {cv[12] = cv[12] + 1;/*line :301:12*/ d := 4 }".into(),
        "/*line inline.y:50:10*/ cv[10] = cv[10] + 1;/*line :50:11*/if x > 1 {".into(),
    ];
    for w in &want {
        assert!(out.contains(w.as_str()), "{w}\nnot in:\n{out}");
    }
    assert_eq!(out.lines().count(), GENERATED.lines().count() + 3);

    // The compiler says exactly what it says of the original, in every mode.
    let export = go(
        dir.path(),
        &["list", "-export", "-f", "{{.Export}}", "sync/atomic"],
    );
    assert!(export.status.success());
    let cfg = dir.path().join("importcfg");
    let atomic = String::from_utf8(export.stdout).unwrap();
    std::fs::write(&cfg, format!("packagefile sync/atomic={}", atomic.trim())).unwrap();
    std::fs::write(&orig, GENERATED).unwrap();
    let compile = |file: &Path| {
        let out = go(
            dir.path(),
            &[
                "tool",
                "compile",
                "-p",
                "p",
                "-importcfg",
                cfg.to_str().unwrap(),
                "-o",
                dir.path().join("p.o").to_str().unwrap(),
                file.to_str().unwrap(),
            ],
        );
        assert!(!out.status.success());
        // The compiler sorts its errors by position base first, in the order it met them, and
        // every directive starts a base: compare them as a set.
        let text = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    let plain = compile(&orig);
    for (name, want) in [
        ("a", format!("{o}:4:13:")),
        ("b", "gen.y:101:13:".into()),
        ("c", "other.y:201:".into()),
        ("d", "other.y:301:13:".into()),
        ("e", "inline.y:50:22:".into()),
    ] {
        // From Go 1.27 the compiler puts a relative name in the directory of the file.
        let line = format!("{want} declared and not used: {name}");
        assert!(plain.iter().any(|l| l.ends_with(&line)), "{plain:#?}");
    }
    assert_eq!(plain.len(), 9, "{plain:#?}");
    for mode in [Mode::Set, Mode::Count, Mode::Atomic] {
        let rewritten = dir.path().join(format!("{mode}.go"));
        std::fs::write(
            &rewritten,
            instrument(GENERATED.as_bytes(), mode, Some(&orig)),
        )
        .unwrap();
        assert_eq!(compile(&rewritten), plain, "{mode}");
        // Without a path, the positions are the rewritten file's.
        std::fs::write(&rewritten, instrument(GENERATED.as_bytes(), mode, None)).unwrap();
        assert_ne!(compile(&rewritten), plain, "{mode}");
    }
}

#[test]
fn build_constraints_and_a_byte_order_mark_stay_in_front() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("go.mod"), "module example.com/c\n\ngo 1.22\n").unwrap();
    std::fs::write(
        root.join("main.go"),
        "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(flavor(1)) }\n",
    )
    .unwrap();
    // Two files of which the build constraint keeps exactly one: if `go` did not see it,
    // `flavor` would be declared twice.
    for (name, tag, word) in [
        ("plain.go", "!extra", "plain"),
        ("extra.go", "extra", "extra"),
    ] {
        let src = format!(
            "\u{feff}// Code generated by hand. DO NOT EDIT.\n\n//go:build {tag}\n\n// Package main.\npackage main\n\nfunc flavor(x int) string {{ if x > 0 {{ return {word:?} }}; return \"\" }}\n"
        );
        let orig = root.join("src").join(name);
        let out = instrument(src.as_bytes(), Mode::Set, Some(&orig));
        let o = orig.display();
        assert!(
            out.starts_with(&format!(
                "\u{feff}// Code generated by hand. DO NOT EDIT.\n\n//go:build {tag}\n\n// Package main.\n/*line {o}:6:1*/package main\n"
            )),
            "{out}"
        );
        std::fs::write(root.join(name), out).unwrap();
    }
    let run = |tags: &str| {
        let out = go(root, &["run", "-tags", tags, "."]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(""), "plain\n");
    assert_eq!(run("extra"), "extra\n");
    let vet = go(root, &["vet", "."]);
    assert!(
        vet.status.success(),
        "{}",
        String::from_utf8_lossy(&vet.stderr)
    );
}
