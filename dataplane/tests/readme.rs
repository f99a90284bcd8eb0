//! README.md's drop-reason table lists exactly `DropReason::ALL`, in
//! counter order, each with its doc comment from `src/stats.rs` as the
//! meaning, so the table cannot drift from the code.

use dataplane::stats::DropReason;

/// `(name, doc)` of every reason declared in `drop_reasons!`, doc lines
/// joined with single spaces.
fn declared() -> Vec<(String, String)> {
    let src = include_str!("../src/stats.rs");
    let body = src
        .split_once("drop_reasons! {")
        .expect("stats.rs invokes drop_reasons!")
        .1;
    let mut out = Vec::new();
    let mut doc: Vec<&str> = Vec::new();
    for line in body.lines().map(str::trim) {
        if line == "}" {
            break;
        }
        if let Some(d) = line.strip_prefix("///") {
            doc.push(d.trim());
        } else if let Some((_, name)) = line.split_once("=> \"") {
            let name = name.trim_end_matches("\",");
            out.push((name.to_string(), doc.join(" ")));
            doc.clear();
        }
    }
    out
}

/// `(name, meaning)` of every row of README.md's `| reason | meaning |`
/// table.
fn readme_rows() -> Vec<(String, String)> {
    let readme = include_str!("../../README.md");
    let table = readme
        .split_once("| reason | meaning |\n|---|---|\n")
        .expect("README.md has the drop-reason table")
        .1;
    table
        .lines()
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').splitn(2, " | ").collect();
            assert_eq!(cells.len(), 2, "README row {l:?}");
            (
                cells[0].trim().trim_matches('`').to_string(),
                cells[1].trim().to_string(),
            )
        })
        .collect()
}

#[test]
fn test_readme_drop_table_is_drop_reason_all() {
    let declared = declared();
    let names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
    let declared_names: Vec<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(declared_names, names, "stats.rs parsed as DropReason::ALL");
    let want: String = declared
        .iter()
        .map(|(n, d)| format!("| `{n}` | {d} |\n"))
        .collect();
    let got: String = readme_rows()
        .iter()
        .map(|(n, d)| format!("| `{n}` | {d} |\n"))
        .collect();
    assert!(
        got == want,
        "README.md's drop-reason table differs from DropReason::ALL; it should read:\n\
         | reason | meaning |\n|---|---|\n{want}"
    );
}
