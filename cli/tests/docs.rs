//! Keeps `docs/CLI.md` and `docs/CONFIGURATION.md` true to the `livecov` executable and to the
//! agent.
//!
//! The command tree comes from the built binary's help (`livecov help`, `livecov COMMAND
//! --help`): the binary's clap types live in `src/main.rs`, out of a test's reach, and the help
//! is what users read anyway. From it: the subcommands, each one's flags, and each flag's
//! `[env: …]` and `[default: …]`. The agent's variables are the `LIVECOV_…` names in the
//! non-test Go files of `agent-go/`. Positional arguments, and the go arguments that `build`
//! and `test` take after `--`, are not flags and are not checked.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The help text `livecov ARGS` prints, with no environment: a variable set around the test
/// would show up as `[env: NAME=value]`.
fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_livecov"))
        .args(args)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "livecov {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A flag as the help shows it.
#[derive(Debug)]
struct Flag {
    /// `--name`.
    name: String,
    env: Option<String>,
    default: Option<String>,
}

/// A subcommand and its flags.
#[derive(Debug)]
struct Subcommand {
    name: String,
    flags: Vec<Flag>,
}

impl Subcommand {
    fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }
}

/// The lines of the section of a help text that starts with the line `title`: up to the next
/// line that is neither empty nor indented (such as the `Example: …` after the options).
fn section<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| *l != title)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

/// The subcommands `livecov help` lists, without `help` itself.
fn subcommand_names(top: &str) -> Vec<String> {
    section(top, "Commands:")
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

const MARKERS: &[&str] = &[
    "[env: ",
    "[default: ",
    "[possible values: ",
    "[aliases: ",
    "[short aliases: ",
];

fn is_marker(s: &str) -> bool {
    s.ends_with(']') && MARKERS.iter().any(|m| s.starts_with(m))
}

/// The `[…]` markers clap puts at the end of a one-line flag entry (`--json  Print … [env: X=]
/// [default: y]`), last first.
fn trailing_markers(line: &str) -> Vec<&str> {
    let mut rest = line.trim_end();
    let mut out = Vec::new();
    while rest.ends_with(']') {
        let Some(start) = rest
            .rmatch_indices(" [")
            .map(|(i, _)| i + 1)
            .find(|&i| is_marker(&rest[i..]))
        else {
            break;
        };
        out.push(&rest[start..]);
        rest = rest[..start].trim_end();
    }
    out
}

/// The flags in the `Options:` section of a help text. An entry starts with a line indented
/// less than the descriptions (`  -h, --help`, `      --mode <MODE>`). In the long form, each
/// marker has a line of its own (a `[default: …]` inside a description is prose, not clap's);
/// in the one-line form, the markers end the line.
fn parse_flags(help: &str) -> Vec<Flag> {
    let mut entries: Vec<Vec<&str>> = Vec::new();
    for line in section(help, "Options:") {
        let indent = line.len() - line.trim_start().len();
        if indent < 10 && line.trim_start().starts_with('-') {
            entries.push(vec![line]);
        } else if let Some(entry) = entries.last_mut() {
            entry.push(line);
        }
    }
    entries
        .iter()
        .map(|entry| {
            let name = entry[0]
                .split_whitespace()
                .map(|w| w.trim_end_matches(','))
                .find(|w| w.starts_with("--"))
                .unwrap_or_else(|| panic!("a flag without a long name: {:?}", entry[0]))
                .to_string();
            let mut markers = trailing_markers(entry[0]);
            markers.extend(entry[1..].iter().map(|l| l.trim()).filter(|l| is_marker(l)));
            let value = |prefix: &str| {
                markers
                    .iter()
                    .find_map(|m| m.strip_prefix(prefix)?.strip_suffix(']'))
            };
            let env = value("[env: ").map(|v| {
                v.split('=').next().unwrap().to_string() // `NAME=value`, or `NAME` when hidden
            });
            let default = value("[default: ").map(str::to_string);
            Flag { name, env, default }
        })
        .collect()
}

fn command_tree() -> (Vec<Flag>, Vec<Subcommand>) {
    let top = help(&["help"]);
    let subcommands: Vec<Subcommand> = subcommand_names(&top)
        .into_iter()
        .map(|name| {
            let own = help(&[&name, "--help"]);
            // A command with commands of its own (`session start`) is documented in one
            // section: its flags are those of all of them.
            let mut flags = parse_flags(&own);
            for nested in subcommand_names(&own) {
                for flag in parse_flags(&help(&[&name, &nested, "--help"])) {
                    if !flags.iter().any(|f| f.name == flag.name) {
                        flags.push(flag);
                    }
                }
            }
            Subcommand { flags, name }
        })
        .collect();
    assert!(
        subcommands.len() >= 9 && subcommands.iter().any(|s| s.name == "server"),
        "the help's command list did not parse: {subcommands:?}"
    );
    let server = subcommands.iter().find(|s| s.name == "server").unwrap();
    assert!(
        server.flag("--listen").and_then(|f| f.env.as_deref()) == Some("LIVECOV_LISTEN"),
        "the help's flags did not parse: {server:?}"
    );
    (parse_flags(&top), subcommands)
}

/// Whether `word` occurs in `text` on its own: not inside a longer flag or variable name.
fn mentions(text: &str, word: &str) -> bool {
    let part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    text.match_indices(word).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(part)
            && !text[i + word.len()..].chars().next().is_some_and(part)
    })
}

