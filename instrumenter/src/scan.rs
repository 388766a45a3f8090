//! A lexer for the little that the instrumenter needs to know of Go's tokens beyond the syntax
//! tree: where each one starts and ends, with comments, string, rune and raw string literals
//! told apart exactly as `go/scanner` does. Identifiers and numbers come out as runs of word
//! bytes, and every other byte as a token of its own; that is enough to find token starts and
//! lines, which is all its users ask.

/// What a token is, as far as this lexer tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A run of letters, digits, `_` and non-ASCII bytes: an identifier, keyword or number.
    Word,
    /// An interpreted string or rune literal (one line).
    Quoted,
    /// A raw string literal, which may span lines.
    Raw,
    /// Any other byte: an operator or delimiter (multi-byte operators come out byte by byte).
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
                    while j < n {
                        match s[j] {
                            b'\\' => j += 2,
                            b'\n' => break,
                            c if c == q => {
                                j += 1;
                                break;
                            }
                            _ => j += 1,
                        }
                    }
                    (j.min(n), Kind::Quoted)
                }
                b'`' => {
                    let close = s[i + 1..].iter().position(|&b| b == b'`');
                    (close.map_or(n, |k| i + 1 + k + 1), Kind::Raw)
                }
                b if is_word(b) => {
                    let len = s[i..].iter().position(|&b| !is_word(b)).unwrap_or(n - i);
                    (i + len, Kind::Word)
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
                ("/", Kind::Punct(b'/')),
                ("b", Kind::Word),
            ]
        );
    }

    #[test]
    fn unterminated_text_ends_at_the_line_or_the_input() {
        assert_eq!(
            kinds("\"ab\nc"),
            vec![("\"ab", Kind::Quoted), ("c", Kind::Word)]
        );
        assert_eq!(kinds("/* open"), vec![]);
        assert_eq!(kinds("`open"), vec![("`open", Kind::Raw)]);
    }
}
