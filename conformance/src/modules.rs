//! Conformance on real code: pinned modules fetched through the Go module proxy.
//!
//! For each module:
//! 1. every non-test `.go` file is compared with `go tool cover`, block for block, in order;
//! 2. every package builds and passes `go vet` with all its files rewritten, in each mode
//!    (the rewritten files reach `go` through `-overlay`, as `livecov build` does);
//! 3. `go test -coverprofile` (which drives cover the way `go build -cover` does, per package)
//!    lists exactly the blocks the instrumenter finds, file by file;
//! 4. `livecov test` passes the same tests as `go test` and writes the same profile: in count
//!    mode the same blocks with the same counts; in set mode under `-race`, no race and the
//!    blocks covered by `go test -race` (which allows only atomic mode there). Tests run with `-parallel=1` on both sides, since parallel
//!    tests lose plain count-mode increments at random; blocks whose native counts still differ
//!    between two native runs (tests with timing-dependent paths) are named and left out of the
//!    count comparison.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use instrumenter::{Mode, Options};

use livecov_testkit::{MODULES, copy_tree, download, go, json_string};

use crate::tempdir;

pub fn run(args: &[String]) -> Result<()> {
    let selected: Vec<&str> = if args.is_empty() {
        MODULES.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    let mut failures = Vec::new();
    let mut totals = (0, 0, 0);
    for module in selected {
        println!("== {module}");
        match check_module(module) {
            Ok(sum) => {
                totals.0 += sum.files;
                totals.1 += sum.blocks;
                totals.2 += sum.packages;
            }
            Err(e) => {
                println!("FAIL {module}: {e:#}");
                failures.push(module);
            }
        }
    }
    println!(
        "total: {} files, {} blocks identical to go tool cover; {} packages built and vetted in 3 modes",
        totals.0, totals.1, totals.2
    );
    if !failures.is_empty() {
        bail!("conformance failed for {}", failures.join(", "));
    }
    Ok(())
}

struct Summary {
    files: usize,
    blocks: usize,
    packages: usize,
}

fn check_module(module: &str) -> Result<Summary> {
    let dir = download(module)?;

    let report = crate::compare(&livecov_testkit::go_files(&dir, false)?)?;
    report.print();
    report.check()?;

    let work = tempdir()?;
    let work = work.path();
    let root = work.join("module");
    copy_tree(&dir, &root)?;
    go(&root, &["mod", "download"])?;
    let packages = list_packages(&root)?;
    for mode in [Mode::Set, Mode::Count, Mode::Atomic] {
        let overlay = write_overlay(work, &packages, mode)?;
        let flag = format!("-overlay={}", overlay.display());
        go(&root, &["build", &flag, "./..."])?;
        go(&root, &["vet", &flag, "./..."])?;
    }
    println!(
        "built and vetted {} packages with rewritten files in set, count and atomic modes",
        packages.len()
    );

    compare_go_test(&root, work, &packages)?;
    compare_livecov_test(&root, work, module)?;
    Ok(Summary {
        files: report.files,
        blocks: report.blocks,
        packages: packages.len(),
    })
}

/// A package as `go list -json` describes it (the fields used here).
struct Package {
    dir: PathBuf,
    import_path: String,
    name: String,
    files: Vec<String>,
}

fn list_packages(root: &Path) -> Result<Vec<Package>> {
    let out = go(
        root,
        &[
            "list",
            "-f",
            "{{.Dir}}\t{{.ImportPath}}\t{{.Name}}\t{{join .GoFiles \" \"}} {{join .CgoFiles \" \"}}",
            "./...",
        ],
    )?;
    Ok(out
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(4, '\t');
            let dir = PathBuf::from(parts.next()?);
            let import_path = parts.next()?.to_string();
            let name = parts.next()?.to_string();
            let files: Vec<String> = parts.next()?.split_whitespace().map(String::from).collect();
            Some(Package {
                dir,
                import_path,
                name,
                files,
            })
        })
        .filter(|p| !p.files.is_empty())
        .collect())
}

