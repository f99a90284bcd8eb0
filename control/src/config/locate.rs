//! Positions in the source text: byte offset ↔ line/column, and a small
//! comment-aware RON tokenizer that finds where the value at a config path
//! is written.
//!
//! Layer: control, first stage, error reporting only. Guarantees: never
//! panics on any input (unterminated strings and comments just end the
//! token stream); offsets stay on char boundaries. Refuses nothing: a path
//! that is not in the text yields `None` ([`locate()`]) or its deepest
//! existing ancestor (`locate_best`).
#![forbid(unsafe_code)]

use super::error::PathSeg;

/// Byte offset of ron's `line:col` (1-based; ron counts columns in bytes).
/// Clamped to `src.len()`.
pub(super) fn offset_of(src: &str, line: usize, col: usize) -> usize {
    let mut start = 0usize;
    for _ in 1..line {
        match src[start..].find('\n') {
            Some(n) => start += n + 1,
            None => return src.len(),
        }
    }
    let mut off = (start + col.saturating_sub(1)).min(src.len());
    while !src.is_char_boundary(off) {
        off -= 1;
    }
    off
}

/// 1-based `(line, column)` of byte `offset` in `src`; the column counts
/// characters, not bytes. Offsets past the end give the position just after
/// the last character.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut off = offset.min(src.len());
    while !src.is_char_boundary(off) {
        off -= 1;
    }
    let before = &src[..off];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    let col = src[line_start..off].chars().count() + 1;
    (line, col)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokKind {
    Open(u8),
    Close(u8),
    Colon,
    Comma,
    Str,
    Ident,
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    kind: TokKind,
    start: usize,
    end: usize,
}

/// Splits RON text into tokens, skipping whitespace and (nested) comments.
/// Never panics; unterminated constructs simply end the token stream.
fn tokenize(src: &str) -> Vec<Tok> {
    let b = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                toks.push(Tok {
                    kind: TokKind::Str,
                    start,
                    end: i,
                });
            }
            b'r' if matches!(b.get(i + 1), Some(b'"') | Some(b'#'))
                && raw_string_hashes(b, i + 1).is_some() =>
            {
                let hashes = raw_string_hashes(b, i + 1).unwrap_or(0);
                i += 2 + hashes;
                loop {
                    if i >= b.len() {
                        break;
                    }
                    if b[i] == b'"'
                        && b[i + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&h| h == b'#')
                            .count()
                            == hashes
                    {
                        i += 1 + hashes;
                        break;
                    }
                    i += 1;
                }
                i = i.min(b.len());
                toks.push(Tok {
                    kind: TokKind::Str,
                    start,
                    end: i,
                });
            }
            b'\'' => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                toks.push(Tok {
                    kind: TokKind::Other,
                    start,
                    end: i,
                });
            }
            b'(' | b'[' | b'{' => {
                i += 1;
                toks.push(Tok {
                    kind: TokKind::Open(c),
                    start,
                    end: i,
                });
            }
            b')' | b']' | b'}' => {
                i += 1;
                toks.push(Tok {
                    kind: TokKind::Close(c),
                    start,
                    end: i,
                });
            }
            b':' => {
                i += 1;
                toks.push(Tok {
                    kind: TokKind::Colon,
                    start,
                    end: i,
                });
            }
            b',' => {
                i += 1;
                toks.push(Tok {
                    kind: TokKind::Comma,
                    start,
                    end: i,
                });
            }
            _ if c == b'_' || c.is_ascii_alphabetic() => {
                // `r#name` raw identifiers included.
                if c == b'r' && b.get(i + 1) == Some(&b'#') {
                    i += 2;
                }
                while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                toks.push(Tok {
                    kind: TokKind::Ident,
                    start,
                    end: i,
                });
            }
            _ if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => {
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'+' | b'-'))
                {
                    i += 1;
                }
                toks.push(Tok {
                    kind: TokKind::Other,
                    start,
                    end: i,
                });
            }
            _ => {
                // Any other character (`#`, `!`, non-ASCII): one token per
                // UTF-8 sequence so offsets stay on char boundaries.
                i += src[i..].chars().next().map_or(1, char::len_utf8);
                toks.push(Tok {
                    kind: TokKind::Other,
                    start,
                    end: i,
                });
            }
        }
    }
    toks
}

