//! Scripts: `MISC_CHECK`'s `misc_path`, and the config's `notify_up`,
//! `notify_down`, `quorum_up`, `quorum_down`.
//!
//! - [`parse_command`] splits a command line with shell-style quoting, as
//!   keepalived splits `misc_path` and `notify_*` strings (quotes group
//!   words; no expansion, no pipes).
//! - [`check_script_security`] is keepalived's `enable_script_security`
//!   rule (`core/notify.c`, `check_security()`).
//! - [`run_script`] runs one with a timeout in its own process group, stdin
//!   from /dev/null, output discarded; the whole group is killed on
//!   timeout (or if the future is dropped).

use std::fmt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Why a script was refused; `Display` is one sentence for a positioned
/// config error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptError {
    /// The command line is empty.
    Empty,
    /// The command line does not parse (e.g. an unclosed quote).
    Syntax(String),
    /// The script, or a directory on its path, does not exist or cannot
    /// be reached.
    NotFound(PathBuf),
    /// A path component is of the wrong type (a non-directory in the
    /// middle, or a script that is not a regular file).
    WrongType(PathBuf),
    /// The script has no execute bit.
    NotExecutable(PathBuf),
    /// `path` (the script, or `component` on its way) is writable by a
    /// group other than root's or by everyone.
    Writable { path: PathBuf, component: PathBuf },
    /// Running as root, `component` of `path` is owned by uid `uid`.
    NotRootOwned {
        path: PathBuf,
        component: PathBuf,
        uid: u32,
    },
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptError::Empty => write!(f, "the script command is empty"),
            ScriptError::Syntax(e) => write!(f, "the script command does not parse: {e}"),
            ScriptError::NotFound(p) => write!(f, "script {} not found", p.display()),
            ScriptError::WrongType(p) => {
                write!(f, "script path {} has a component of the wrong file type", p.display())
            }
            ScriptError::NotExecutable(p) => write!(f, "script {} is not executable", p.display()),
            ScriptError::Writable { path, component } if path == component => write!(
                f,
                "script {} is writable by users other than its owner (group or world write permission); refused as keepalived's enable_script_security does",
                path.display()
            ),
            ScriptError::Writable { path, component } => write!(
                f,
                "script {} is in directory {} that is writable by users other than its owner; refused as keepalived's enable_script_security does",
                path.display(),
                component.display()
            ),
            ScriptError::NotRootOwned { path, component, uid } => write!(
                f,
                "script {} is run as root but {} is owned by uid {uid}, not root; refused as keepalived's enable_script_security does",
                path.display(),
                component.display()
            ),
        }
    }
}

impl std::error::Error for ScriptError {}

/// Splits a command line into argv with POSIX-shell quoting (single and
/// double quotes, backslash escapes; via the `shell-words` crate). No
/// variable, glob or tilde expansion happens, and `|`, `;`, `>` are plain
/// characters of a word. Errors: [`ScriptError::Empty`],
/// [`ScriptError::Syntax`].
pub fn parse_command(s: &str) -> Result<Vec<String>, ScriptError> {
    let argv = shell_words::split(s).map_err(|e| ScriptError::Syntax(e.to_string()))?;
    if argv.is_empty() {
        return Err(ScriptError::Empty);
    }
    Ok(argv)
}

/// keepalived's `enable_script_security` check (`core/notify.c`): the
/// script is resolved (a bare name through `$PATH`, then symlinks
/// resolved, as keepalived's `realpath`), then the script and every
/// directory from `/` down to it are examined:
/// - when `running_as_root`, each must be owned by root (uid 0);
/// - none may be writable by its group unless the group is root's (gid 0),
///   nor by everyone, except directories with the sticky bit (`/tmp`);
/// - the script must be a regular file with an execute bit.
///
/// Errors are [`ScriptError`]s naming the offending component.
pub fn check_script_security(path: &Path, running_as_root: bool) -> Result<(), ScriptError> {
    let found = if path.components().count() == 1 && !path.is_absolute() {
        search_path(path).ok_or_else(|| ScriptError::NotFound(path.to_path_buf()))?
    } else {
        path.to_path_buf()
    };
    let real =
        std::fs::canonicalize(&found).map_err(|_| ScriptError::NotFound(path.to_path_buf()))?;
    let mut walk: Vec<&Path> = real.ancestors().collect();
    walk.reverse(); // "/" first, the script last
    let last = walk.len() - 1;
    for (i, comp) in walk.iter().enumerate() {
        let md = std::fs::symlink_metadata(comp)
            .map_err(|_| ScriptError::NotFound(path.to_path_buf()))?;
        let is_script = i == last;
        if (is_script && !md.is_file()) || (!is_script && !md.is_dir()) {
            return Err(ScriptError::WrongType(path.to_path_buf()));
        }
        if running_as_root && md.uid() != 0 {
            return Err(ScriptError::NotRootOwned {
                path: path.to_path_buf(),
                component: comp.to_path_buf(),
                uid: md.uid(),
            });
        }
        let mode = md.mode();
        let sticky_dir = md.is_dir() && mode & 0o1000 != 0;
        let group_w = md.gid() != 0 && mode & 0o020 != 0;
        let world_w = mode & 0o002 != 0;
        if !sticky_dir && (group_w || world_w) {
            return Err(ScriptError::Writable {
                path: path.to_path_buf(),
                component: comp.to_path_buf(),
            });
        }
        if is_script && md.permissions().mode() & 0o111 == 0 {
            return Err(ScriptError::NotExecutable(path.to_path_buf()));
        }
    }
    Ok(())
}

