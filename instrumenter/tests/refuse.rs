//! Bad input gets a clear error naming the place, and nothing else.

use instrumenter::{Error, Options};

fn refusal(src: &str) -> (usize, usize, String) {
    let err =
        instrumenter::analyze("p/f.go", src.as_bytes(), instrumenter::Rules::Go120).unwrap_err();
    let again = instrumenter::instrument("p/f.go", src.as_bytes(), &Options::default());
    assert_eq!(
        again.unwrap_err(),
        err,
        "instrument refuses what analyze refuses"
    );
    match err {
        Error::Syntax {
            line,
            column,
            message,
        } => (line, column, message),
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn syntax_error_points_at_the_bad_token() {
    let (line, col, msg) = refusal("package p\n\nfunc f() {\n\tx := 1 +\n}\n");
    assert_eq!((line, col), (4, 9), "{msg}");
    assert_eq!(msg, "syntax error near \"+\"");
}

#[test]
fn missing_brace_is_reported() {
    let (line, _, msg) = refusal("package p\n\nfunc f() {\n\tif true {\n}\n");
    assert_eq!(line, 6, "{msg}");
    assert!(msg.contains("missing \"}\""), "{msg}");
}

#[test]
fn missing_package_clause() {
    let (line, col, msg) = refusal("func f() {}\n");
    assert_eq!((line, col, msg.as_str()), (1, 1, "expected 'package'"));
    let (_, _, msg) = refusal("// only a comment\n");
    assert_eq!(msg, "expected 'package'");
    let (_, _, msg) = refusal("");
    assert_eq!(msg, "expected 'package'");
}

#[test]
fn statements_outside_functions() {
    let (line, col, msg) = refusal("package p\n\nx := 1\n");
    assert_eq!((line, col), (3, 1));
    assert_eq!(msg, "non-declaration statement outside function body");
}

#[test]
fn a_second_package_clause() {
    let (line, _, msg) = refusal("package p\npackage q\n");
    assert_eq!(
        (line, msg.as_str()),
        (2, "unexpected second package clause")
    );
}

#[test]
fn byte_order_mark_only_at_the_start() {
    assert!(
        instrumenter::analyze(
            "f.go",
            b"\xEF\xBB\xBFpackage p\n",
            instrumenter::Rules::Go120
        )
        .is_ok()
    );
    let (line, col, msg) = refusal("package p\n\nvar s = \"\u{FEFF}\"\n");
    assert_eq!(
        (line, col, msg.as_str()),
        (3, 10, "illegal byte order mark")
    );
}

#[test]
fn malformed_line_directives_like_go_parser() {
    let (line, _, msg) = refusal("package p\n\n//line x.go:0:1\nfunc f() {}\n");
    assert_eq!((line, msg.as_str()), (3, "invalid line number: 0"));
    let (_, _, msg) = refusal("package p\n\n//line x.go:12:0\nfunc f() {}\n");
    assert_eq!(msg, "invalid column number: 0");
    let (_, _, msg) = refusal("package p\n\n//line x.go:abc\nfunc f() {}\n");
    assert_eq!(msg, "invalid line number: abc");
}

#[test]
fn binary_garbage() {
    let (line, col, _) = refusal("\u{0}\u{1}\u{2}garbage");
    assert_eq!((line, col), (1, 1));
}

#[test]
fn error_display_is_line_col_message() {
    let err = instrumenter::analyze("f.go", b"package p\nfunc {", instrumenter::Rules::Go120)
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("2:"), "{text}");
}
