//! Cobertura XML (`coverage-04.dtd`), which CI systems read. One `<source>` (the directory
//! file names are relative to); a package per Go package (its import path), a class per file,
//! a method per function; a line's hits are the largest count of the blocks on it. Go
//! coverage has no branches: branch rates are 0 and no line is a branch.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::{Coverage, FileCov, Options};

pub fn write(cov: &Coverage, options: &Options) -> String {
    let mut packages: BTreeMap<&str, Vec<&FileCov>> = BTreeMap::new();
    for file in &cov.files {
        let dir = file.name.rsplit_once('/').map_or("", |(dir, _)| dir);
        packages.entry(dir).or_default().push(file);
    }
    let lines: BTreeMap<&str, BTreeMap<u32, u32>> = cov
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.lines()))
        .collect();
    let (valid, covered) = tally(lines.values());

    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(
        "<!DOCTYPE coverage SYSTEM \"http://cobertura.sourceforge.net/xml/coverage-04.dtd\">\n",
    );
    let _ = writeln!(
        out,
        "<coverage line-rate=\"{}\" branch-rate=\"0\" lines-covered=\"{covered}\" \
         lines-valid=\"{valid}\" branches-covered=\"0\" branches-valid=\"0\" complexity=\"0\" \
         version=\"livecov {}\" timestamp=\"{}\">",
        rate(covered, valid),
        env!("CARGO_PKG_VERSION"),
        cov.taken_at
    );
    let source = options.source.as_deref().unwrap_or(".");
    let _ = writeln!(
        out,
        "  <sources>\n    <source>{}</source>\n  </sources>",
        escape(source)
    );
    out.push_str("  <packages>\n");
    for (name, files) in &packages {
        let (valid, covered) = tally(files.iter().map(|f| &lines[f.name.as_str()]));
        let _ = writeln!(
            out,
            "    <package name=\"{}\" line-rate=\"{}\" branch-rate=\"0\" complexity=\"0\">",
            escape(name),
            rate(covered, valid)
        );
        out.push_str("      <classes>\n");
        for file in files {
            let file_lines = &lines[file.name.as_str()];
            let (valid, covered) = tally([file_lines]);
            let base = file.name.rsplit('/').next().unwrap_or(&file.name);
            let _ = writeln!(
                out,
                "        <class name=\"{}\" filename=\"{}\" line-rate=\"{}\" branch-rate=\"0\" \
                 complexity=\"0\">",
                escape(base),
                escape(options.file_name(&file.name)),
                rate(covered, valid)
            );
            out.push_str("          <methods>\n");
            for f in &file.funcs {
                let own = file.lines_of(f.blocks.iter().copied());
                let (valid, covered) = tally([&own]);
                let _ = writeln!(
                    out,
                    "            <method name=\"{}\" signature=\"\" line-rate=\"{}\" \
                     branch-rate=\"0\">",
                    escape(&f.name),
                    rate(covered, valid)
                );
                write_lines(&mut out, &own, "              ");
                out.push_str("            </method>\n");
            }
            out.push_str("          </methods>\n");
            write_lines(&mut out, file_lines, "          ");
            out.push_str("        </class>\n");
        }
        out.push_str("      </classes>\n    </package>\n");
    }
    out.push_str("  </packages>\n</coverage>\n");
    out
}

fn write_lines(out: &mut String, lines: &BTreeMap<u32, u32>, indent: &str) {
    let _ = writeln!(out, "{indent}<lines>");
    for (n, hits) in lines {
        let _ = writeln!(
            out,
            "{indent}  <line number=\"{n}\" hits=\"{hits}\" branch=\"false\"/>"
        );
    }
    let _ = writeln!(out, "{indent}</lines>");
}

/// Lines valid and lines covered.
fn tally<'a>(files: impl IntoIterator<Item = &'a BTreeMap<u32, u32>>) -> (usize, usize) {
    files.into_iter().fold((0, 0), |(v, c), lines| {
        (
            v + lines.len(),
            c + lines.values().filter(|&&h| h > 0).count(),
        )
    })
}

/// Covered over valid, 1 when nothing is valid (nothing is missed).
fn rate(covered: usize, valid: usize) -> String {
    if valid == 0 {
        return "1".into();
    }
    let r = format!("{:.4}", covered as f64 / valid as f64);
    let r = r.trim_end_matches('0').trim_end_matches('.');
    r.to_string()
}

