//! Run-time cost of the counters: the same Go benchmarks uninstrumented, with Go's own
//! coverage (`go test -covermode=set|count|atomic`) and with livecov's
//! (`livecov test --mode set|count|atomic`).
//!
//! The Go package is generated here. `BenchmarkCPU` runs a branchy tokenizer (a small state
//! machine) over 5 KB of text on one goroutine: the cost of a counter on every block of a hot
//! loop. `BenchmarkContended` calls a five-block function from 16 goroutines on 2 threads
//! (`b.SetParallelism(8)`, `-cpu 2`): every call writes the same few counters, from both
//! cores. That is where the modes differ. Go's set mode stores 1 on every pass, so each store
//! takes the counter's cache line away from the other core; livecov's set mode loads the
//! counter and stores only while it is still zero, so after the first pass both cores only
//! read it. Count mode increments without atomics (and loses counts under contention, as Go's
//! does); atomic mode increments atomically.
//!
//! Every run invokes every variant once (`-count 1`), in turn, so that the machine's slow
//! spells hit them alike: on a virtual machine the cost of sharing a cache line between the
//! two vCPUs can change from one minute to the next. The table reports the median run. With
//! `--baseline PATH`, an earlier `livecov` executable's three modes run in the same turns, so
//! that a change to the counters is measured against what it replaces.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::common::{self, median};

const BENCHMARKS: [&str; 2] = ["BenchmarkCPU", "BenchmarkContended"];
const MODES: [&str; 3] = ["set", "count", "atomic"];

const GO_MOD: &str = "module livecovbench/work\n\ngo 1.22\n";

const WORK_GO: &str = r#"// Package work holds the code livecov-bench's runtime benchmark runs instrumented.
package work

const (
	space = iota
	ident
	number
	str
)

// Counts is what Scan found.
type Counts struct {
	Idents, Numbers, Strings, Ops int
}

