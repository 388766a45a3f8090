//! A lexer for the little that the instrumenter needs to know of Go's tokens beyond the syntax
//! tree: where each one starts and ends, with comments, string, rune and raw string literals
//! told apart exactly as `go/scanner` does. It is conservative where it is unsure: a number is
//! one run of word bytes, dots and exponent signs, and a run of operator bytes is one token, so
//! it may merge two tokens but never splits one. That is enough to find token starts (a place
//! where a comment can go without changing the program) and the lines tokens are on.

/// What a token is, as far as this lexer tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An identifier, keyword or number: a run of letters, digits, `_` and non-ASCII bytes
    /// (and, in a number, dots and exponent signs).
    Word,
    /// An interpreted string or rune literal (one line).
    Quoted,
    /// A string or rune literal that the end of its line or of the input cuts off.
    Unclosed,
    /// A raw string literal, which may span lines.
    Raw,
    /// A run of operator bytes (`+-*/%&|^<>=!:.~`): one operator, or several side by side.
    Operator,
    /// A delimiter, `( ) [ ] { } , ;`, or any other byte.
    Punct(u8),
    /// A `//` or `/* */` comment.
    Comment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// The tokens and comments of `s`, leaving out white space. Text that does not lex (an
/// unterminated literal or comment) ends at the end of its line or of `s`, as in `go/scanner`.
pub fn tokens(s: &[u8]) -> Tokens<'_> {
    Tokens { s, i: 0 }
}

pub struct Tokens<'s> {
    s: &'s [u8],
    i: usize,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

const OPERATOR: &[u8] = b"+-*/%&|^<>=!:.~";

fn digit_at(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

impl Iterator for Tokens<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let s = self.s;
        let n = s.len();
        loop {
            let i = self.i;
            let &b = s.get(i)?;
            let (end, kind) = match b {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    self.i += 1;
                    continue;
                }
                b'/' if s.get(i + 1) == Some(&b'/') => (
                    s[i..].iter().position(|&b| b == b'\n').map_or(n, |k| i + k),
                    Kind::Comment,
                ),
                b'/' if s.get(i + 1) == Some(&b'*') => (
                    s[i + 2..]
                        .windows(2)
                        .position(|w| w == b"*/")
                        .map_or(n, |k| i + 2 + k + 2),
                    Kind::Comment,
                ),
                q @ (b'"' | b'\'') => {
                    let mut j = i + 1;
                    let mut kind = Kind::Unclosed;
                    while j < n {
                        match s[j] {
                            b'\\' => j += 2,
                            b'\n' => break,
                            c if c == q => {
                                j += 1;
                                kind = Kind::Quoted;
                                break;
                            }
                            _ => j += 1,
                        }
                    }
                    (j.min(n), kind)
                }
                b'`' => {
                    let close = s[i + 1..].iter().position(|&b| b == b'`');
                    (close.map_or(n, |k| i + 1 + k + 1), Kind::Raw)
                }
                b if b.is_ascii_digit() || (b == b'.' && digit_at(s, i + 1)) => {
                    let mut j = i + 1;
                    while let Some(&c) = s.get(j) {
                        let sign = matches!(c, b'+' | b'-')
                            && matches!(s[j - 1], b'e' | b'E' | b'p' | b'P');
                        if !(is_word(c) || c == b'.' || sign) {
                            break;
                        }
                        j += 1;
                    }
                    (j, Kind::Word)
                }
                b if is_word(b) => {
                    let len = s[i..].iter().position(|&b| !is_word(b)).unwrap_or(n - i);
                    (i + len, Kind::Word)
                }
                b if OPERATOR.contains(&b) => {
                    let mut j = i;
                    while let Some(&c) = s.get(j) {
                        let comment = c == b'/' && matches!(s.get(j + 1), Some(b'/' | b'*'));
                        let number = c == b'.' && digit_at(s, j + 1);
                        if !OPERATOR.contains(&c) || comment || (number && j > i) {
                            break;
                        }
                        j += 1;
                    }
                    (j, Kind::Operator)
                }
                b => (i + 1, Kind::Punct(b)),
            };
            self.i = end;
            return Some(Token {
                start: i,
                end,
                kind,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<(&str, Kind)> {
        tokens(s.as_bytes())
            .filter(|t| t.kind != Kind::Comment)
            .map(|t| (&s[t.start..t.end], t.kind))
            .collect()
    }

    #[test]
    fn comments_and_literals() {
        let got = kinds("a /* x */ \"//\" // y\n'\\'' `/*\n`/b");
        assert_eq!(
            got,
            vec![
                ("a", Kind::Word),
                ("\"//\"", Kind::Quoted),
                ("'\\''", Kind::Quoted),
                ("`/*\n`", Kind::Raw),
                ("/", Kind::Operator),
                ("b", Kind::Word),
            ]
        );
    }

    #[test]
    fn numbers_and_operator_runs_are_one_token() {
        let got: Vec<&str> = kinds("x := .5*0x1p-2 - 1e+3i; a+-b")
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(
            got,
            [
                "x", ":=", ".5", "*", "0x1p-2", "-", "1e+3i", ";", "a", "+-", "b"
            ]
        );
    }

    #[test]
    fn unterminated_text_ends_at_the_line_or_the_input() {
        assert_eq!(
            kinds("\"ab\nc"),
            vec![("\"ab", Kind::Unclosed), ("c", Kind::Word)]
        );
        assert_eq!(kinds("/* open"), vec![]);
        assert_eq!(kinds("`open"), vec![("`open", Kind::Raw)]);
    }
}
