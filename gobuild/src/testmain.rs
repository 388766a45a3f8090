//! Getting a test binary to write its coverage when its tests are done.
//!
//! Go has no exit hook, and `testing` offers none to a coverage tool that is not Go's own. What
//! every test binary does run is `TestMain`'s call to `m.Run()`, or the default `TestMain` when
//! the package has none. So:
//!
//! * a package without `TestMain` gets one, added as a new `_test.go` file through the overlay:
//!   `os.Exit(agent.AfterRun(m.Run(), "importpath"))`;
//! * a package with its own `TestMain(m *testing.M)` keeps it, with each `m.Run()` inside it
//!   wrapped the same way, on the same line, so that line numbers in test output stay true;
//!   `/*line*/` directives after each insertion keep columns and the file's name true too.
//!
//! `AfterRun` writes the counters of the package under test and returns the exit code
//! unchanged.

use tree_sitter::{Node, Parser};

/// Where the user's `TestMain` calls `m.Run()`: byte ranges of each call, to wrap.
#[derive(Debug, PartialEq, Eq)]
pub struct UserTestMain {
    pub run_calls: Vec<(usize, usize)>,
    /// Offset right after the package name, where an import can be added on the same line.
    pub package_name_end: usize,
    /// Offset of the `package` keyword.
    pub package_start: usize,
}

/// Finds `func TestMain(m *testing.M)` in a test file; `None` when the file has none (or does
/// not parse: `go test` will say why).
pub fn find(src: &[u8]) -> Option<UserTestMain> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_go::LANGUAGE.into())
        .expect("tree-sitter-go is ABI-compatible with the linked tree-sitter");
    let tree = parser.parse(src, None)?;
    let root = tree.root_node();
    let mut cursor = root.walk();
    let children: Vec<Node> = root.named_children(&mut cursor).collect();
    let clause = children.iter().find(|n| n.kind() == "package_clause")?;
    let (package_start, package_name_end) = (clause.start_byte(), clause.end_byte());
    let func = children.iter().find(|n| {
        n.kind() == "function_declaration"
            && n.child_by_field_name("name")
                .map(|name| &src[name.byte_range()])
                == Some(b"TestMain".as_slice())
    })?;
    let params = func.child_by_field_name("parameters")?;
    let mut pc = params.walk();
    let param = params
        .named_children(&mut pc)
        .find(|n| n.kind() == "parameter_declaration")?;
    let name = param.child_by_field_name("name")?;
    let m = &src[name.byte_range()];
    let body = func.child_by_field_name("body")?;
    let mut run_calls = Vec::new();
    collect_run_calls(body, src, m, &mut run_calls);
    Some(UserTestMain {
        run_calls,
        package_name_end,
        package_start,
    })
}

/// Every `m.Run()` call under `node`.
fn collect_run_calls(node: Node, src: &[u8], m: &[u8], out: &mut Vec<(usize, usize)>) {
    if node.kind() == "call_expression"
        && let Some(fun) = node.child_by_field_name("function")
        && fun.kind() == "selector_expression"
        && fun
            .child_by_field_name("operand")
            .map(|o| &src[o.byte_range()])
            == Some(m)
        && fun
            .child_by_field_name("field")
            .map(|f| &src[f.byte_range()])
            == Some(b"Run".as_slice())
    {
        out.push((node.start_byte(), node.end_byte()));
        return;
    }
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        collect_run_calls(child, src, m, out);
    }
}