/// Instruments every file of `packages` into `work/<mode>/` and writes the overlay file that
/// points `go` at them. Each package also gets one added file that refers to every counter
/// array, so a build that silently ignored the overlay would fail to compile.
fn write_overlay(work: &Path, packages: &[Package], mode: Mode) -> Result<PathBuf> {
    let out_dir = work.join(mode.as_str());
    std::fs::create_dir_all(&out_dir)?;
    let mut replace = Vec::new();
    for (p, pkg) in packages.iter().enumerate() {
        let mut vars = Vec::new();
        for (f, file) in pkg.files.iter().enumerate() {
            let path = pkg.dir.join(file);
            let src = std::fs::read(&path)?;
            let name = format!("{}/{file}", pkg.import_path);
            let opts = Options {
                mode,
                rules: crate::rules(),
                ..Options::default()
            };
            let inst = instrumenter::instrument(&name, &src, &opts)
                .map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
            let dest = out_dir.join(format!("p{p}_f{f}_{file}"));
            std::fs::write(&dest, &inst.source)?;
            replace.push((path, dest));
            vars.push(format!("&{}", inst.counter_var));
        }
        let check = out_dir.join(format!("p{p}_livecov_check.go"));
        std::fs::write(
            &check,
            format!(
                "package {}\n\nvar _ = []interface{{}}{{{}}}\n",
                pkg.name,
                vars.join(", ")
            ),
        )?;
        replace.push((pkg.dir.join("livecov_check.go"), check));
    }
    let entries: Vec<String> = replace
        .iter()
        .map(|(from, to)| {
            format!(
                "{}:{}",
                json_string(&from.to_string_lossy()),
                json_string(&to.to_string_lossy())
            )
        })
        .collect();
    let overlay = out_dir.join("overlay.json");
    std::fs::write(
        &overlay,
        format!("{{\"Replace\":{{{}}}}}", entries.join(",")),
    )?;
    Ok(overlay)
}

/// Runs `go test -coverprofile` (no tests, just the instrumented build) and compares its blocks
/// with the instrumenter's, per file, after the merge and sort Go's profile readers do.
fn compare_go_test(root: &Path, work: &Path, packages: &[Package]) -> Result<()> {
    let profile = work.join("go-test.cover");
    let flag = format!("-coverprofile={}", profile.display());
    go(
        root,
        &["test", "-run", "^$", "-covermode=set", &flag, "./..."],
    )?;
    let text = std::fs::read_to_string(&profile)?;
    let mut theirs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let (file, rest) = line.rsplit_once(':').context("bad profile line")?;
        let block = rest.rsplit_once(' ').context("bad profile line")?.0;
        theirs
            .entry(file.to_string())
            .or_default()
            .insert(block.to_string());
    }
    let mut ours: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for pkg in packages {
        for file in &pkg.files {
            let name = format!("{}/{file}", pkg.import_path);
            let meta =
                instrumenter::analyze(&name, &std::fs::read(pkg.dir.join(file))?, crate::rules())?;
            let set = ours.entry(name).or_default();
            for b in meta.blocks {
                set.insert(format!(
                    "{}.{},{}.{} {}",
                    b.start.line, b.start.col, b.end.line, b.end.col, b.num_stmt
                ));
            }
        }
    }
    // Go's profile lists no line for a file without blocks.
    ours.retain(|_, blocks| !blocks.is_empty());
    let blocks: usize = theirs.values().map(BTreeSet::len).sum();
    if ours != theirs {
        let mut diffs = Vec::new();
        for name in ours.keys().chain(theirs.keys()).collect::<BTreeSet<_>>() {
            let (a, b) = (ours.get(name), theirs.get(name));
            if a != b {
                diffs.push(format!(
                    "{name}: livecov {} blocks, go test {} blocks",
                    a.map_or(0, BTreeSet::len),
                    b.map_or(0, BTreeSet::len)
                ));
            }
        }
        bail!("go test -coverprofile differs:\n  {}", diffs.join("\n  "));
    }
    println!(
        "go test -coverprofile: {} files, {blocks} blocks, identical",
        theirs.len()
    );
    Ok(())
}

type Profile = BTreeMap<String, u64>;

/// Reads a coverprofile, merging repeated blocks as Go's readers do (set: OR, else add).
fn read_profile(path: &Path) -> Result<(String, Profile)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut lines = text.lines();
    let mode = lines
        .next()
        .and_then(|l| l.strip_prefix("mode: "))
        .context("no mode line")?
        .to_string();
    let mut blocks = Profile::new();
    for line in lines {
        let (block, count) = line.rsplit_once(' ').context("bad profile line")?;
        let count: u64 = count.parse()?;
        let slot = blocks.entry(block.to_string()).or_insert(0);
        *slot = if mode == "set" {
            (*slot).max(count)
        } else {
            *slot + count
        };
    }
    Ok((mode, blocks))
}

