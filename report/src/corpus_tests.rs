//! Every export read back on the instrumenter's corpus of hard cases (BOM, CRLF, `//line`
//! directives, labels, generics, non-ASCII text…): the JSON gives back the coverage it was
//! written from, lcov's and Cobertura's lines are the coverage's lines, and the annotated
//! source, with its markup taken off, is the source.

use std::collections::BTreeMap;

use instrumenter::{BuildMeta, Mode};

use crate::html::{self, Header, Sources};
use crate::{Coverage, Options, cobertura, json, lcov};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../instrumenter/testdata/cover"
);

/// Each corpus file with its coverage: blocks from the instrumenter, counts made up (a third
/// of the blocks never reached, the rest reached a varying number of times).
fn corpus() -> Vec<(String, String, Coverage)> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "go"))
        .collect();
    names.sort();
    for path in names {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = format!(
            "example.com/corpus/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        let file =
            instrumenter::analyze(&name, text.as_bytes(), instrumenter::Rules::Go120).unwrap();
        let counts: Vec<u32> = (0..file.blocks.len() as u32)
            .map(|i| if i % 3 == 1 { 0 } else { i * 7 % 5 + 1 })
            .collect();
        let meta = BuildMeta {
            mode: Mode::Count,
            files: vec![file],
        };
        let cov = Coverage::of_build(1, 1_764_000_000_000, &meta, &counts);
        out.push((name, text, cov));
    }
    assert!(out.len() >= 10, "the corpus is at {CORPUS}");
    out
}

#[test]
fn json_reads_back() {
    for (name, _, cov) in corpus() {
        let text = json::write(&cov, &Options::default());
        let back: json::ExportJson = serde_json::from_str(&text).unwrap();
        assert_eq!(back.coverage(), cov, "{name}");
    }
}

#[test]
fn lcov_and_cobertura_lines_are_the_coverage_lines() {
    for (name, _, cov) in corpus() {
        let file = &cov.files[0];
        let want = file.lines();

        let info = lcov::write(&cov, &Options::default());
        let da: BTreeMap<u32, u32> = info
            .lines()
            .filter_map(|l| l.strip_prefix("DA:"))
            .map(|v| {
                let (line, count) = v.split_once(',').unwrap();
                (line.parse().unwrap(), count.parse().unwrap())
            })
            .collect();
        assert_eq!(da, want, "{name}: lcov");
        let fnda: Vec<(String, u32)> = info
            .lines()
            .filter_map(|l| l.strip_prefix("FNDA:"))
            .map(|v| {
                let (count, f) = v.split_once(',').unwrap();
                (f.to_string(), count.parse().unwrap())
            })
            .collect();
        let funcs: Vec<(String, u32)> = file
            .funcs
            .iter()
            .map(|f| (f.name.clone(), f.count(file)))
            .collect();
        assert_eq!(fnda, funcs, "{name}: lcov functions");

        // The class's own lines: the last `<lines>` block of the file's class.
        let xml = cobertura::write(&cov, &Options::default());
        let class_lines = &xml[xml.rfind("<lines>").unwrap()..];
        let hits: BTreeMap<u32, u32> = class_lines
            .lines()
            .filter_map(|l| l.trim().strip_prefix("<line number=\""))
            .map(|l| {
                let (n, rest) = l.split_once("\" hits=\"").unwrap();
                (
                    n.parse().unwrap(),
                    rest.split('"').next().unwrap().parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(hits, want, "{name}: cobertura");
    }
}

#[test]
fn annotated_source_is_the_source() {
    for (name, text, cov) in corpus() {
        let mut out = String::new();
        html::annotate(&mut out, &cov.files[0], &text, "L");
        // Every block that is not empty opens a span (one per line it is on).
        let spans = out.matches("<span class=\"c").count();
        let nonempty = cov.files[0]
            .blocks
            .iter()
            .filter(|b| (b.start.line, b.start.col) < (b.end.line, b.end.col))
            .count();
        assert!(
            spans >= nonempty,
            "{name}: {spans} spans, {nonempty} blocks: {out}"
        );
        assert_eq!(plain(&out), normalized(&text), "{name}");

        // The standalone page shows it inline.
        let source = |n: &str| (n == name).then_some(text.as_str());
        let page = html::write(
            &cov,
            &Header::default(),
            &Options::default(),
            Sources::Inline(&source),
        );
        assert!(page.contains("<pre class=\"src\">"), "{name}");
    }
}

/// The text of annotated markup: tags dropped, entities decoded, without the `<pre>`'s
/// trailing newline.
fn plain(html: &str) -> String {
    let body = html
        .strip_prefix("<pre class=\"src\">")
        .and_then(|s| s.strip_suffix("</pre>\n"))
        .expect("one pre element");
    let mut out = String::new();
    let mut rest = body;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        rest = &rest[rest[i..].find('>').unwrap() + i + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The source as the page shows it: lines without their `\r`, each ended by `\n`.
fn normalized(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|l| {
            let l = l.strip_suffix('\n').unwrap_or(l);
            format!("{}\n", l.strip_suffix('\r').unwrap_or(l))
        })
        .collect()
}
