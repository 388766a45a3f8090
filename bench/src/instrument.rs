//! Instrumentation throughput: livecov's in-process [`instrumenter::instrument`] against
//! `go tool cover` driven the way `go build -cover` drives it, one process per package
//! (`-pkgcfg` mode), and against cover's legacy one-process-per-file mode.
//!
//! The input is real Go: a few pinned modules from the module proxy and the standard
//! library's `net/http` tree. The cover binary is built and cached before anything is timed,
//! and every contender gets one untimed pass so that no one pays for a cold page cache; then
//! each run times every contender in turn, so that a slow spell of the machine hits them
//! alike, and the table reports the median run.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use instrumenter::{Mode, Options};
use livecov_testkit::{MODULES, json_string};

/// The standard library tree, under `$GOROOT/src`.
const STD_TREE: &str = "net/http";

struct Package {
    /// Where the source came from: a module@version or the std tree.
    source: String,
    import_path: String,
    /// The Go package name, from the first file's package clause.
    name: String,
    module_path: Option<String>,
    files: Vec<GoFile>,
}

struct GoFile {
    path: PathBuf,
    /// `importpath/file.go`, as coverage profiles name it.
    profile_name: String,
    src: Vec<u8>,
}

impl Package {
    fn bytes(&self) -> usize {
        self.files.iter().map(|f| f.src.len()).sum()
    }
}

/// `livecov-bench instrument`'s flags.
#[derive(clap::Args)]
pub struct Args {
    /// Timed runs of each contender.
    #[arg(long, default_value_t = 5, value_parser = crate::common::positive)]
    runs: usize,
}

pub fn run(Args { runs }: Args) -> Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("livecov-bench: warning: debug build, livecov's figures mean nothing");
    }
    let scratch = tempfile::Builder::new()
        .prefix("livecov-bench-")
        .tempdir()?;
    let scratch = scratch.path();
    let packages = load_packages()?;
    let cover = cover_binary()?;

    // Largest first, so that with two threads neither contender is left waiting on one big
    // item picked up last.
    let mut files: Vec<&GoFile> = packages.iter().flat_map(|p| &p.files).collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.src.len()));
    let mut by_size: Vec<&Package> = packages.iter().collect();
    by_size.sort_by_key(|p| std::cmp::Reverse(p.bytes()));
    let pkg_jobs = by_size
        .iter()
        .enumerate()
        .map(|(i, p)| pkgcfg_job(scratch, i, p))
        .collect::<Result<Vec<_>>>()?;
    let legacy_dir = scratch.join("legacy");
    std::fs::create_dir_all(&legacy_dir)?;
    let file_jobs: Vec<Job> = files
        .iter()
        .enumerate()
        .map(|(i, f)| Job {
            dir: legacy_dir.clone(),
            args: vec![
                "-mode=set".into(),
                format!("-var=GoCover_{i}").into(),
                "-o".into(),
                format!("{i}.go").into(),
                f.path.clone().into(),
            ],
        })
        .collect();

    // Cut as the Go on PATH cuts: its cover binary is the other contender.
    let go_version = livecov_testkit::go(scratch, &["env", "GOVERSION"])?;
    let rules = instrumenter::version::rules_for(go_version.trim())?;
    eprintln!(
        "{}: blocks by the rules of {}",
        go_version.trim(),
        rules.releases()
    );
    let opts = Options {
        mode: Mode::Set,
        rules,
        ..Options::default()
    };
    let livecov = |f: &&GoFile| -> Result<()> {
        let out = instrumenter::instrument(&f.profile_name, &f.src, &opts)
            .map_err(|e| anyhow::anyhow!("{}:{e}", f.path.display()))?;
        std::hint::black_box(out);
        Ok(())
    };
    let mut contenders = [
        Contender::new(Kind::Livecov, 1),
        Contender::new(Kind::Livecov, 2),
        Contender::new(Kind::PkgCfg, 1),
        Contender::new(Kind::PkgCfg, 2),
        Contender::new(Kind::Legacy, 1),
    ];
    for run in 0..=runs {
        for c in &mut contenders {
            let took = match c.kind {
                Kind::Livecov => timed(&files, c.threads, livecov)?,
                Kind::PkgCfg => timed(&pkg_jobs, c.threads, |j| j.run(&cover))?,
                Kind::Legacy => timed(&file_jobs, c.threads, |j| j.run(&cover))?,
            };
            // Run 0 is the warm-up.
            if run > 0 {
                c.times.push(took);
            }
        }
    }

    print_report(&packages, &contenders, runs, &cover)
}

