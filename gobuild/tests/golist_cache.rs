//! `go list` answers kept between builds are used only while every file they were read from
//! is unchanged: a new file, a new package or an edited import is seen by the next build.

use std::path::Path;
use std::time::Duration;

use gobuild::{Options, prepare};
use instrumenter::Mode;

fn files(opts: &Options, dir: &Path) -> Vec<String> {
    let prepared = prepare(opts, dir, &[]).unwrap();
    let mut names: Vec<String> = prepared.meta.files.iter().map(|f| f.name.clone()).collect();
    names.sort();
    names
}

/// Lets the files written so far settle: an answer read less than two seconds after a change
/// of its files is not kept.
fn settle() {
    std::thread::sleep(Duration::from_millis(2100));
}

#[test]
fn a_kept_answer_follows_every_change_of_the_module() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("go.mod"), "module example.com/m\n\ngo 1.22\n").unwrap();
    std::fs::write(dir.join("main.go"), "package main\n\nfunc main() {}\n").unwrap();
    let opts = Options::new(Mode::Set, tmp.path().join("cache"));
    let kept = || std::fs::read_dir(tmp.path().join("cache/golist")).map_or(0, |d| d.count());

    settle();
    assert_eq!(files(&opts, &dir), ["example.com/m/main.go"]);
    assert_eq!(kept(), 1, "the answer is kept");
    assert_eq!(files(&opts, &dir), ["example.com/m/main.go"]);
    assert_eq!(kept(), 1, "and used");

    // A new file of the package.
    std::fs::write(
        dir.join("b.go"),
        "package main\n\nfunc b() int { return 1 }\n",
    )
    .unwrap();
    assert_eq!(
        files(&opts, &dir),
        ["example.com/m/b.go", "example.com/m/main.go"]
    );

    // A new package, imported by an edited file.
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/s.go"), "package sub\n\nfunc S() {}\n").unwrap();
    std::fs::write(
        dir.join("main.go"),
        "package main\n\nimport \"example.com/m/sub\"\n\nfunc main() { sub.S() }\n",
    )
    .unwrap();
    settle();
    assert_eq!(
        files(&opts, &dir),
        [
            "example.com/m/b.go",
            "example.com/m/main.go",
            "example.com/m/sub/s.go"
        ]
    );
    // A file left out by a build constraint that an edit removes.
    std::fs::write(dir.join("c.go"), "//go:build never\n\npackage main\n").unwrap();
    settle();
    assert_eq!(files(&opts, &dir).len(), 3);
    std::fs::write(dir.join("c.go"), "package main\n\nfunc c() {}\n").unwrap();
    assert_eq!(files(&opts, &dir).len(), 4);
    // A file removed.
    std::fs::remove_file(dir.join("b.go")).unwrap();
    assert_eq!(files(&opts, &dir).len(), 3);
}
