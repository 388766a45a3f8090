//! Splitting `go build` arguments into the flags `go list` must see too and the package
//! patterns, so that livecov instruments exactly the packages the build will compile.

/// `go build` flags that take a value as the next argument when not written `-flag=value`.
const VALUE_FLAGS: &[&str] = &[
    "asmflags",
    "buildmode",
    "buildvcs",
    "C",
    "compiler",
    "gccgoflags",
    "gcflags",
    "installsuffix",
    "ldflags",
    "mod",
    "modfile",
    "o",
    "overlay",
    "p",
    "pgo",
    "pkgdir",
    "tags",
    "toolexec",
    "covermode",
    "coverpkg",
    // go test
    "bench",
    "benchtime",
    "blockprofile",
    "blockprofilerate",
    "count",
    "coverprofile",
    "cpu",
    "cpuprofile",
    "exec",
    "fuzz",
    "fuzzminimizetime",
    "fuzztime",
    "list",
    "memprofile",
    "memprofilerate",
    "mutexprofile",
    "mutexprofilefraction",
    "outputdir",
    "parallel",
    "run",
    "shuffle",
    "skip",
    "timeout",
    "trace",
    "vet",
];

/// Flags that change which packages and files a build compiles: `go list` gets them too.
const LIST_FLAGS: &[&str] = &["tags", "mod", "modfile", "race", "msan", "asan", "C", "pgo"];

/// The parts of a `go build` command line livecov needs to know.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GoArgs {
    /// Flags (with their values) to pass to `go list` as well.
    pub list_flags: Vec<String>,
    /// Package patterns; `["."]` when none are given.
    pub patterns: Vec<String>,
    /// A flag livecov cannot combine with its own (`-overlay`, `-cover…`), if any.
    pub conflicting: Option<String>,
    /// Whether dependencies come from `vendor/` (set by the caller, which can look at disk).
    pub vendor: bool,
    /// Whether `-race` is given.
    pub race: bool,
    /// The index of the first argument that is not a `go` flag (a package pattern, `--`,
    /// `-args`), or the number of arguments: where flags livecov adds go, after the user's.
    pub flags_end: usize,
}

/// Parses `go build` arguments.
pub fn parse(args: &[String]) -> GoArgs {
    let mut out = GoArgs {
        flags_end: args.len(),
        ..GoArgs::default()
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let first_other = out.patterns.is_empty() && out.flags_end == args.len();
        let is_flag = arg != "--" && arg != "-args" && arg != "--args" && arg.starts_with('-');
        if first_other && !is_flag {
            out.flags_end = i - 1;
        }
        if arg == "--" {
            out.patterns.extend(args[i..].iter().cloned());
            break;
        }
        if arg == "-args" || arg == "--args" {
            break; // The rest belongs to the test binary.
        }
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            out.patterns.push(arg.clone());
            continue;
        };
        let (name, inline_value) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let value = if inline_value.is_none() && VALUE_FLAGS.contains(&name) && i < args.len() {
            i += 1;
            Some(args[i - 1].clone())
        } else {
            inline_value
        };
        if matches!(
            name,
            "overlay" | "cover" | "covermode" | "coverpkg" | "coverprofile"
        ) {
            out.conflicting.get_or_insert_with(|| format!("-{name}"));
        }
        if name == "race" {
            out.race = value.as_deref().is_none_or(|v| v == "true");
        }
        if LIST_FLAGS.contains(&name) {
            out.list_flags.push(match value {
                Some(v) => format!("-{name}={v}"),
                None => format!("-{name}"),
            });
        }
    }
    if out.patterns.is_empty() {
        out.patterns.push(".".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn separates_flags_and_patterns() {
        let got = parse(&strings(&[
            "-o",
            "bin/app",
            "-tags",
            "prod,linux",
            "-race",
            "-ldflags=-s -w",
            "-trimpath",
            "./cmd/app",
        ]));
        assert_eq!(got.list_flags, ["-tags=prod,linux", "-race"]);
        assert_eq!(got.patterns, ["./cmd/app"]);
        assert_eq!(got.conflicting, None);
        assert!(got.race);
        assert_eq!(got.flags_end, 7);
    }

    #[test]
    fn knows_go_test_flags() {
        let got = parse(&strings(&[
            "-run", "TestX", "-count=1", "-v", "./...", "-args", "-custom", "value",
        ]));
        assert_eq!(got.patterns, ["./..."]);
        assert_eq!(got.flags_end, 4);
        assert!(!got.race);
        assert_eq!(parse(&strings(&["-v", "--", "x"])).flags_end, 1);
        assert_eq!(parse(&strings(&["-v"])).flags_end, 1);
        assert!(!parse(&strings(&["-race=false"])).race);
        assert_eq!(
            parse(&strings(&["-coverprofile", "c.out"]))
                .conflicting
                .as_deref(),
            Some("-coverprofile")
        );
    }

    #[test]
    fn defaults_to_the_current_package() {
        assert_eq!(parse(&strings(&["-v"])).patterns, ["."]);
    }

    #[test]
    fn reports_flags_that_conflict() {
        let got = parse(&strings(&["-overlay", "x.json", "."]));
        assert_eq!(got.conflicting.as_deref(), Some("-overlay"));
        assert_eq!(got.patterns, ["."]);
        assert_eq!(
            parse(&strings(&["-cover"])).conflicting.as_deref(),
            Some("-cover")
        );
    }
}
