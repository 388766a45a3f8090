//! Conformance on real code: pinned modules fetched through the Go module proxy.
//!
//! For each module:
//! 1. every non-test `.go` file is compared with `go tool cover`, block for block, in order;
//! 2. every package builds and passes `go vet` with all its files rewritten, in each mode
//!    (the rewritten files reach `go` through `-overlay`, as `livecov build` does);
//! 3. `go test -coverprofile` (which drives cover the way `go build -cover` does, per package)
//!    lists exactly the blocks the instrumenter finds, file by file.

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
            let meta = instrumenter::analyze(&name, &std::fs::read(pkg.dir.join(file))?)?;
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
