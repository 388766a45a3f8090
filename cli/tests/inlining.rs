//! The compiler sees through livecov's counters: instrumented code inlines exactly where the
//! plain build's does, the user's `-gcflags` still apply, and the program behaves as built
//! by `go build` (output, exit status, nothing on stderr).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Functions around the inliner's budget (80): the small ones inline in a plain build, and
/// a counter per block would push the larger ones over it if the compiler charged for them.
const LIB: &str = r#"package lib

func Small(x int) int {
	if x > 3 {
		return x * 2
	}
	return x + 1
}

func Branchy(x, y int) int {
	s := 0
	if x > y {
		s += x
	} else if x < y {
		s += y
	} else {
		s -= 1
	}
	switch {
	case s > 100:
		s /= 2
	case s < -100:
		s *= 2
	}
	if s%3 == 0 {
		s++
	}
	return s
}

func Near(a []int) int {
	t := 0
	for i, v := range a {
		if v > 0 {
			t += v * i
		} else if v < 0 {
			t -= v
		}
		if t > 1000 {
			t = 1000
		}
	}
	if t == 7 {
		return -1
	}
	return t
}

func Loop(n int) (s int) {
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			s += i
		}
	}
	return s
}

type T struct{ n int }

func (t *T) Inc() {
	if t.n < 10 {
		t.n++
	}
}

func (t T) Get() int { return t.n }
"#;

const MAIN: &str = r#"package main

import (
	"fmt"
	"os"

	"example.com/inl/lib"
)

func add(a, b int) int {
	if a > b {
		return a - b
	}
	return a + b
}

func main() {
	t := &lib.T{}
	t.Inc()
	fmt.Println(lib.Small(4), lib.Branchy(5, 2), lib.Near([]int{1, -2, 3}), lib.Loop(10), t.Get(), add(1, 2))
	if len(os.Args) > 1 {
		os.Exit(3)
	}
}
"#;

fn module(dir: &Path, main: &str) {
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    std::fs::write(dir.join("go.mod"), "module example.com/inl\n\ngo 1.22\n").unwrap();
    std::fs::write(dir.join("lib/lib.go"), LIB).unwrap();
    std::fs::write(dir.join("main.go"), main).unwrap();
}

/// The functions the compiler reports it can inline, from `-m` output, livecov's own
/// registration function left out.
fn inlinable(stderr: &str) -> BTreeSet<String> {
    stderr
        .lines()
        .filter_map(|l| l.split(": can inline ").nth(1))
        .map(|rest| rest.split(' ').next().unwrap().to_string())
        .filter(|name| name != "_livecov_register")
        .collect()
}

/// Builds `dir` (livecov in `mode`, or plain `go build` without one) with `go_flags`, and
/// returns the build's stderr and the binary.
fn build(dir: &Path, mode: Option<&str>, go_flags: &[&str]) -> (String, std::path::PathBuf) {
    let bin = dir.join(format!("prog-{}", mode.unwrap_or("plain")));
    let mut cmd = match mode {
        Some(mode) => {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_livecov"));
            cmd.args(["build", "--mode", mode, "--cache-dir"])
                .arg(dir.join(".cache"))
                .arg("--");
            cmd
        }
        None => {
            let mut cmd = Command::new("go");
            cmd.arg("build");
            cmd
        }
    };
    let out = cmd
        .args(go_flags)
        .arg("-o")
        .arg(&bin)
        .arg(".")
        .current_dir(dir)
        .env_remove("GOFLAGS")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{mode:?} {go_flags:?}:\n{stderr}");
    (stderr, bin)
}