/// Tests skipped on both sides: (module, test, why, whether only for the count comparison).
const SKIPPED_TESTS: &[(&str, &str, &str, bool)] = &[
    (
        "github.com/spf13/cobra@v1.10.2",
        "TestFailGenFishCompletionFile",
        "expects writing a read-only file to fail, which it does not as root",
        false,
    ),
    (
        "github.com/BurntSushi/toml@v1.6.0",
        "TestDecodeParallel",
        "decodes in 10 goroutines at once: plain count-mode increments are lost at random",
        true,
    ),
    (
        "golang.org/x/sync@v0.11.0",
        "TestPanicDo",
        "calls Do for one key in 5 goroutines at once: how many of them run the panicking \
         function (1 to 5) depends on how the calls overlap, and each tool's timing tends to \
         one number (go test 5, livecov test 1 in every round of one CI run), so the panic \
         path's counts differ without varying between rounds",
        true,
    ),
    (
        "golang.org/x/sync@v0.11.0",
        "TestDoDupSuppress",
        "calls Do for one key from 10 goroutines while the first call blocks: how many join \
         it rather than run the function again depends on timing, so Do's and doCall's \
         counts vary (from 9 to 13 over three runs of livecov test here)",
        true,
    ),
];

/// Blocks that run only when goroutines interleave one way, which one tool's runs may hit
/// every time and the other's never: compared for existence, not for counts. (Blocks whose
/// counts change between runs of one tool are found without this list.)
/// (module, block as profiles name it without the count, why)
const TIMING_DEPENDENT_BLOCKS: &[(&str, &str, &str)] = &[
    (
        "golang.org/x/sync@v0.11.0",
        "golang.org/x/sync/singleflight/singleflight.go:101.39,102.12 1",
        "`c.dups++` in Do runs only when two Do calls for one key overlap \
         (TestDoDupSuppress); livecov test -race hit it in 3 rounds of 3 where go test -race \
         did not",
    ),
    (
        "golang.org/x/sync@v0.11.0",
        "golang.org/x/sync/singleflight/singleflight.go:102.4,102.12 1",
        "the same block as Go 1.27 cuts it",
    ),
    (
        "github.com/hashicorp/golang-lru/v2@v2.0.7",
        "github.com/hashicorp/golang-lru/v2/expirable/expirable_lru.go:313.22,317.3 3",
        "deleteExpired sleeps only when the cleanup goroutine wakes before the oldest bucket's \
         newest entry expired, a race between a ticker and the entries' TTL; livecov test hit \
         it in 3 rounds of 3 where go test did not, on a busy machine",
    ),
    (
        "github.com/hashicorp/golang-lru/v2@v2.0.7",
        "github.com/hashicorp/golang-lru/v2/expirable/expirable_lru.go:314.3,317.1 3",
        "the same block as Go 1.27 cuts it",
    ),
];

/// `go test` arguments for both sides: no cache, no parallel tests, the skips of `module`
/// (those that only matter for counts too, when `counts`).
fn test_args(module: &str, counts: bool) -> Vec<String> {
    let mut args = vec!["-count=1".to_string(), "-parallel=1".to_string()];
    let skips: Vec<&str> = SKIPPED_TESTS
        .iter()
        .filter(|(m, _, _, only_counts)| *m == module && (counts || !only_counts))
        .map(|(_, test, _, _)| *test)
        .collect();
    if !skips.is_empty() {
        args.push(format!("-skip=^({})$", skips.join("|")));
    }
    args
}