/// The `--flag` names in `text`.
fn flag_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("--") {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-') {
            continue;
        }
        let name: String = text[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .collect();
        if name.starts_with(|c: char| c.is_ascii_lowercase()) {
            out.insert(format!("--{}", name.trim_end_matches('-')));
        }
    }
    out
}

/// The `LIVECOV_…` names in `text`.
fn livecov_vars(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("LIVECOV_") {
        if text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let name = name.trim_end_matches('_');
        if name.len() > "LIVECOV_".len() {
            out.insert(name.to_string());
        }
    }
    out
}

/// The contents of the files in `dir` whose names end with `ext`, without test files.
fn sources(dir: &str, ext: &str) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(ext) && !name.ends_with(&format!("_test{ext}"))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.display().to_string(), text)
        })
        .collect()
}

/// The variables the agent reads: every `LIVECOV_…` in the non-test files of `agent-go/`.
fn agent_vars() -> BTreeSet<String> {
    let files = sources("agent-go", ".go");
    assert!(
        files.iter().any(|(p, _)| p.ends_with("agent.go")),
        "no agent-go/agent.go"
    );
    let vars: BTreeSet<String> = files.iter().flat_map(|(_, t)| livecov_vars(t)).collect();
    assert!(vars.contains("LIVECOV_AGENT_ADDR"), "{vars:?}");
    vars
}

/// A markdown document's headings and the lines under each (up to the next heading of the same
/// or a higher level), outside code blocks.
struct Doc<'a> {
    /// (level, text without `#` and backticks, line index)
    headings: Vec<(usize, String, usize)>,
    /// Each line, and whether it is inside a code block.
    lines: Vec<(&'a str, bool)>,
}

impl<'a> Doc<'a> {
    fn new(text: &'a str) -> Doc<'a> {
        let mut lines = Vec::new();
        let mut headings = Vec::new();
        let mut code = false;
        for (i, line) in text.lines().enumerate() {
            if line.starts_with("```") {
                code = !code;
                lines.push((line, true));
                continue;
            }
            if !code && line.starts_with('#') {
                let level = line.len() - line.trim_start_matches('#').len();
                let title = line[level..].trim().replace('`', "");
                headings.push((level, title, i));
            }
            lines.push((line, code));
        }
        Doc { headings, lines }
    }

    /// The lines of the section headed `title`, outside code blocks; None without one.
    fn section(&self, title: &str) -> Option<Vec<&'a str>> {
        let at = self.headings.iter().position(|(_, t, _)| t == title)?;
        let (level, _, start) = self.headings[at];
        let end = self.headings[at + 1..]
            .iter()
            .find(|(l, _, _)| *l <= level)
            .map_or(self.lines.len(), |(_, _, i)| *i);
        Some(
            self.lines[start + 1..end]
                .iter()
                .filter(|(_, code)| !code)
                .map(|(l, _)| *l)
                .collect(),
        )
    }
}