#[derive(Clone, Copy)]
enum Kind {
    Livecov,
    PkgCfg,
    Legacy,
}

struct Contender {
    kind: Kind,
    threads: usize,
    times: Vec<Duration>,
}

impl Contender {
    fn new(kind: Kind, threads: usize) -> Contender {
        Contender {
            kind,
            threads,
            times: Vec::new(),
        }
    }

    fn label(&self) -> &'static str {
        match self.kind {
            Kind::Livecov => "livecov, in process",
            Kind::PkgCfg => "`go tool cover -pkgcfg`, one process per package",
            Kind::Legacy => "`go tool cover -mode=set`, one process per file",
        }
    }

    fn median(&self) -> f64 {
        let mut t: Vec<f64> = self.times.iter().map(Duration::as_secs_f64).collect();
        t.sort_by(f64::total_cmp);
        let n = t.len();
        if n % 2 == 1 {
            t[n / 2]
        } else {
            (t[n / 2 - 1] + t[n / 2]) / 2.0
        }
    }
}

/// Runs `work` on every item, `threads` at a time, and returns the wall time.
fn timed<T: Sync>(
    items: &[T],
    threads: usize,
    work: impl Fn(&T) -> Result<()> + Sync,
) -> Result<Duration> {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                        work(item)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker panicked")?;
        }
        Ok(())
    })?;
    Ok(start.elapsed())
}

/// One run of the cover binary.
struct Job {
    dir: PathBuf,
    args: Vec<OsString>,
}