/// The first `$PATH` entry holding `name` (keepalived's `find_path`).
fn search_path(name: &Path) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// How a script ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptOutcome {
    /// It exited with this status (0..=255).
    Exited(i32),
    /// It was killed by this signal (not by us).
    Signalled(i32),
    /// It ran past the timeout; its process group was killed (SIGKILL).
    TimedOut,
    /// It could not be started (not found, not executable, ...): the
    /// error's text.
    SpawnFailed(String),
}

/// Kills the script's process group if the run is abandoned (timeout, or
/// the future dropped, e.g. the checker task aborted).
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pg) = self.0.take() {
            let _ = killpg(pg, Signal::SIGKILL);
        }
    }
}

/// Runs `argv` (program then arguments; no shell) with stdin, stdout and
/// stderr on /dev/null, in a new process group, for at most `timeout`.
/// On timeout the whole group (the script and anything it started) is
/// killed with SIGKILL at once and the outcome is
/// [`ScriptOutcome::TimedOut`] (keepalived sends SIGTERM, then SIGKILL 2 s
/// later; killing at once keeps the probe within its deadline). Never
/// blocks the runtime (tokio's child reaper). An empty argv is
/// `SpawnFailed`.
pub async fn run_script(argv: &[String], timeout: Duration) -> ScriptOutcome {
    let Some((prog, args)) = argv.split_first() else {
        return ScriptOutcome::SpawnFailed("empty command".into());
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return ScriptOutcome::SpawnFailed(format!("{prog}: {}", super::net::io_reason(&e)))
        }
    };
    let mut guard = GroupGuard(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    );
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            // The leader is gone; its group may live on, which is the
            // script's business once it has exited in time.
            guard.0 = None;
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(c), _) => ScriptOutcome::Exited(c),
                (None, Some(s)) => ScriptOutcome::Signalled(s),
                (None, None) => ScriptOutcome::SpawnFailed("no exit status".into()),
            }
        }
        Ok(Err(e)) => ScriptOutcome::SpawnFailed(format!("wait: {}", super::net::io_reason(&e))),
        Err(_) => {
            drop(guard); // SIGKILL to the group; kill_on_drop reaps the leader
            ScriptOutcome::TimedOut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{rt, script, TempDir};
    use super::*;
    use std::time::Instant;

    #[test]
    fn parse_quotes_like_a_shell() {
        assert_eq!(
            parse_command(r#"/bin/check "a b" 'c d' e\ f"#).unwrap(),
            ["/bin/check", "a b", "c d", "e f"]
        );
        assert_eq!(parse_command("  "), Err(ScriptError::Empty));
        assert!(matches!(
            parse_command("/bin/x 'open"),
            Err(ScriptError::Syntax(_))
        ));
    }

    #[test]
    fn security_accepts_a_root_owned_0755_script() {
        let d = TempDir::new("sec-ok");
        let s = script(d.path(), "ok.sh", "exit 0");
        // /tmp is sticky and world-writable: allowed, as keepalived.
        check_script_security(&s, true).unwrap();
        check_script_security(Path::new("sh"), true).expect("a bare name is found through PATH");
    }

    #[test]
    fn security_refusals() {
        let d = TempDir::new("sec-bad");
        let s = script(d.path(), "w.sh", "exit 0");
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o757)).unwrap();
        let e = check_script_security(&s, true).unwrap_err();
        assert_eq!(
            e,
            ScriptError::Writable {
                path: s.clone(),
                component: s.clone()
            }
        );
        assert!(
            e.to_string()
                .contains("writable by users other than its owner"),
            "{e}"
        );

        // group-writable directory with a non-root group
        let sub = d.path().join("gw");
        std::fs::create_dir(&sub).unwrap();
        let s2 = script(&sub, "s.sh", "exit 0");
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o775)).unwrap();
        nix::unistd::chown(&sub, None, Some(nix::unistd::Gid::from_raw(65534))).unwrap();
        let e = check_script_security(&s2, true).unwrap_err();
        assert_eq!(
            e,
            ScriptError::Writable {
                path: s2.clone(),
                component: sub.clone()
            }
        );
        assert!(
            e.to_string()
                .contains(&format!("in directory {}", sub.display())),
            "{e}"
        );
        // the same directory group-writable but group root: allowed
        nix::unistd::chown(&sub, None, Some(nix::unistd::Gid::from_raw(0))).unwrap();
        check_script_security(&s2, true).unwrap();

        // not executable
        let s3 = d.path().join("noexec.sh");
        std::fs::write(&s3, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&s3, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            check_script_security(&s3, true),
            Err(ScriptError::NotExecutable(s3.clone()))
        );

        // owned by a non-root user, when root
        let s4 = script(d.path(), "nobody.sh", "exit 0");
        nix::unistd::chown(&s4, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        assert_eq!(
            check_script_security(&s4, true),
            Err(ScriptError::NotRootOwned {
                path: s4.clone(),
                component: s4.clone(),
                uid: 65534
            })
        );
        check_script_security(&s4, false).expect("ownership is only checked when running as root");

        // not found; a directory instead of a script
        let missing = d.path().join("missing.sh");
        assert_eq!(
            check_script_security(&missing, true),
            Err(ScriptError::NotFound(missing.clone()))
        );
        assert_eq!(
            check_script_security(d.path(), true),
            Err(ScriptError::WrongType(d.path().to_path_buf()))
        );
    }

    #[test]
    fn run_exit_codes_signal_and_spawn_failure() {
        let d = TempDir::new("run");
        let rt = rt();
        let t = Duration::from_secs(5);
        for code in [0, 1, 2, 77, 255] {
            let s = script(d.path(), &format!("e{code}.sh"), &format!("exit {code}"));
            assert_eq!(
                rt.block_on(run_script(&[s.display().to_string()], t)),
                ScriptOutcome::Exited(code)
            );
        }
        let s = script(d.path(), "sig.sh", "kill -TERM $$");
        assert_eq!(
            rt.block_on(run_script(&[s.display().to_string()], t)),
            ScriptOutcome::Signalled(15)
        );
        let r = rt.block_on(run_script(
            &[d.path().join("nope").display().to_string()],
            t,
        ));
        assert!(
            matches!(&r, ScriptOutcome::SpawnFailed(m) if m.contains("no such file")),
            "{r:?}"
        );
        // stdin is /dev/null: `read` gets EOF at once instead of hanging
        let s = script(
            d.path(),
            "stdin.sh",
            "if read x; then exit 3; else exit 4; fi",
        );
        assert_eq!(
            rt.block_on(run_script(&[s.display().to_string()], t)),
            ScriptOutcome::Exited(4)
        );
        // arguments arrive as given
        let s = script(
            d.path(),
            "args.sh",
            r#"[ "$1" = "a b" ] && [ "$2" = "c" ] && exit 9; exit 1"#,
        );
        let argv = parse_command(&format!("{} 'a b' c", s.display())).unwrap();
        assert_eq!(rt.block_on(run_script(&argv, t)), ScriptOutcome::Exited(9));
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let d = TempDir::new("timeout");
        let marker = d.path().join("child.pid");
        // The script starts a grandchild that would outlive it, then hangs.
        let s = script(
            d.path(),
            "hang.sh",
            &format!("sleep 30 & echo $! > {}\nsleep 30", marker.display()),
        );
        let rt = rt();
        let start = Instant::now();
        let r = rt.block_on(run_script(
            &[s.display().to_string()],
            Duration::from_millis(300),
        ));
        let took = start.elapsed();
        assert_eq!(r, ScriptOutcome::TimedOut);
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(600),
            "{took:?}"
        );
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // the grandchild got SIGKILL with its group: gone (or a zombie
        // reaped by init) within a moment
        let gone = (0..50).any(|_| {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false);
            if alive {
                std::thread::sleep(Duration::from_millis(20));
            }
            !alive
        });
        assert!(
            gone,
            "the script's background child {pid} survived the timeout"
        );
    }
}
