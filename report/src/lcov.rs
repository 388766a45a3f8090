//! lcov tracefiles (`geninfo(1)`), which `genhtml` turns into HTML. Per file: `FN`/`FNDA` per
//! function (its first line; its count is its entry block's), `DA` per line some block covers
//! (the largest count of the blocks on it), and the totals.

use std::fmt::Write as _;

use crate::{Coverage, Options};

pub fn write(cov: &Coverage, options: &Options) -> String {
    let mut out = String::new();
    for file in &cov.files {
        let _ = writeln!(out, "TN:");
        let _ = writeln!(out, "SF:{}", options.file_name(&file.name));
        for f in &file.funcs {
            let _ = writeln!(out, "FN:{},{}", f.line(file), f.name);
        }
        for f in &file.funcs {
            let _ = writeln!(out, "FNDA:{},{}", f.count(file), f.name);
        }
        let hit = file.funcs.iter().filter(|f| f.count(file) > 0).count();
        let _ = writeln!(out, "FNF:{}", file.funcs.len());
        let _ = writeln!(out, "FNH:{hit}");
        let lines = file.lines();
        for (line, count) in &lines {
            let _ = writeln!(out, "DA:{line},{count}");
        }
        let _ = writeln!(out, "LF:{}", lines.len());
        let _ = writeln!(out, "LH:{}", lines.values().filter(|&&c| c > 0).count());
        let _ = writeln!(out, "end_of_record");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::tests::{restricted, sample};

    #[test]
    fn tracefile() {
        let options = Options {
            strip: Some("example.com/m/".into()),
            source: None,
        };
        assert_eq!(
            write(&sample(), &options),
            "TN:\nSF:a/b.go\nFN:3,F\nFN:10,T.M\nFNDA:3,F\nFNDA:0,T.M\nFNF:2\nFNH:1\n\
             DA:3,3\nDA:4,3\nDA:5,3\nDA:6,0\nDA:7,3\nDA:8,3\nDA:10,0\nDA:11,0\nDA:12,0\n\
             LF:9\nLH:5\nend_of_record\n\
             TN:\nSF:a/c/d.go\nFN:3,G & <x>\nFNDA:1,G & <x>\nFNF:1\nFNH:1\n\
             DA:3,1\nDA:4,1\nDA:5,1\nLF:3\nLH:3\nend_of_record\n"
        );
    }

    #[test]
    fn restricted_tracefile() {
        let options = Options {
            strip: Some("example.com/m/".into()),
            source: None,
        };
        assert_eq!(
            write(&restricted(), &options),
            "TN:\nSF:a/b.go\nFN:3,F\nFNDA:3,F\nFNF:1\nFNH:1\nDA:6,0\nDA:7,3\nLF:2\nLH:1\n\
             end_of_record\n\
             TN:\nSF:a/c/d.go\nFN:3,G & <x>\nFNDA:1,G & <x>\nFNF:1\nFNH:1\nDA:4,1\nLF:1\nLH:1\n\
             end_of_record\n"
        );
    }
}