impl Job {
    fn run(&self, cover: &Path) -> Result<()> {
        let out = Command::new(cover)
            .current_dir(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", cover.display()))?;
        if !out.status.success() {
            bail!(
                "cover {:?} failed: {}",
                self.args,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

/// The cover invocation `go build -cover` makes for `pkg` (cmd/go/internal/work/exec.go,
/// `Builder.cover`), with its config files written into a directory of its own.
fn pkgcfg_job(scratch: &Path, i: usize, pkg: &Package) -> Result<Job> {
    let objdir = scratch.join(format!("pkg{i}"));
    std::fs::create_dir_all(&objdir)?;
    let module = pkg
        .module_path
        .as_deref()
        .map(|m| format!(",\"ModulePath\":{}", json_string(m)))
        .unwrap_or_default();
    let config = format!(
        "{{\"OutConfig\":{},\"PkgPath\":{},\"PkgName\":{},\"Granularity\":\"perblock\"{module},\"Local\":false}}\n",
        json_string(&objdir.join("coveragecfg").to_string_lossy()),
        json_string(&pkg.import_path),
        json_string(&pkg.name),
    );
    std::fs::write(objdir.join("pkgcfg.txt"), config)?;
    // The first output is the file that declares the counters and meta-data.
    let mut outputs = format!("{}\n", objdir.join("covervars.go").display());
    for j in 0..pkg.files.len() {
        outputs += &format!("{}\n", objdir.join(format!("{j}.cover.go")).display());
    }
    std::fs::write(objdir.join("coveroutfiles.txt"), outputs)?;

    let mut args: Vec<OsString> = [
        "-pkgcfg",
        "pkgcfg.txt",
        "-mode",
        "set",
        "-var",
        &format!("goCover_{i:012x}_"),
        "-outfilelist",
        "coveroutfiles.txt",
    ]
    .map(OsString::from)
    .into();
    args.extend(pkg.files.iter().map(|f| f.path.clone().into()));
    Ok(Job { dir: objdir, args })
}

/// The cover binary itself: `go build -cover` runs it directly, not through `go tool`, whose
/// extra process would be counted against cover. `go tool -n` builds it if need be.
fn cover_binary() -> Result<PathBuf> {
    let path = go(&["tool", "-n", "cover"])?;
    Ok(PathBuf::from(path.trim()))
}

/// Downloads the modules and reads every package into memory.
fn load_packages() -> Result<Vec<Package>> {
    let mut packages = Vec::new();
    for module in MODULES {
        let dir = livecov_testkit::download(module)?;
        let path = module.split('@').next().unwrap_or(module);
        read_tree(module, Path::new(&dir), path, Some(path), &mut packages)?;
    }
    let std_dir = livecov_testkit::goroot_src()?.join(STD_TREE);
    read_tree(
        &format!("$GOROOT/src/{STD_TREE}"),
        &std_dir,
        STD_TREE,
        None,
        &mut packages,
    )?;
    Ok(packages)
}

/// Adds one package per directory under `root` that holds non-test Go files.
fn read_tree(
    source: &str,
    root: &Path,
    import_root: &str,
    module_path: Option<&str>,
    out: &mut Vec<Package>,
) -> Result<()> {
    let mut dirs: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    walk(root, &mut dirs)?;
    for (dir, mut paths) in dirs {
        paths.sort();
        let rel = dir.strip_prefix(root)?.to_string_lossy().replace('\\', "/");
        let import_path = match rel.as_str() {
            "" => import_root.to_string(),
            _ => format!("{import_root}/{rel}"),
        };
        let files = paths
            .into_iter()
            .map(|path| {
                let src =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                let base = path.file_name().unwrap_or_default().to_string_lossy();
                Ok(GoFile {
                    profile_name: format!("{import_path}/{base}"),
                    path,
                    src,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(Package {
            source: source.to_string(),
            name: package_name(&files[0].src)
                .with_context(|| format!("no package clause in {}", files[0].path.display()))?,
            import_path,
            module_path: module_path.map(str::to_string),
            files,
        });
    }
    Ok(())
}

fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<PathBuf>>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_dir() {
            if name != "testdata" {
                walk(&path, out)?;
            }
        } else if name.ends_with(".go") && !name.ends_with("_test.go") {
            out.entry(dir.to_path_buf()).or_default().push(path);
        }
    }
    Ok(())
}

/// cover only records the name in the package's meta-data, so the first line that reads
/// `package NAME` is close enough.
fn package_name(src: &[u8]) -> Option<String> {
    String::from_utf8_lossy(src)
        .lines()
        .find_map(|l| l.strip_prefix("package "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
}

fn print_report(
    packages: &[Package],
    contenders: &[Contender],
    runs: usize,
    cover: &Path,
) -> Result<()> {
    let mb = |bytes: usize| bytes as f64 / 1e6;
    let total: usize = packages.iter().map(Package::bytes).sum();

    println!("## Input\n");
    println!("| source | files | packages | MB |");
    println!("|---|---:|---:|---:|");
    let mut sources: Vec<&str> = packages.iter().map(|p| p.source.as_str()).collect();
    sources.dedup();
    for source in sources {
        let pkgs: Vec<&Package> = packages.iter().filter(|p| p.source == source).collect();
        let files: usize = pkgs.iter().map(|p| p.files.len()).sum();
        let bytes: usize = pkgs.iter().map(|p| p.bytes()).sum();
        println!("| {source} | {files} | {} | {:.3} |", pkgs.len(), mb(bytes));
    }
    let files: usize = packages.iter().map(|p| p.files.len()).sum();
    println!(
        "| **total** | **{files}** | **{}** | **{:.3}** |",
        packages.len(),
        mb(total)
    );

    println!("\n## Results (median of {runs} runs)\n");
    println!("| contender | threads | median s | MB/s | time vs livecov |");
    println!("|---|---:|---:|---:|---:|");
    for c in contenders {
        let livecov = contenders
            .iter()
            .find(|l| matches!(l.kind, Kind::Livecov) && l.threads == c.threads)
            .context("no livecov figure for this thread count")?;
        println!(
            "| {} | {} | {:.3} | {:.1} | {:.2}× |",
            c.label(),
            c.threads,
            c.median(),
            mb(total) / c.median(),
            c.median() / livecov.median()
        );
    }

    crate::common::print_machine("instrument", ("cover binary (`go tool -n cover`)", cover))?;
    Ok(())
}

/// Runs `go ARGS` outside any module and returns its standard output.
fn go(args: &[&str]) -> Result<String> {
    livecov_testkit::go(&std::env::temp_dir(), args)
}