/// The rows of the flag tables in `lines`: (the flag, the cells). A row belongs to a flag
/// table when its first cell names a `--flag`.
fn flag_rows(lines: &[&str]) -> Vec<(String, Vec<String>)> {
    lines
        .iter()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<String> = l
                .trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            let flags = flag_names(&cells[0]);
            let flag = flags.iter().next()?.clone();
            assert_eq!(flags.len(), 1, "one flag per row: {l}");
            Some((flag, cells))
        })
        .collect()
}

fn unquote(cell: &str) -> String {
    cell.replace('`', "").trim().to_string()
}

fn check(problems: Vec<String>, doc: &str) {
    assert!(
        problems.is_empty(),
        "{doc} is out of date:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn cli_md_documents_every_command_and_flag() {
    let (top_flags, subcommands) = command_tree();
    let text = read("docs/CLI.md");
    let doc = Doc::new(&text);
    let mut problems = Vec::new();

    for sub in &subcommands {
        let title = format!("livecov {}", sub.name);
        let Some(section) = doc.section(&title) else {
            problems.push(format!("no heading `{title}`"));
            continue;
        };
        let rows = flag_rows(&section);
        for flag in &sub.flags {
            // --help is every command's; it is documented once, under Conventions.
            if flag.name == "--help" {
                continue;
            }
            let Some((_, cells)) = rows.iter().find(|(f, _)| *f == flag.name) else {
                problems.push(format!("{title}: no row for {} in a flag table", flag.name));
                continue;
            };
            if cells.len() < 4 {
                problems.push(format!(
                    "{title} {}: want the columns flag | env | default | what",
                    flag.name
                ));
                continue;
            }
            let env = unquote(&cells[1]);
            if env != flag.env.clone().unwrap_or_default() {
                problems.push(format!(
                    "{title} {}: env column {env:?}, the help says {:?}",
                    flag.name, flag.env
                ));
            }
            if let Some(default) = &flag.default
                && !unquote(&cells[2]).contains(default.as_str())
            {
                problems.push(format!(
                    "{title} {}: default column {:?} does not say {default:?}",
                    flag.name, cells[2]
                ));
            }
        }
        // The reverse: a flag the tables name must exist, so that removed flags do not linger.
        for (flag, _) in &rows {
            if sub.flag(flag).is_none() {
                problems.push(format!("{title}: {flag} is not a flag of the command"));
            }
        }
    }

    for (_, heading, _) in &doc.headings {
        if let Some(name) = heading.strip_prefix("livecov ")
            && !subcommands.iter().any(|s| s.name == name)
        {
            problems.push(format!("heading `{heading}`: no such command"));
        }
    }

    let every_flag: BTreeSet<&str> = top_flags
        .iter()
        .chain(subcommands.iter().flat_map(|s| &s.flags))
        .map(|f| f.name.as_str())
        .collect();
    for flag in &top_flags {
        if !mentions(&text, &flag.name) {
            problems.push(format!("`livecov {}` is not mentioned", flag.name));
        }
    }
    // Anywhere in the text, examples included, `--name` is a livecov flag.
    for flag in flag_names(&text) {
        if !every_flag.contains(flag.as_str()) {
            problems.push(format!("{flag} is no flag of any livecov command"));
        }
    }
    check(problems, "docs/CLI.md");
}

#[test]
fn configuration_md_documents_every_setting() {
    let (_, subcommands) = command_tree();
    let text = read("docs/CONFIGURATION.md");
    let mut problems = Vec::new();

    let mut read_by_livecov = BTreeSet::new();
    for sub in &subcommands {
        for flag in &sub.flags {
            let Some(env) = &flag.env else { continue };
            read_by_livecov.insert(env.clone());
            if !mentions(&text, env) {
                problems.push(format!(
                    "{env} (livecov {} {}) is not mentioned",
                    sub.name, flag.name
                ));
            }
            if !mentions(&text, &flag.name) {
                problems.push(format!(
                    "livecov {} {} (env {env}) is not mentioned",
                    sub.name, flag.name
                ));
            }
        }
    }
    let agent = agent_vars();
    for var in &agent {
        if !mentions(&text, var) {
            problems.push(format!("{var} (read by agent-go) is not mentioned"));
        }
    }

    // The reverse: every LIVECOV_ variable named is read somewhere: by livecov, the agent, or
    // the tests' and benchmarks' helpers.
    let mut known: BTreeSet<String> = read_by_livecov.union(&agent).cloned().collect();
    for dir in ["testkit/src", "bench/src"] {
        for (_, source) in sources(dir, ".rs") {
            known.extend(livecov_vars(&source));
        }
    }
    for var in livecov_vars(&text) {
        if !known.contains(&var) {
            problems.push(format!("{var} is read by nothing"));
        }
    }
    check(problems, "docs/CONFIGURATION.md");
}

#[test]
fn the_help_parser_reads_both_layouts() {
    let long = "Options:\n      --cache-dir <DIR>\n          Where [default: prose]\n          \n          [env: LIVECOV_CACHE=]\n\n      --mode <MODE>\n          How\n          \n          [default: set]\n\n  -h, --help\n          Print help\n";
    let flags = parse_flags(long);
    assert_eq!(flags.len(), 3, "{flags:?}");
    assert_eq!(flags[0].name, "--cache-dir");
    assert_eq!(flags[0].env.as_deref(), Some("LIVECOV_CACHE"));
    assert_eq!(flags[0].default, None);
    assert_eq!(flags[1].default.as_deref(), Some("set"));
    assert_eq!(flags[2].name, "--help");

    let short = "Options:\n      --server <URL>   The server [env: LIVECOV_SERVER=http://x] [default: http://[::1]:7777]\n      --token <TOKEN>  Token [env: LIVECOV_ADMIN_TOKEN]\n      --json           JSON\n  -h, --help           Print help\n\nExample: livecov x --nope\n";
    let flags = parse_flags(short);
    assert_eq!(flags.len(), 4, "{flags:?}");
    assert_eq!(flags[0].env.as_deref(), Some("LIVECOV_SERVER"));
    assert_eq!(flags[0].default.as_deref(), Some("http://[::1]:7777"));
    assert_eq!(flags[1].env.as_deref(), Some("LIVECOV_ADMIN_TOKEN"));
    assert_eq!(flags[2].env, None);

    assert!(mentions("`LIVECOV_DIR` and", "LIVECOV_DIR"));
    assert!(!mentions("LIVECOV_TEST_DIR", "LIVECOV_DIR"));
    assert!(!mentions("--server-url", "--server"));
    assert_eq!(
        flag_names("a `--mode MODE` -- -o x |---|---| go -cover b--c"),
        BTreeSet::from(["--mode".to_string()])
    );
    assert_eq!(
        livecov_vars("x LIVECOV_A_B=1 LIVECOV_ XLIVECOV_C"),
        BTreeSet::from(["LIVECOV_A_B".to_string()])
    );
}

/// Every command's `--help` explains each of its arguments, and names each variable without a
/// value (clap shows `[env: NAME=]` for an unset one unless told to hide values).
#[test]
fn every_argument_and_variable_is_explained() {
    let top = help(&["help"]);
    let mut commands: Vec<Vec<String>> = Vec::new();
    for name in subcommand_names(&top) {
        let own = help(&[&name, "--help"]);
        let nested = subcommand_names(&own);
        if nested.is_empty() {
            commands.push(vec![name]);
        } else {
            commands.extend(nested.into_iter().map(|n| vec![name.clone(), n]));
        }
    }
    let mut problems = Vec::new();
    for command in &commands {
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        args.push("--help");
        let text = help(&args);
        // Short help, one line per argument: `  <NAME>  what it is`.
        let short = help(&[&args[..args.len() - 1], &["-h"]].concat());
        for line in section(&short, "Arguments:") {
            let line = line.trim();
            if line.starts_with('<') || line.starts_with('[') {
                let what = line.split_once("  ").map_or("", |(_, w)| w.trim());
                if what.is_empty() {
                    problems.push(format!("livecov {}: {line} has no help", command.join(" ")));
                }
            }
        }
        for (at, _) in text.match_indices("[env: ") {
            if text[at..]
                .split(']')
                .next()
                .is_some_and(|m| m.ends_with('='))
            {
                let command = command.join(" ");
                problems.push(format!("livecov {command}: a dangling [env: NAME=]"));
            }
        }
    }
    assert!(commands.len() >= 12, "{commands:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
