//! The crates' top-level modules refer to each other without a cycle, so data and calls flow
//! one way (ARCHITECTURE.md). A module's references are the `crate::NAME` paths in its files
//! (and `super::NAME` in its submodules), comments and test code left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level modules of the crate whose sources are in `src`, each with the modules it
/// refers to.
fn references(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut refs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let top = first.trim_end_matches(".rs").to_string();
            if top == "lib" || top == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Comments (doc links) are not references.
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let nested = rel.components().count() > 1;
            let names = refs.entry(top.clone()).or_default();
            for prefix in ["crate::", "use super::"] {
                if prefix == "use super::" && !nested {
                    continue;
                }
                for (i, _) in code.match_indices(prefix) {
                    let name: String = code[i + prefix.len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                        .collect();
                    if !name.is_empty() && name != top {
                        names.insert(name);
                    }
                }
            }
        }
    }
    let modules: BTreeSet<String> = refs.keys().cloned().collect();
    for names in refs.values_mut() {
        names.retain(|n| modules.contains(n));
    }
    refs
}

/// A cycle among the modules, if there is one.
fn cycle(refs: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        refs: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            return Some(path[i..].to_vec());
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for n in refs.get(m).into_iter().flatten() {
            if let Some(c) = visit(n, refs, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    refs.keys()
        .find_map(|m| visit(m, refs, &mut Vec::new(), &mut done))
}

#[test]
fn modules_refer_to_each_other_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for krate in ["server", "cli", "report", "gobuild", "instrumenter"] {
        let refs = references(&root.join(krate).join("src"));
        assert!(refs.len() > 2, "{krate}: no modules found");
        if let Some(c) = cycle(&refs) {
            panic!(
                "{krate}/src: modules refer to each other in a cycle: {}",
                c.join(" → ")
            );
        }
    }
}

#[test]
fn a_cycle_is_found() {
    let refs: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(m, n)| (m.to_string(), n.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycle(&refs).unwrap(), ["a", "b", "c"]);
}
