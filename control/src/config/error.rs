//! Configuration errors: what went wrong and where, always one line.
//!
//! Layer: control, first stage. [`ConfigError`] is what loading a file
//! returns (`file:line:col: message`, 1-based line, column in characters);
//! [`ValidationError`] is what [`validate()`](super::validate()) returns for a
//! config built in memory, naming a [`PathSeg`] path instead of a position.
//! `ron`'s own errors are turned into the same one-line form here, with
//! operator words instead of Rust type names and the position moved onto the
//! value the error is about ([`super::locate()`](mod@super::locate)).
#![forbid(unsafe_code)]

use super::locate::{
    line_col, offset_of, struct_start_at, value_start_at_or_before, value_start_before,
};
use super::types::VALUE_MARK;

/// Why a config could not be loaded. `Display` is always one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read: `{file}: cannot read config: {source}`.
    #[error("{file}: cannot read config: {source}")]
    Io {
        /// Path as given.
        file: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Syntax, type or value error found while parsing.
    #[error("{file}:{line}:{col}: {message}")]
    Parse {
        /// File name as given.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// Cross-field error found by [`validate()`](super::validate()).
    #[error("{file}:{line}:{col}: {message}")]
    Invalid {
        /// File name as given.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// What was wrong and what was expected.
        message: String,
        /// Where in the config the offending value is.
        path: String,
    },
}

impl ConfigError {
    /// `(line, col)`, 1-based, or `None` for an I/O error.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Parse { line, col, .. } | ConfigError::Invalid { line, col, .. } => {
                Some((*line, *col))
            }
        }
    }
}

/// One step of a path into the config tree: a struct field or a list index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathSeg {
    /// A field name, as written in the file.
    Field(&'static str),
    /// A 0-based list index.
    Index(usize),
}

/// A cross-field error: what is wrong and where (a path, since a [`Config`](super::Config)
/// built in memory has no source text).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", display_path(path))]
pub struct ValidationError {
    /// Path to the offending value, e.g. `services[1].real_servers[0].addr`.
    pub path: Vec<PathSeg>,
    /// What was wrong and what was expected.
    pub message: String,
}

/// Renders a path as `services[1].real_servers[0].addr`.
pub fn display_path(path: &[PathSeg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            PathSeg::Field(f) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(f);
            }
            PathSeg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// How to move ron's cursor position onto the value the error is about.
enum Anchor {
    /// ron's cursor already points at the problem.
    Cursor,
    /// ron's cursor is just past the offending value (or field name).
    AfterValue,
    /// ron's cursor is on the closing bracket of the offending struct.
    AtClose,
    /// ron's cursor is either on the value or just past it.
    Value,
}

fn section_name(rust_name: &str) -> &str {
    match rust_name {
        "Config" => "the top level",
        "PortConfig" => "a port",
        "RouteConfig" => "a route",
        "NeighbourConfig" => "a neighbour",
        "TimeoutsConfig" => "timeouts",
        "ServiceConfig" => "a service",
        "RealServerConfig" => "a real server",
        other => other,
    }
}

fn in_section(outer: &Option<String>) -> String {
    outer
        .as_deref()
        .map(|o| format!(" in {}", section_name(o)))
        .unwrap_or_default()
}

/// Converts a ron error into our one-line, positioned form.
pub(super) fn ron_error(src: &str, file: &str, e: &ron::error::SpannedError) -> ConfigError {
    use ron::Error as E;
    let (message, anchor) = match &e.code {
        E::Message(m) => match m.strip_prefix(VALUE_MARK) {
            Some(m) => (m.to_string(), Anchor::AfterValue),
            None => (m.clone(), Anchor::Cursor),
        },
        E::NoSuchStructField {
            expected,
            found,
            outer,
        } => (
            format!(
                "unknown field `{found}`{}: expected one of {}",
                in_section(outer),
                expected.join(", ")
            ),
            Anchor::AfterValue,
        ),
        E::MissingStructField { field, outer } => (
            format!("missing field `{field}`{}", in_section(outer)),
            Anchor::AtClose,
        ),
        E::DuplicateStructField { field, outer } => (
            format!("duplicate field `{field}`{}", in_section(outer)),
            Anchor::AfterValue,
        ),
        E::InvalidValueForType { expected, found } => (
            format!("expected {expected}, found {found}"),
            Anchor::AfterValue,
        ),
        E::IntegerOutOfBounds => (
            "integer out of range for this field".to_string(),
            Anchor::Value,
        ),
        E::ExpectedDifferentStructName { found, .. } => (
            // Our structs' Rust names mean nothing to an operator; names are
            // optional in RON, so suggest dropping it.
            format!("unexpected struct name `{found}`: expected `(` without a name"),
            Anchor::AfterValue,
        ),
        E::ExpectedNamedStructLike(_) | E::ExpectedStructLike => {
            ("expected `(`".to_string(), Anchor::Cursor)
        }
        E::ExpectedComma => ("expected `,`".to_string(), Anchor::Cursor),
        E::ExpectedMapColon => ("expected `:`".to_string(), Anchor::Cursor),
        E::Eof => ("unexpected end of file".to_string(), Anchor::Cursor),
        other => {
            let s = other.to_string();
            let mut c = s.chars();
            let lowered = match c.next() {
                Some(first) => first.to_lowercase().chain(c).collect(),
                None => s,
            };
            (lowered, Anchor::Cursor)
        }
    };
    let cursor = offset_of(src, e.position.line, e.position.col);
    let offset = match anchor {
        Anchor::Cursor => cursor,
        Anchor::AfterValue => value_start_before(src, cursor),
        Anchor::AtClose => struct_start_at(src, cursor),
        Anchor::Value => value_start_at_or_before(src, cursor),
    };
    let (line, col) = line_col(src, offset);
    ConfigError::Parse {
        file: file.to_string(),
        line,
        col,
        message,
    }
}