fn native_profile(
    root: &Path,
    work: &Path,
    module: &str,
    mode: &str,
    run: usize,
    extra: &[&str],
) -> Result<Profile> {
    let file = work.join(format!("native-{mode}-{run}.out"));
    let mut args = vec!["test".to_string()];
    args.extend(test_args(module, mode == "count"));
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(format!("-covermode={mode}"));
    args.push(format!("-coverprofile={}", file.display()));
    args.push("./...".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Some upstream tests depend on timing and fail now and then on a busy machine: one retry.
    if let Err(first) = go(root, &args) {
        println!("go test failed, retrying once: {first:#}");
        go(root, &args)?;
    }
    Ok(read_profile(&file)?.1)
}

fn livecov_profile(
    root: &Path,
    work: &Path,
    module: &str,
    mode: Mode,
    extra: &[&str],
) -> Result<Profile> {
    let file = work.join(format!("livecov-{mode}.out"));
    let opts = gobuild::Options::new(mode, work.join("cache"));
    let mut args = test_args(module, mode == Mode::Count);
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("./...".into());
    let mut status = gobuild::test(&opts, root, &args, &file)?;
    if !status.success() {
        println!("livecov test failed, retrying once (as go test is)");
        status = gobuild::test(&opts, root, &args, &file)?;
    }
    if !status.success() {
        bail!(
            "livecov test {mode} {} failed ({status}) where go test passed",
            extra.join(" ")
        );
    }
    let (got_mode, blocks) = read_profile(&file)?;
    if got_mode != mode.as_str() {
        bail!("livecov test wrote mode {got_mode}, want {mode}");
    }
    Ok(blocks)
}

/// Rounds of runs at most: each round runs `go test` and `livecov test` once.
const MAX_ROUNDS: usize = 3;

fn compare_livecov_test(root: &Path, work: &Path, module: &str) -> Result<()> {
    let listed: BTreeSet<String> = TIMING_DEPENDENT_BLOCKS
        .iter()
        .filter(|(m, _, _)| *m == module)
        .map(|(_, block, _)| block.to_string())
        .collect();
    let counts = rounds(
        "count mode",
        &listed,
        |round| native_profile(root, work, module, "count", round, &[]),
        || livecov_profile(root, work, module, Mode::Count, &[]),
    )?;
    // What count mode found timing-dependent is timing-dependent under -race too.
    let known: BTreeSet<String> = listed.union(&counts.unstable).cloned().collect();
    let set = rounds(
        "set mode under -race",
        &known,
        // Go allows only atomic mode under -race; what it covered is what set mode marks.
        // Both sides run under -race, since it slows code enough to change timing-dependent
        // paths.
        |round| {
            let counts = native_profile(root, work, module, "atomic", round, &["-race"])?;
            Ok(counts.into_iter().map(|(b, c)| (b, c.min(1))).collect())
        },
        || livecov_profile(root, work, module, Mode::Set, &["-race"]),
    )?;
    let unstable: BTreeSet<&String> = counts.unstable.union(&set.unstable).collect();
    println!(
        "livecov test: {} blocks, counts equal to go test -covermode=count, covered blocks of set mode under -race equal to go test -race{}",
        counts.blocks,
        if unstable.is_empty() {
            String::new()
        } else {
            format!(
                " ({} blocks depend on timing, compared for presence only: {})",
                unstable.len(),
                unstable
                    .iter()
                    .take(5)
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    Ok(())
}

struct Rounds {
    blocks: usize,
    /// Blocks whose count changed between runs of one tool: they depend on timing.
    unstable: BTreeSet<String>,
}

/// Runs both tools, round after round, until every block's count agrees (or, for a block whose
/// count changes between runs of one tool, is known to depend on timing), for at most
/// [`MAX_ROUNDS`] rounds. A real difference is steady in both tools and repeats in every round.
/// Blocks in `timing` are known to depend on timing: only their presence is compared.
fn rounds(
    what: &str,
    timing: &BTreeSet<String>,
    native: impl Fn(usize) -> Result<Profile>,
    ours: impl Fn() -> Result<Profile>,
) -> Result<Rounds> {
    let mut seen: BTreeMap<String, (BTreeSet<u64>, BTreeSet<u64>)> = BTreeMap::new();
    let mut diffs = Vec::new();
    for round in 1..=MAX_ROUNDS {
        for (block, count) in native(round)? {
            seen.entry(block).or_default().0.insert(count);
        }
        for (block, count) in ours()? {
            seen.entry(block).or_default().1.insert(count);
        }
        diffs = seen
            .iter()
            .filter(|(block, (n, o))| {
                n.is_empty()
                    || o.is_empty()
                    || (n.len() == 1 && o.len() == 1 && n != o && !timing.contains(*block))
            })
            .map(|(block, (n, o))| format!("{block}: livecov {o:?}, go test {n:?}"))
            .collect();
        if diffs.is_empty() {
            break;
        }
    }
    if !diffs.is_empty() {
        bail!(
            "livecov test differs from go test in {what}, in {MAX_ROUNDS} rounds:\n  {}",
            diffs.join("\n  ")
        );
    }
    Ok(Rounds {
        blocks: seen.len(),
        unstable: seen
            .into_iter()
            .filter(|(block, (n, o))| n.len() > 1 || o.len() > 1 || timing.contains(block))
            .map(|(block, _)| block)
            .collect(),
    })
}
