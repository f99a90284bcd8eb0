//! Hugepage pre-check run before `rte_eal_init`.
//!
//! Layer: startup. EAL without hugepages fails deep inside memory init with
//! a message that does not say what to do; this module answers "are there
//! free hugepages and a hugetlbfs to map them from?" from `/proc/meminfo`
//! and `/proc/mounts` first, so `Eal::init` can fail with ONE line and the
//! remedy ([`crate::HwError::NoHugepages`]).
//!
//! Guarantees: the parsers are pure functions of the text they are given and
//! never panic. Refuses: judging page sizes other than the default one
//! (`HugePages_Free` counts only default-size pages; 1 GiB pages reserved
//! at boot next to 2 MiB default pages are not seen).

use crate::HwError;

/// `HugePages_Free` from a `/proc/meminfo` text, in pages of the default
/// hugepage size.
///
/// Returns `None` if the line is missing or its value is not a number (a
/// kernel without hugetlb support).
pub fn hugepages_free(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("HugePages_Free:")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Whether a `/proc/mounts` text lists a mounted `hugetlbfs` (third field
/// of a line, as in fstab(5)).
pub fn hugetlbfs_mounted(mounts: &str) -> bool {
    mounts
        .lines()
        .any(|line| line.split_whitespace().nth(2) == Some("hugetlbfs"))
}

/// Whether EAL with these args will want hugepages: yes unless `--no-huge`
/// is among them (EAL's own switch; `-m` alone still uses hugepages).
pub fn wants_hugepages(eal_args: &[String]) -> bool {
    !eal_args.iter().any(|a| a == "--no-huge")
}

/// Whether hugepage-backed EAL can start, judged from the two texts: at
/// least one free hugepage and a hugetlbfs mount.
pub fn hugepages_usable(meminfo: &str, mounts: &str) -> bool {
    hugepages_free(meminfo).unwrap_or(0) > 0 && hugetlbfs_mounted(mounts)
}

/// The directory of EAL's `--huge-dir` option (`--huge-dir=DIR` or
/// `--huge-dir DIR`), if given.
pub fn huge_dir(eal_args: &[String]) -> Option<&str> {
    eal_args.iter().enumerate().find_map(|(i, a)| {
        if let Some(d) = a.strip_prefix("--huge-dir=") {
            Some(d)
        } else if a == "--huge-dir" {
            eal_args.get(i + 1).map(String::as_str)
        } else {
            None
        }
    })
}

/// Whether `/proc/mounts` text has a hugetlbfs mounted exactly at `dir`
/// (trailing slashes ignored).
pub fn hugetlbfs_mounted_at(mounts: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    mounts.lines().any(|line| {
        let mut f = line.split_whitespace();
        let (_, at, fs) = (f.next(), f.next(), f.next());
        fs == Some("hugetlbfs") && at.map(|a| a.trim_end_matches('/')) == Some(dir)
    })
}

/// The pre-check `Eal::init` runs: if `eal_args` want hugepages, the
/// `/proc/meminfo` and `/proc/mounts` texts must show them usable, and a
/// `--huge-dir` must be a hugetlbfs mount point.
///
/// # Errors
/// [`HwError::NoHugepages`] or [`HwError::HugeDirNotHugetlbfs`] (one line
/// with the remedy) otherwise.
pub fn check(eal_args: &[String], meminfo: &str, mounts: &str) -> Result<(), HwError> {
    if !wants_hugepages(eal_args) {
        return Ok(());
    }
    if !hugepages_usable(meminfo, mounts) {
        return Err(HwError::NoHugepages);
    }
    if let Some(dir) = huge_dir(eal_args) {
        if !hugetlbfs_mounted_at(mounts, dir) {
            return Err(HwError::HugeDirNotHugetlbfs {
                dir: dir.to_string(),
            });
        }
    }
    Ok(())
}

/// [`check`] against this machine's `/proc/meminfo` and `/proc/mounts`;
/// unreadable files count as "no hugepages".
///
/// # Errors
/// [`HwError::NoHugepages`] as for [`check`].
pub fn check_now(eal_args: &[String]) -> Result<(), HwError> {
    if !wants_hugepages(eal_args) {
        return Ok(());
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    check(eal_args, &meminfo, &mounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:        8123456 kB\n\
        MemFree:         1234567 kB\n\
        AnonHugePages:         0 kB\n\
        HugePages_Total:     512\n\
        HugePages_Free:      317\n\
        HugePages_Rsvd:        0\n\
        HugePages_Surp:        0\n\
        Hugepagesize:       2048 kB\n";

    const MOUNTS: &str = "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n\
        none /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n\
        tmpfs /run tmpfs rw 0 0\n";

    #[test]
    fn test_huge_dir_must_be_hugetlbfs() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            huge_dir(&args(&["-l", "0", "--huge-dir=/mnt/h"])),
            Some("/mnt/h")
        );
        assert_eq!(huge_dir(&args(&["--huge-dir", "/mnt/h"])), Some("/mnt/h"));
        assert_eq!(huge_dir(&args(&["-l", "0"])), None);
        assert!(check(&args(&["--huge-dir=/dev/hugepages/"]), MEMINFO, MOUNTS).is_ok());
        let e = check(&args(&["--huge-dir=/tmp"]), MEMINFO, MOUNTS).unwrap_err();
        assert!(matches!(e, HwError::HugeDirNotHugetlbfs { ref dir } if dir == "/tmp"));
        assert!(e
            .to_string()
            .starts_with("--huge-dir /tmp is not a mounted hugetlbfs"));
        assert!(check(&args(&["--no-huge", "--huge-dir=/tmp"]), MEMINFO, MOUNTS).is_ok());
    }

    #[test]
    fn test_parse_free() {
        assert_eq!(hugepages_free(MEMINFO), Some(317));
    }

    #[test]
    fn test_parse_free_zero() {
        let m = MEMINFO.replace("HugePages_Free:      317", "HugePages_Free:        0");
        assert_eq!(hugepages_free(&m), Some(0));
        assert!(!hugepages_usable(&m, MOUNTS));
    }

    #[test]
    fn test_parse_free_missing() {
        assert_eq!(hugepages_free("MemTotal: 1 kB\nHugePages_Total: 4\n"), None);
        assert_eq!(hugepages_free(""), None);
        assert_eq!(hugepages_free("HugePages_Free: lots\n"), None);
    }

    #[test]
    fn test_parse_free_not_confused_by_total() {
        // HugePages_Total comes first and must not be taken for Free.
        assert_eq!(
            hugepages_free("HugePages_Total: 9\nHugePages_Free: 2\n"),
            Some(2)
        );
    }

    #[test]
    fn test_mounted() {
        assert!(hugetlbfs_mounted(MOUNTS));
        assert!(!hugetlbfs_mounted(
            "proc /proc proc rw 0 0\n/dev/sda1 /hugetlbfs ext4 rw 0 0\n"
        ));
        assert!(!hugetlbfs_mounted(""));
    }

    #[test]
    fn test_usable_needs_mount() {
        assert!(hugepages_usable(MEMINFO, MOUNTS));
        // Free pages but nothing mounted: EAL cannot map them.
        assert!(!hugepages_usable(MEMINFO, "proc /proc proc rw 0 0\n"));
    }

    #[test]
    fn test_check_error_text() {
        let args = vec!["-l".to_string(), "0-1".to_string()];
        let err = check(&args, MEMINFO, "proc /proc proc rw 0 0\n").unwrap_err();
        assert_eq!(err, HwError::NoHugepages);
        assert_eq!(
            err.to_string(),
            "no free hugepages: run 'make hugepages' (echo 512 > /proc/sys/vm/nr_hugepages; \
             mount -t hugetlbfs none /dev/hugepages) or add \"--no-huge\", \"-m\", \"512\" to eal_args"
        );
        let zero = MEMINFO.replace("HugePages_Free:      317", "HugePages_Free:        0");
        assert_eq!(check(&args, &zero, MOUNTS), Err(HwError::NoHugepages));
        assert_eq!(check(&args, MEMINFO, MOUNTS), Ok(()));
        // --no-huge needs neither pages nor a mount.
        let no_huge = vec!["--no-huge".to_string(), "-m".to_string(), "512".to_string()];
        assert_eq!(check(&no_huge, "", ""), Ok(()));
        assert_eq!(check_now(&no_huge), Ok(()));
    }

    #[test]
    fn test_wants_hugepages() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(wants_hugepages(&a(&["-l", "0-1", "-m", "512"])));
        assert!(!wants_hugepages(&a(&[
            "-l",
            "0-1",
            "--no-huge",
            "-m",
            "512"
        ])));
        assert!(wants_hugepages(&a(&[])));
    }
}
