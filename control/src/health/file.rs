//! `FILE_CHECK`: the state from a number in a file; see
//! [`FileCheck`](super::FileCheck) for the semantics chosen.

use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::{FileCheck, Outcome};

/// The bound on reading the file (a FIFO or a hung NFS mount must not
/// hang the checker).
pub(super) const READ_TIMEOUT: Duration = Duration::from_secs(1);

/// IPVS's largest weight.
const MAX_WEIGHT: i64 = 65535;

pub(super) async fn check(f: &FileCheck) -> Outcome {
    let read = async {
        // O_NONBLOCK as keepalived: a FIFO without a writer must not
        // block (and pin a blocking-pool thread) on open.
        let mut file = tokio::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&f.path)
            .await?;
        let mut buf = Vec::with_capacity(127);
        (&mut file).take(127).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    // keepalived: a file that cannot be read counts as 0.
    let text = match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(Ok(buf)) => buf,
        Ok(Err(_)) => Vec::new(),
        Err(_) => return Outcome::down(format!("reading {} timed out", f.path.display())),
    };
    let value = strtol(&text);
    if value < i64::from(i32::MIN) || value > i64::from(i32::MAX) {
        return Outcome::down(format!("invalid number {value} in {}", f.path.display()));
    }
    if value <= 0 {
        return Outcome::down(format!("{} reads {value}", f.path.display()));
    }
    let weight = f.dynamic.then(|| value.min(MAX_WEIGHT) as u32);
    Outcome::Up { weight }
}

/// C `strtol(s, NULL, 0)` on the file's bytes: blanks, sign, then `0x`
/// hex, `0` octal or decimal digits; stops at the first other byte;
/// no digits is 0; saturates at the i64 range.
fn strtol(s: &[u8]) -> i64 {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let radix: i64 = if s.get(i) == Some(&b'0')
        && matches!(s.get(i + 1), Some(b'x' | b'X'))
        && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    {
        i += 2;
        16
    } else if s.get(i) == Some(&b'0') {
        8
    } else {
        10
    };
    let mut v: i64 = 0;
    while let Some(d) = s.get(i).and_then(|&c| (c as char).to_digit(radix as u32)) {
        v = v.saturating_mul(radix).saturating_add(i64::from(d));
        i += 1;
    }
    if neg {
        -v
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{rt, TempDir};
    use super::super::{probe, CheckKind, FileCheck, Outcome, Probe};
    use super::strtol;
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::Duration;

    #[test]
    fn strtol_as_c() {
        assert_eq!(strtol(b"  42\n"), 42);
        assert_eq!(strtol(b"0x1F"), 31);
        assert_eq!(strtol(b"010"), 8);
        assert_eq!(strtol(b"-7abc"), -7);
        assert_eq!(strtol(b"+3"), 3);
        assert_eq!(strtol(b"abc"), 0);
        assert_eq!(strtol(b""), 0);
        assert_eq!(strtol(b"0x"), 0);
        assert_eq!(strtol(b"99999999999999999999999"), i64::MAX);
    }

    #[test]
    fn file_values() {
        let dir = TempDir::new("file");
        let path = dir.path().join("weight");
        let run = |dynamic: bool| {
            let p = Probe {
                kind: CheckKind::File(FileCheck {
                    path: path.clone(),
                    dynamic,
                }),
                target: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
                bindto: None,
                connect_timeout: Duration::from_secs(1),
            };
            rt().block_on(probe(&p)).outcome
        };
        let shown = path.display().to_string();
        assert_eq!(
            run(false),
            Outcome::down(format!("{shown} reads 0")),
            "missing file reads as 0"
        );
        std::fs::write(&path, "50\n").unwrap();
        assert_eq!(run(false), Outcome::Up { weight: None });
        assert_eq!(run(true), Outcome::Up { weight: Some(50) });
        std::fs::write(&path, "0").unwrap();
        assert_eq!(run(true), Outcome::down(format!("{shown} reads 0")));
        std::fs::write(&path, "-3").unwrap();
        assert_eq!(run(true), Outcome::down(format!("{shown} reads -3")));
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(run(false), Outcome::down(format!("{shown} reads 0")));
        std::fs::write(&path, "1000000").unwrap();
        assert_eq!(
            run(true),
            Outcome::Up {
                weight: Some(65535)
            }
        );
        std::fs::write(&path, "4294967296").unwrap();
        assert_eq!(
            run(true),
            Outcome::down(format!("invalid number 4294967296 in {shown}"))
        );
    }
}
