//! Metadata: function names as cover's metadata gives them, content hashes, build ids.

use instrumenter::{BuildMeta, FileMeta, Mode, Options};

const SRC: &str = r#"package p

type T struct{}
type G[K any] struct{}

func Free() { if true { } }
func (T) Value() {}
func (t *T) Pointer() {}
func (g G[K]) Generic() {}

var lit = func() int { return 1 }

func Outer() { _ = func() { if true { } } }
"#;

fn meta(src: &str) -> FileMeta {
    instrumenter::analyze(
        "example.com/p/f.go",
        src.as_bytes(),
        instrumenter::Rules::Go120,
    )
    .unwrap()
}

#[test]
fn function_names_follow_cover() {
    let m = meta(SRC);
    let names: Vec<&str> = m.funcs.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Free",
            "T.Value",
            "*T.Pointer",
            "Generic",
            "func.L11.C11",
            "Outer"
        ]
    );
    // The literal inside Outer belongs to Outer.
    let outer = names.iter().position(|n| *n == "Outer").unwrap() as u32;
    assert_eq!(m.blocks.iter().filter(|b| b.func == outer).count(), 3);
}

#[test]
fn function_hash_changes_only_with_its_own_text() {
    let a = meta(SRC);
    let b = meta(&SRC.replace("func (T) Value() {}", "func (T) Value() { _ = 1 }"));
    let changed: Vec<&str> = a
        .funcs
        .iter()
        .zip(&b.funcs)
        .filter(|(x, y)| x.hash != y.hash)
        .map(|(x, _)| x.name.as_str())
        .collect();
    assert_eq!(changed, ["T.Value"]);
    // Moving a function down a line keeps its hash (and its name).
    let c = meta(&SRC.replace("type T struct{}", "type T struct{}\n"));
    assert_eq!(a.funcs[0].hash, c.funcs[0].hash);
}

#[test]
fn build_id_is_deterministic_and_sensitive() {
    let build = |files: Vec<FileMeta>, mode| BuildMeta { mode, files }.build_id();
    let id = build(vec![meta(SRC)], Mode::Set);
    assert_eq!(id.len(), 64);
    assert_eq!(id, build(vec![meta(SRC)], Mode::Set));
    assert_ne!(
        id,
        build(vec![meta(SRC)], Mode::Count),
        "mode is part of the id"
    );
    let moved = meta(&SRC.replace("func Free()", "\nfunc Free()"));
    assert_ne!(
        id,
        build(vec![moved], Mode::Set),
        "positions are part of the id"
    );
    let mut renamed = meta(SRC);
    renamed.name = "example.com/q/f.go".into();
    assert_ne!(
        id,
        build(vec![renamed], Mode::Set),
        "file names are part of the id"
    );
}

#[test]
fn instrument_reports_the_same_blocks_as_analyze() {
    let opts = Options {
        mode: Mode::Atomic,
        counter_var: Some("C".into()),
        ..Options::default()
    };
    let inst = instrumenter::instrument("example.com/p/f.go", SRC.as_bytes(), &opts).unwrap();
    assert_eq!(inst.meta, meta(SRC));
    assert_eq!(inst.counter_var, "C");
    let text = String::from_utf8(inst.source).unwrap();
    assert!(text.starts_with("package p; import _livecov_atomic \"sync/atomic\"\n"));
    assert!(text.ends_with(&format!("\n\nvar C [{}]uint32\n", inst.meta.blocks.len())));
    assert_eq!(
        text.matches("_livecov_atomic.AddUint32(&C[").count(),
        inst.meta.blocks.len()
    );
}

#[test]
fn count_mode_needs_no_import_and_empty_files_get_no_import() {
    let opts = Options {
        mode: Mode::Count,
        ..Options::default()
    };
    let inst = instrumenter::instrument("p/f.go", SRC.as_bytes(), &opts).unwrap();
    assert!(
        !String::from_utf8(inst.source)
            .unwrap()
            .contains("import _livecov")
    );
    let types_only =
        instrumenter::instrument("p/t.go", b"package p\n\ntype X int\n", &Options::default())
            .unwrap();
    assert!(types_only.meta.blocks.is_empty());
    assert_eq!(
        String::from_utf8(types_only.source).unwrap(),
        format!(
            "package p\n\ntype X int\n\n\nvar {} [0]uint32\n",
            types_only.counter_var
        )
    );
}

#[test]
fn main_prologue_runs_first_in_main_and_only_there() {
    let opts = Options {
        mode: Mode::Count,
        counter_var: Some("C".into()),
        main_prologue: Some(instrumenter::Prologue {
            import: ("_hook".into(), "example.com/hook".into()),
            statement: "defer _hook.Flush()".into(),
        }),
        ..Options::default()
    };
    let main = "package main\n\nfunc helper() {}\n\nfunc main() {\n\thelper()\n}\n";
    let out = instrumenter::instrument("m/main.go", main.as_bytes(), &opts).unwrap();
    let text = String::from_utf8(out.source).unwrap();
    assert!(
        text.starts_with("package main; import _hook \"example.com/hook\"\n"),
        "{text}"
    );
    assert!(
        text.contains("func main() {defer _hook.Flush();C[1] = C[1] + 1;\n"),
        "{text}"
    );
    assert_eq!(text.matches("Flush").count(), 1);
    assert_eq!(
        out.meta,
        instrumenter::analyze("m/main.go", main.as_bytes(), instrumenter::Rules::Go120).unwrap()
    );

    // Not package main, or no func main: nothing added, no import.
    let lib = "package lib\n\nfunc main() {}\n";
    let text = instrumenter::instrument("m/lib.go", lib.as_bytes(), &opts)
        .unwrap()
        .source;
    assert!(!String::from_utf8(text).unwrap().contains("_hook"));
    let other = "package main\n\nfunc run() {}\n";
    let text = instrumenter::instrument("m/run.go", other.as_bytes(), &opts)
        .unwrap()
        .source;
    assert!(!String::from_utf8(text).unwrap().contains("_hook"));
}

/// `cut_from` asks for the blocks in counter order and the functions with their hashes;
/// `Same::Blocks` for the blocks' positions and statements in any order, without hashes.
#[test]
fn a_source_cuts_into_its_own_metadata() {
    use instrumenter::{Same, cut_from, cut_where};
    let want = meta(SRC);
    assert!(cut_from(&want, SRC.as_bytes()).unwrap().is_some());
    let mut no_hashes = want.clone();
    no_hashes.blocks.reverse();
    for f in &mut no_hashes.funcs {
        f.hash = [0; 32];
    }
    assert_eq!(cut_from(&no_hashes, SRC.as_bytes()).unwrap(), None);
    let blocks = cut_where(&no_hashes, SRC.as_bytes(), Same::Blocks).unwrap();
    assert!(blocks.is_some());
    let moved = format!("\n{SRC}");
    assert_eq!(
        cut_where(&no_hashes, moved.as_bytes(), Same::Blocks).unwrap(),
        None
    );
    assert!(cut_where(&no_hashes, b"package", Same::Blocks).is_err());
}
