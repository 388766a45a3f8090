//! Go releases, as `go env GOVERSION` names them, and the block rules each one cuts by.

use std::fmt;

use crate::Rules;

/// The minor number of a Go 1 release: 27 for `go1.27.3`, `go1.27rc1`, `go1.27`, `1.27` and
/// `devel go1.27-1a2b3c4 …`.
pub fn minor(version: &str) -> Option<u32> {
    let v = version.trim();
    let v = v.strip_prefix("devel ").unwrap_or(v);
    let v = v.strip_prefix("go").unwrap_or(v);
    let rest = v.strip_prefix("1.")?;
    let digits: &str = &rest[..rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len())];
    digits.parse().ok()
}

/// Why a Go release cannot be built with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionError {
    /// Not a Go release name.
    Unreadable(String),
    /// Older than the oldest release livecov supports.
    TooOld(String),
    /// Newer than the newest release whose rules livecov knows.
    TooNew(String),
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (oldest, newest) = (Rules::OLDEST_MINOR, Rules::NEWEST_MINOR);
        match self {
            VersionError::Unreadable(v) => write!(f, "cannot tell the Go release from {v:?}"),
            VersionError::TooOld(v) => write!(
                f,
                "{v} is not supported: livecov needs Go 1.{oldest} or newer (it builds with the \
                 overlays and coverage rules of Go 1.{oldest} on); use a newer Go"
            ),
            VersionError::TooNew(v) => write!(
                f,
                "{v} is newer than livecov: it knows how go tool cover cuts blocks up to \
                 Go 1.{newest}, and a newer Go may cut them differently. Upgrade livecov, build \
                 with a Go it knows (such as GOTOOLCHAIN=go1.{newest}.0), or pass --go 1.{newest} to cut blocks by Go 1.{newest}'s rules \
                 anyway (counts stay exact; block positions may differ from that Go's own \
                 go tool cover)"
            ),
        }
    }
}

impl std::error::Error for VersionError {}

/// The rules of the Go release `version` (as `go env GOVERSION` prints it).
pub fn rules_for(version: &str) -> Result<Rules, VersionError> {
    let m = minor(version).ok_or_else(|| VersionError::Unreadable(version.to_string()))?;
    match Rules::for_minor(m) {
        Some(rules) => Ok(rules),
        None if m < Rules::OLDEST_MINOR => Err(VersionError::TooOld(version.to_string())),
        None => Err(VersionError::TooNew(version.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_names() {
        for (v, want) in [
            ("go1.26.8", Some(26)),
            ("go1.27.3", Some(27)),
            ("go1.27rc1", Some(27)),
            ("go1.27", Some(27)),
            ("1.27", Some(27)),
            ("devel go1.28-1a2b3c4 Tue Nov 3 2026", Some(28)),
            ("go2", None),
            ("", None),
        ] {
            assert_eq!(minor(v), want, "{v}");
        }
    }

    #[test]
    fn rules_per_release() {
        assert_eq!(rules_for("go1.20.1"), Ok(Rules::Go120));
        assert_eq!(rules_for("go1.26.8"), Ok(Rules::Go120));
        assert_eq!(rules_for("go1.27.3"), Ok(Rules::Go127));
        assert_eq!(
            rules_for("go1.19.13"),
            Err(VersionError::TooOld("go1.19.13".into()))
        );
        let newer = rules_for("go1.28.0").unwrap_err();
        assert_eq!(newer, VersionError::TooNew("go1.28.0".into()));
        assert!(newer.to_string().contains("--go 1.27"), "{newer}");
        assert!(matches!(
            rules_for("gccgo"),
            Err(VersionError::Unreadable(_))
        ));
    }
}