fn run(bin: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin)
        .args(args)
        .env("LIVECOV_AGENT_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn instrumented_code_inlines_where_the_plain_builds_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    module(dir, MAIN);
    let m = ["-gcflags=example.com/inl/...=-m"];
    let (plain_m, plain) = build(dir, None, &m);
    let want = inlinable(&plain_m);
    assert!(
        want.contains("Small") && want.contains("(*T).Inc") && want.contains("add"),
        "{want:?}"
    );
    let plain_run = run(&plain, &["x"]);
    assert_eq!(plain_run.0, Some(3));
    for mode in ["set", "count", "atomic"] {
        let (got_m, bin) = build(dir, Some(mode), &m);
        assert_eq!(inlinable(&got_m), want, "{mode}:\n{got_m}");
        // Behaviour as without livecov: output, exit status, nothing on stderr.
        assert_eq!(run(&bin, &["x"]), plain_run, "{mode}");
        let (code, out, err) = run(&bin, &[]);
        assert_eq!(
            (code, out, err),
            (Some(0), plain_run.1.clone(), String::new())
        );
    }
}

#[test]
fn the_users_gcflags_still_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    module(dir, MAIN);
    // -l turns inlining off: nothing is "can inline" in either build, and the same holds
    // when the flags come from a pattern for all packages, or in GOFLAGS.
    for flags in [
        &["-gcflags=example.com/inl/...=-m -l"][..],
        &["-gcflags=all=-m -l"],
        &["-gcflags", "-m -l", "-gcflags=example.com/inl/lib=-m -l"],
    ] {
        let (plain_m, _) = build(dir, None, flags);
        let (got_m, bin) = build(dir, Some("set"), flags);
        assert!(inlinable(&plain_m).is_empty(), "{flags:?}:\n{plain_m}");
        assert!(inlinable(&got_m).is_empty(), "{flags:?}:\n{got_m}");
        // -m still reports for both packages: the flags reached both.
        for file in ["lib/lib.go", "main.go"] {
            assert!(got_m.contains(file), "{flags:?}: {file}:\n{got_m}");
        }
        assert_eq!(run(&bin, &[]).0, Some(0));
    }
}

#[test]
fn a_program_that_links_gos_coverage_runtime_builds_and_runs_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let main = MAIN.replace("\"os\"\n", "\"os\"\n\t_ \"runtime/coverage\"\n");
    module(dir, &main);
    let (_, plain) = build(dir, None, &[]);
    let want = run(&plain, &["x"]);
    for mode in ["set", "count"] {
        let (_, bin) = build(dir, Some(mode), &[]);
        assert_eq!(run(&bin, &["x"]), want, "{mode}");
    }
}

#[test]
fn tests_inline_as_go_test_inlines_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    module(dir, MAIN);
    // An internal and an external test: go test compiles the external test package and the
    // test main with the package's flags too.
    std::fs::write(
        dir.join("lib/in_test.go"),
        "package lib\n\nimport \"testing\"\n\nfunc TestSmall(t *testing.T) {\n\tif Small(4) != 8 {\n\t\tt.Fatal(Small(4))\n\t}\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("lib/x_test.go"),
        "package lib_test\n\nimport (\n\t\"testing\"\n\n\t\"example.com/inl/lib\"\n)\n\nfunc TestLoop(t *testing.T) {\n\tif lib.Loop(4) != 2 {\n\t\tt.Fatal(lib.Loop(4))\n\t}\n}\n",
    )
    .unwrap();
    let m = "-gcflags=example.com/inl/lib=-m";
    let run = |cmd: &mut Command| {
        let out = cmd.current_dir(dir).env_remove("GOFLAGS").output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        );
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(!stdout.contains("not built with -cover"), "{stdout}");
        format!("{stdout}{stderr}")
    };
    let plain = run(Command::new("go").args(["test", "-count=1", m, "./lib"]));
    let want = inlinable(&plain);
    assert!(want.contains("Branchy"), "{want:?}");
    for mode in ["set", "count", "atomic"] {
        let got = run(Command::new(env!("CARGO_BIN_EXE_livecov"))
            .args(["test", "--mode", mode, "--cache-dir"])
            .arg(dir.join(".cache"))
            .arg("--coverprofile")
            .arg(dir.join("c.out"))
            .args(["--", "-count=1", m, "./lib"]));
        assert_eq!(inlinable(&got), want, "{mode}:\n{got}");
        let profile = std::fs::read_to_string(dir.join("c.out")).unwrap();
        assert!(profile.contains("example.com/inl/lib/lib.go"), "{profile}");
    }
}