/// The user's test file with each `m.Run()` of its `TestMain` wrapped in `AfterRun`. With
/// `source_path` (the file's path as `go` names it), a `/*line*/` directive before the
/// `package` keyword and after each insertion gives everything the user's position, as the
/// instrumenter does for counters (`instrumenter::Options::source_path`); a file with line
/// directives of its own gets none.
pub fn wrap(
    src: &[u8],
    found: &UserTestMain,
    agent_import: &str,
    import_path: &str,
    source_path: Option<&str>,
) -> Vec<u8> {
    let has_own = src
        .windows(7)
        .any(|w| w[0] == b'/' && matches!(w[1], b'/' | b'*') && &w[2..] == b"line ");
    let path = source_path.filter(|p| !has_own && !p.contains("*/") && !p.contains(['\n', '\r']));
    // `/*line :L:C*/`, L and C those of `offset` in `src` (the name stays in effect), or
    // `/*line PATH:L:C*/` to name the file.
    let directive = |offset: usize, named: bool| match path {
        Some(path) => {
            let line_start = src[..offset]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let line = 1 + src[..offset].iter().filter(|&&b| b == b'\n').count();
            let name = if named { path } else { "" };
            format!("/*line {name}:{line}:{}*/", offset - line_start + 1)
        }
        None => String::new(),
    };
    let mut out = Vec::with_capacity(src.len() + 128);
    out.extend_from_slice(&src[..found.package_start]);
    out.extend_from_slice(directive(found.package_start, true).as_bytes());
    out.extend_from_slice(&src[found.package_start..found.package_name_end]);
    out.extend_from_slice(format!("; import _livecov_agent {agent_import:?}").as_bytes());
    out.extend_from_slice(directive(found.package_name_end, false).as_bytes());
    let mut copied = found.package_name_end;
    for &(start, end) in &found.run_calls {
        out.extend_from_slice(&src[copied..start]);
        out.extend_from_slice(b"_livecov_agent.AfterRun(");
        out.extend_from_slice(directive(start, false).as_bytes());
        out.extend_from_slice(&src[start..end]);
        out.extend_from_slice(format!(", {import_path:?})").as_bytes());
        out.extend_from_slice(directive(end, false).as_bytes());
        copied = end;
    }
    out.extend_from_slice(&src[copied..]);
    out
}

/// A `TestMain` for a package that has none.
pub fn generated(package: &str, agent_import: &str, import_path: &str) -> String {
    format!(
        "package {package}\n\nimport (\n\t\"os\"\n\t\"testing\"\n\n\t_livecov_agent {agent_import:?}\n)\n\n\
         func TestMain(m *testing.M) {{\n\tos.Exit(_livecov_agent.AfterRun(m.Run(), {import_path:?}))\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_every_run_of_the_users_test_main() {
        let src = b"package p_test\n\nimport (\n\t\"os\"\n\t\"testing\"\n)\n\nfunc TestMain(tm *testing.M) {\n\tsetup()\n\tif flaky {\n\t\tos.Exit(tm.Run())\n\t}\n\tcode := tm.Run()\n\tos.Exit(code)\n}\n\nfunc other(m *testing.M) { m.Run() }\n";
        let found = find(src).unwrap();
        assert_eq!(found.run_calls.len(), 2);
        let out = String::from_utf8(wrap(src, &found, "m/livecov_agent", "m/p", None)).unwrap();
        assert!(out.starts_with("package p_test; import _livecov_agent \"m/livecov_agent\"\n"));
        assert!(out.contains("os.Exit(_livecov_agent.AfterRun(tm.Run(), \"m/p\"))"));
        assert!(out.contains("code := _livecov_agent.AfterRun(tm.Run(), \"m/p\")"));
        assert!(
            out.contains("func other(m *testing.M) { m.Run() }"),
            "only TestMain is touched"
        );
        assert_eq!(
            out.lines().count(),
            String::from_utf8_lossy(src).lines().count()
        );
    }

    #[test]
    fn directives_keep_the_users_positions() {
        let src =
            b"//go:build x\n\npackage p\n\nfunc TestMain(m *testing.M) { os.Exit(m.Run()) }\n";
        let found = find(src).unwrap();
        let out = wrap(src, &found, "a", "m/p", Some("/src/p/x_test.go"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "//go:build x\n\n/*line /src/p/x_test.go:3:1*/package p; import _livecov_agent \"a\"\
             /*line :3:10*/\n\nfunc TestMain(m *testing.M) { \
             os.Exit(_livecov_agent.AfterRun(/*line :5:39*/m.Run(), \"m/p\")\
             /*line :5:46*/) }\n"
        );
        // A file with directives of its own is left to them.
        let src = b"package p\n\n//line gen.go:10\nfunc TestMain(m *testing.M) { m.Run() }\n";
        let out = wrap(
            src,
            &find(src).unwrap(),
            "a",
            "m/p",
            Some("/src/p/x_test.go"),
        );
        assert!(!String::from_utf8(out).unwrap().contains("/*line"));
    }

    #[test]
    fn files_without_test_main() {
        assert_eq!(find(b"package p\n\nfunc TestX(t *testing.T) {}\n"), None);
    }
}