/// Text for an XML attribute value or element content.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::tests::{restricted, sample};

    #[test]
    fn structure() {
        let options = Options {
            strip: Some("example.com/m/".into()),
            source: Some("/src/m & co".into()),
        };
        let xml = write(&sample(), &options);
        assert!(
            xml.starts_with(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE coverage SYSTEM"
            )
        );
        assert!(
            xml.contains(
                "<coverage line-rate=\"0.6667\" branch-rate=\"0\" lines-covered=\"8\" \
                 lines-valid=\"12\" branches-covered=\"0\" branches-valid=\"0\" \
                 complexity=\"0\" version=\"livecov "
            ),
            "{xml}"
        );
        assert!(xml.contains("timestamp=\"1764000000123\">"), "{xml}");
        assert!(xml.contains("<source>/src/m &amp; co</source>"), "{xml}");
        assert!(
            xml.contains("<package name=\"example.com/m/a\" line-rate=\"0.5556\""),
            "{xml}"
        );
        assert!(
            xml.contains("<package name=\"example.com/m/a/c\" line-rate=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("<class name=\"b.go\" filename=\"a/b.go\" line-rate=\"0.5556\""),
            "{xml}"
        );
        assert!(
            xml.contains("<method name=\"G &amp; &lt;x&gt;\" signature=\"\" line-rate=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("<method name=\"T.M\" signature=\"\" line-rate=\"0\""),
            "{xml}"
        );
        assert!(
            xml.contains("<line number=\"6\" hits=\"0\" branch=\"false\"/>"),
            "{xml}"
        );
        // Elements balance, in the DTD's order.
        for tag in [
            "coverage", "sources", "packages", "package", "classes", "class", "methods", "method",
            "lines",
        ] {
            let open =
                xml.matches(&format!("<{tag} ")).count() + xml.matches(&format!("<{tag}>")).count();
            assert_eq!(
                open,
                xml.matches(&format!("</{tag}>")).count(),
                "<{tag}> in {xml}"
            );
        }
        assert_eq!(xml.matches("<class ").count(), 2);
        assert_eq!(xml.matches("<method ").count(), 3);
        let class = xml.find("<class name=\"b.go\"").unwrap();
        let methods = class + xml[class..].find("<methods>").unwrap();
        let lines = class + xml[class..].find("</methods>\n          <lines>").unwrap();
        assert!(methods < lines);
    }

    #[test]
    fn restricted_document() {
        let options = Options {
            strip: Some("example.com/m/".into()),
            source: None,
        };
        let line = |n: u32, hits: u32, indent: &str| {
            format!("{indent}<line number=\"{n}\" hits=\"{hits}\" branch=\"false\"/>\n")
        };
        let (m, c) = ("                ", "            ");
        let want = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <!DOCTYPE coverage SYSTEM \"http://cobertura.sourceforge.net/xml/coverage-04.dtd\">\n\
             <coverage line-rate=\"0.6667\" branch-rate=\"0\" lines-covered=\"2\" \
             lines-valid=\"3\" branches-covered=\"0\" branches-valid=\"0\" complexity=\"0\" \
             version=\"livecov {version}\" timestamp=\"1764000000123\">\n  \
             <sources>\n    <source>.</source>\n  </sources>\n  <packages>\n    \
             <package name=\"example.com/m/a\" line-rate=\"0.5\" branch-rate=\"0\" complexity=\"0\">\n      \
             <classes>\n        \
             <class name=\"b.go\" filename=\"a/b.go\" line-rate=\"0.5\" branch-rate=\"0\" complexity=\"0\">\n          \
             <methods>\n            \
             <method name=\"F\" signature=\"\" line-rate=\"0.5\" branch-rate=\"0\">\n              \
             <lines>\n{m6}{m7}              </lines>\n            </method>\n          </methods>\n          \
             <lines>\n{c6}{c7}          </lines>\n        </class>\n      </classes>\n    </package>\n    \
             <package name=\"example.com/m/a/c\" line-rate=\"1\" branch-rate=\"0\" complexity=\"0\">\n      \
             <classes>\n        \
             <class name=\"d.go\" filename=\"a/c/d.go\" line-rate=\"1\" branch-rate=\"0\" complexity=\"0\">\n          \
             <methods>\n            \
             <method name=\"G &amp; &lt;x&gt;\" signature=\"\" line-rate=\"1\" branch-rate=\"0\">\n              \
             <lines>\n{m4}              </lines>\n            </method>\n          </methods>\n          \
             <lines>\n{c4}          </lines>\n        </class>\n      </classes>\n    </package>\n  \
             </packages>\n</coverage>\n",
            version = env!("CARGO_PKG_VERSION"),
            m6 = line(6, 0, m),
            m7 = line(7, 3, m),
            m4 = line(4, 1, m),
            c6 = line(6, 0, c),
            c7 = line(7, 3, c),
            c4 = line(4, 1, c),
        );
        assert_eq!(write(&restricted(), &options), want);
    }

    #[test]
    fn rates() {
        assert_eq!(rate(0, 0), "1");
        assert_eq!(rate(0, 3), "0");
        assert_eq!(rate(1, 2), "0.5");
        assert_eq!(rate(2, 3), "0.6667");
    }
}