/// For a raw string starting at `b[i]` (just after the `r`): the number of
/// `#` before the opening quote, if this really is `#*"`.
fn raw_string_hashes(b: &[u8], i: usize) -> Option<usize> {
    let mut n = 0;
    while b.get(i + n) == Some(&b'#') {
        n += 1;
    }
    (b.get(i + n) == Some(&b'"')).then_some(n)
}

/// Index of the bracket matching the open bracket at `i`, if any.
fn matching_close(toks: &[Tok], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(i) {
        match t.kind {
            TokKind::Open(_) => depth += 1,
            TokKind::Close(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Index of the open bracket matching the close bracket at `i`, if any.
fn matching_open(toks: &[Tok], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    for k in (0..=i).rev() {
        match toks[k].kind {
            TokKind::Close(_) => depth += 1,
            TokKind::Open(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Start offset of the value whose tokens span `open..` (with `open` an open
/// bracket): includes a struct name or `Some` written just before it.
fn group_start(toks: &[Tok], open: usize) -> usize {
    if open > 0 && toks[open - 1].kind == TokKind::Ident && toks[open].kind == TokKind::Open(b'(') {
        toks[open - 1].start
    } else {
        toks[open].start
    }
}

/// Start of the value (or field name) that ends at or just before `offset`.
pub(super) fn value_start_before(src: &str, offset: usize) -> usize {
    let toks = tokenize(src);
    let Some(k) = toks.iter().rposition(|t| t.end <= offset) else {
        return offset;
    };
    match toks[k].kind {
        TokKind::Close(_) => {
            matching_open(&toks, k).map_or(toks[k].start, |o| group_start(&toks, o))
        }
        _ => toks[k].start,
    }
}

/// Start of the value at `offset`, or of the one ending just before it when
/// `offset` is on punctuation (`,` `:` or a closing bracket) or whitespace.
pub(super) fn value_start_at_or_before(src: &str, offset: usize) -> usize {
    let toks = tokenize(src);
    match toks.iter().find(|t| t.start == offset) {
        Some(t)
            if matches!(
                t.kind,
                TokKind::Str | TokKind::Ident | TokKind::Other | TokKind::Open(_)
            ) =>
        {
            offset
        }
        _ => value_start_before(src, offset),
    }
}

/// Start of the struct whose closing bracket is at `offset`.
pub(super) fn struct_start_at(src: &str, offset: usize) -> usize {
    let toks = tokenize(src);
    match toks.iter().position(|t| t.start >= offset) {
        Some(k) if matches!(toks[k].kind, TokKind::Close(_)) => {
            matching_open(&toks, k).map_or(offset, |o| group_start(&toks, o))
        }
        _ => offset,
    }
}

/// Index just past the value starting at token `i`.
fn skip_value(toks: &[Tok], i: usize) -> usize {
    let Some(t) = toks.get(i) else { return i };
    match t.kind {
        TokKind::Open(_) => matching_close(toks, i).map_or(toks.len(), |c| c + 1),
        TokKind::Ident if kind_at(toks, i + 1) == Some(TokKind::Open(b'(')) => {
            matching_close(toks, i + 1).map_or(toks.len(), |c| c + 1)
        }
        _ => i + 1,
    }
}

fn kind_at(toks: &[Tok], i: usize) -> Option<TokKind> {
    toks.get(i).map(|t| t.kind)
}

/// Walks `path` from the value at token `i`. Returns the token index of the
/// deepest value reached and whether the whole path was found.
fn walk(src: &str, toks: &[Tok], mut i: usize, path: &[PathSeg]) -> (usize, bool) {
    let Some((head, rest)) = path.split_first() else {
        return (i, true);
    };
    let here = i;
    let text = |k: usize| toks.get(k).map_or("", |t| &src[t.start..t.end]);
    if kind_at(toks, i) == Some(TokKind::Ident) && kind_at(toks, i + 1) == Some(TokKind::Open(b'('))
    {
        if text(i) == "Some" {
            // `Some(x)` written explicitly: the path continues inside.
            let (d, found) = walk(src, toks, i + 2, path);
            return if found { (d, true) } else { (here, false) };
        }
        // A struct name before `(`.
        i += 1;
    }
    match *head {
        PathSeg::Field(name) => {
            if kind_at(toks, i) != Some(TokKind::Open(b'(')) {
                return (here, false);
            }
            let mut k = i + 1;
            while let Some(t) = toks.get(k) {
                match t.kind {
                    TokKind::Close(_) => break,
                    TokKind::Comma => k += 1,
                    TokKind::Ident if kind_at(toks, k + 1) == Some(TokKind::Colon) => {
                        let field = text(k);
                        if field == name || field.strip_prefix("r#") == Some(name) {
                            return walk(src, toks, k + 2, rest);
                        }
                        k = skip_value(toks, k + 2);
                    }
                    _ => return (here, false),
                }
            }
            (here, false)
        }
        PathSeg::Index(n) => {
            if kind_at(toks, i) != Some(TokKind::Open(b'[')) {
                return (here, false);
            }
            let mut k = i + 1;
            let mut idx = 0;
            while let Some(t) = toks.get(k) {
                match t.kind {
                    TokKind::Close(_) => break,
                    TokKind::Comma => k += 1,
                    _ => {
                        if idx == n {
                            return walk(src, toks, k, rest);
                        }
                        idx += 1;
                        k = skip_value(toks, k);
                    }
                }
            }
            (here, false)
        }
    }
}

/// Byte offset where the value at `path` starts in RON text `src`, e.g. the
/// opening quote of `"10.1.0.11:80"` for
/// `[Field("services"), Index(0), Field("real_servers"), Index(0), Field("addr")]`.
///
/// Comments, strings and nesting are honoured, so a commented-out copy of a
/// value is never matched. A struct name (`Config(...)`) and an explicit
/// `Some(...)` around a value are stepped over.
///
/// Returns `None` when the path does not exist in the text (e.g. a field left
/// to its default).
pub fn locate(src: &str, path: &[PathSeg]) -> Option<usize> {
    let toks = tokenize(src);
    if toks.is_empty() {
        return None;
    }
    let (k, found) = walk(src, &toks, 0, path);
    found.then(|| toks[k].start)
}

/// Like [`locate()`], but falls back to the deepest existing ancestor of `path`
/// (e.g. the service when the field was omitted), and to offset 0.
pub(super) fn locate_best(src: &str, path: &[PathSeg]) -> usize {
    let toks = tokenize(src);
    if toks.is_empty() {
        return 0;
    }
    let (k, _) = walk(src, &toks, 0, path);
    toks[k].start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::display_path;

    #[test]
    fn test_tokenize() {
        let src =
            "Config( a: r#\"x\"y\"#, /* c /* nested */ */ b: [-1, 'z'], // tail\n c: Some(\"é\") )";
        let kinds: Vec<TokKind> = tokenize(src).iter().map(|t| t.kind).collect();
        use TokKind::*;
        assert_eq!(
            kinds,
            vec![
                Ident,
                Open(b'('),
                Ident,
                Colon,
                Str,
                Comma,
                Ident,
                Colon,
                Open(b'['),
                Other,
                Comma,
                Other,
                Close(b']'),
                Comma,
                Ident,
                Colon,
                Ident,
                Open(b'('),
                Str,
                Close(b')'),
                Close(b')')
            ]
        );
        let toks = tokenize(src);
        assert_eq!(&src[toks[4].start..toks[4].end], "r#\"x\"y\"#");
        assert_eq!(&src[toks[9].start..toks[9].end], "-1");
    }

    #[test]
    fn test_value_start_before() {
        let src = "(a: [1, 2], b: \"xyz\", c: (d: 1))";
        // Just past `"xyz"`.
        let after_str = src.find("\", c").expect("pos") + 1;
        assert_eq!(
            value_start_before(src, after_str),
            src.find("\"xyz").expect("pos")
        );
        // Just past the inner struct `(d: 1)`.
        let after_struct = src.len() - 1;
        assert_eq!(
            value_start_before(src, after_struct),
            src.find("(d").expect("pos")
        );
        // On the closing bracket of the list: its start.
        let close = src.find(']').expect("pos");
        assert_eq!(struct_start_at(src, close), src.find('[').expect("pos"));
    }

    #[test]
    fn test_locate_through_some() {
        use PathSeg::{Field as F, Index as I};
        let src = "(x: Some((y: [3, Some(4)])))";
        let off = locate(src, &[F("x"), F("y"), I(1)]).expect("found");
        assert_eq!(&src[off..off + 4], "Some");
        assert_eq!(
            display_path(&[F("services"), I(1), F("real_servers"), I(0), F("addr")]),
            "services[1].real_servers[0].addr"
        );
    }
}