// Scan counts the tokens of src with a small state machine.
func Scan(src []byte) Counts {
	var n Counts
	state := space
	for i := 0; i < len(src); {
		c := src[i]
		switch state {
		case space:
			switch {
			case c == ' ' || c == '\t' || c == '\n':
			case isDigit(c):
				state = number
				n.Numbers++
			case c == '"':
				state = str
				n.Strings++
			case isLetter(c):
				state = ident
				n.Idents++
			default:
				n.Ops++
			}
			i++
		case ident:
			if isLetter(c) || isDigit(c) {
				i++
			} else {
				state = space
			}
		case number:
			if isDigit(c) || c == '.' || c == 'x' {
				i++
			} else {
				state = space
			}
		default:
			if c == '\\' {
				i += 2
				continue
			}
			if c == '"' {
				state = space
			}
			i++
		}
	}
	return n
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isLetter(c byte) bool {
	if c == '_' {
		return true
	}
	c |= 0x20
	return 'a' <= c && c <= 'z'
}

// hot is what every goroutine of BenchmarkContended calls: they all bump the same counters.
func hot(x int) int {
	if x&1 == 0 {
		return x >> 1
	}
	if x%3 == 0 {
		return x + 5
	}
	return 3*x + 1
}
"#;

const WORK_TEST_GO: &str = r#"package work

import (
	"strings"
	"sync/atomic"
	"testing"
)

const line = `func f(x int) int { if x > 0x1f { return g("a\"b", 3.5) }; return x_1 + 42 }` + "\n"

var input = []byte(strings.Repeat(line, 64))

var (
	sink  Counts
	total int64
)

func BenchmarkCPU(b *testing.B) {
	b.SetBytes(int64(len(input)))
	for i := 0; i < b.N; i++ {
		sink = Scan(input)
	}
}

func BenchmarkContended(b *testing.B) {
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		x, n := 0, 0
		for pb.Next() {
			x = hot(x ^ n)
			n++
		}
		atomic.AddInt64(&total, int64(x))
	})
}
"#;

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Plain,
    Native(&'static str),
    Livecov(&'static str),
    /// The `--baseline` executable.
    Baseline(&'static str),
}

impl Variant {
    fn label(self) -> String {
        match self {
            Variant::Plain => "uninstrumented (`go test`)".into(),
            Variant::Native(mode) => format!("`go test -covermode={mode}`"),
            Variant::Livecov(mode) => format!("`livecov test --mode {mode}`"),
            Variant::Baseline(mode) => format!("baseline `livecov test --mode {mode}`"),
        }
    }
}

/// `livecov-bench runtime`'s flags.
#[derive(clap::Args)]
pub struct Args {
    /// Runs of each benchmark (`go test -count`).
    #[arg(long, default_value_t = 5, value_parser = common::positive)]
    runs: usize,
    /// `go test -benchtime`.
    #[arg(long, default_value = "1s")]
    benchtime: String,
    /// An earlier `livecov` executable to measure in the same runs (such as one built from
    /// the commit before a change to the counters).
    #[arg(long, value_name = "PATH")]
    baseline: Option<std::path::PathBuf>,
}

pub fn run(
    Args {
        runs,
        benchtime,
        baseline,
    }: Args,
) -> Result<()> {
    let (livecov, scratch) = common::start()?;
    let scratch = scratch.path();
    let module = scratch.join("work");
    std::fs::create_dir_all(&module)?;
    std::fs::write(module.join("go.mod"), GO_MOD)?;
    std::fs::write(module.join("work.go"), WORK_GO)?;
    std::fs::write(module.join("work_test.go"), WORK_TEST_GO)?;
    let blocks = String::from_utf8_lossy(
        &common::run_ok(
            Command::new(&livecov)
                .arg("blocks")
                .arg(module.join("work.go")),
        )?
        .stdout,
    )
    .lines()
    .skip(1)
    .count();

    let go_args = [
        "-run",
        "^$",
        "-bench",
        ".",
        "-benchtime",
        &benchtime,
        "-count",
        "1",
        "-cpu",
        "2",
    ];
    let mut variants = vec![Variant::Plain];
    for mode in MODES {
        variants.extend([Variant::Native(mode), Variant::Livecov(mode)]);
        if baseline.is_some() {
            variants.push(Variant::Baseline(mode));
        }
    }

    // variant → benchmark → ns/op of every run
    let mut results: Vec<BTreeMap<String, Vec<f64>>> = vec![BTreeMap::new(); variants.len()];
    for run in 1..=runs {
        eprintln!("run {run}/{runs}");
        for (&variant, result) in variants.iter().zip(&mut results) {
            let bin = match (variant, &baseline) {
                (Variant::Baseline(_), Some(b)) => b.as_path(),
                _ => livecov.as_path(),
            };
            run_variant(variant, bin, &module, scratch, &go_args, result)?;
        }
    }

    println!("## Input\n");
    println!(
        "A generated package of one file, {blocks} blocks (`livecov blocks`); \
         `-benchtime {benchtime} -count 1 -cpu 2`, GOMAXPROCS=2; {runs} runs, each running \
         every variant in turn."
    );
    for name in BENCHMARKS {
        println!("\n## {name}, median ns/op of {runs} runs\n");
        println!(
            "| variant | ns/op | fastest–slowest run | vs uninstrumented | livecov vs Go, same mode |"
        );
        println!("|---|---:|---:|---:|---:|");
        let samples = |v: Variant| -> &Vec<f64> {
            let i = variants.iter().position(|&w| w == v).expect("a variant");
            &results[i][name]
        };
        let ns = |v: Variant| median(samples(v));
        let plain = ns(Variant::Plain);
        for &v in &variants {
            let same_mode = match v {
                Variant::Livecov(mode) | Variant::Baseline(mode) => {
                    format!("{:.2}×", ns(v) / ns(Variant::Native(mode)))
                }
                _ => String::new(),
            };
            let fastest = samples(v).iter().copied().fold(f64::INFINITY, f64::min);
            let slowest = samples(v).iter().copied().fold(0.0, f64::max);
            println!(
                "| {} | {} | {}–{} | {:.2}× | {same_mode} |",
                v.label(),
                format_ns(ns(v)),
                format_ns(fastest),
                format_ns(slowest),
                ns(v) / plain
            );
        }
    }
    common::print_machine("runtime", ("livecov", &livecov))
}

/// Runs `go test` (or `livecov test`) once for `variant` and adds each benchmark's ns/op to
/// `result`.
fn run_variant(
    variant: Variant,
    livecov: &Path,
    module: &Path,
    scratch: &Path,
    go_args: &[&str],
    result: &mut BTreeMap<String, Vec<f64>>,
) -> Result<()> {
    let mut cmd = match variant {
        Variant::Plain => common::go_command(module, &["test"]),
        Variant::Native(mode) => {
            let mut cmd = common::go_command(module, &["test"]);
            cmd.arg(format!("-covermode={mode}"));
            cmd
        }
        Variant::Livecov(mode) | Variant::Baseline(mode) => {
            let mut cmd = Command::new(livecov);
            cmd.current_dir(module)
                .env("GOFLAGS", "-mod=mod")
                .env("GOTOOLCHAIN", "local")
                .args(["test", "--mode", mode, "--coverprofile"])
                .arg(scratch.join(format!("{mode}.out")))
                .arg("--cache-dir")
                .arg(scratch.join(match variant {
                    Variant::Baseline(_) => "baseline-cache",
                    _ => "livecov-cache",
                }))
                .arg("--");
            cmd
        }
    };
    cmd.args(go_args).env("GOMAXPROCS", "2");
    let out = common::run_ok(&mut cmd)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match variant {
        Variant::Native(_) if !stdout.contains("coverage:") => {
            bail!("{} reported no coverage:\n{stdout}", variant.label())
        }
        Variant::Livecov(mode) | Variant::Baseline(mode) => {
            check_profile(&scratch.join(format!("{mode}.out")))?
        }
        _ => {}
    }
    let parsed = parse_bench(&stdout);
    for name in BENCHMARKS {
        match parsed.get(name).map(Vec::as_slice) {
            Some(&[ns]) => result.entry(name.to_string()).or_default().push(ns),
            _ => bail!(
                "{}: no single result for {name}:\n{stdout}",
                variant.label()
            ),
        }
    }
    Ok(())
}

/// `go test -bench` output: ns/op of every run of every benchmark, by name without the
/// `-GOMAXPROCS` suffix.
fn parse_bench(stdout: &str) -> BTreeMap<String, Vec<f64>> {
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for line in stdout.lines().filter(|l| l.starts_with("Benchmark")) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = fields.iter().position(|&f| f == "ns/op") else {
            continue;
        };
        let Some(ns) = at
            .checked_sub(1)
            .and_then(|i| fields[i].parse::<f64>().ok())
        else {
            continue;
        };
        let name = fields[0].rsplit_once('-').map_or(fields[0], |(n, _)| n);
        out.entry(name.to_string()).or_default().push(ns);
    }
    out
}

/// The profile `livecov test` wrote must show the benchmarks' blocks as run.
fn check_profile(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("livecov test wrote no {}", path.display()))?;
    let covered = text
        .lines()
        .skip(1)
        .filter(|l| l.rsplit(' ').next().is_some_and(|c| c != "0"))
        .count();
    if covered == 0 {
        bail!("{}: no block ran:\n{text}", path.display());
    }
    Ok(())
}

fn format_ns(ns: f64) -> String {
    if ns >= 100.0 {
        format!("{ns:.0}")
    } else {
        format!("{ns:.2}")
    }
}
