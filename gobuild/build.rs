//! Embeds the Go agent's sources (`agent-go/*.go`, without tests) into the crate, so that
//! `livecov build` can add them to any build without the agent being installed anywhere.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent-go");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("agent-go/ sits next to gobuild/")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".go") && !n.ends_with("_test.go"))
        .collect();
    names.sort();
    let mut out = String::from(
        "/// The agent's Go source files: (file name, contents).\npub const AGENT_FILES: &[(&str, &str)] = &[\n",
    );
    for name in names {
        let path = dir.join(&name);
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("agent_files.rs");
    std::fs::write(dest, out).unwrap();
}
