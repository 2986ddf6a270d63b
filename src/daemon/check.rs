//! The render check: before the daemon renders a spec revision itself,
//! a child process (`druppie validate --render`) renders all of it (or
//! the plans a change reaches), in memory, under the same limits. It
//! starts as the daemon opens the spec, loading it meanwhile, and is
//! told the plans once the daemon knows them. A template that would
//! exhaust memory ends that child with a located error
//! ([`crate::budget`]), and the daemon records the revision as refused
//! instead of going down with it.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start the check: the druppie binary and the arguments before
/// `--spec` (the config it runs with).
#[derive(Debug, Clone)]
pub struct RenderCheck {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The longest a check may run.
    pub timeout: Duration,
}

/// The commit that last passed the check. The same commit renders the
/// same under the same configuration, so a reconcile that finds the spec
/// where it was (a poll, a webhook about a target repo) does not render
/// all of it again in a child; a checkout with uncommitted edits is
/// always checked.
#[derive(Debug, Default)]
pub struct Passed(std::sync::Mutex<Option<String>>);

impl Passed {
    /// Whether `commit` (a clean revision's) passed already.
    pub fn holds(&self, commit: Option<&str>) -> bool {
        commit.is_some_and(|c| self.0.lock().expect("check lock").as_deref() == Some(c))
    }

    /// Remembers that `commit` passed; `None` (edits) forgets.
    pub fn set(&self, commit: Option<&str>) {
        *self.0.lock().expect("check lock") = commit.map(str::to_owned);
    }
}

/// Why a revision did not pass the check.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The spec does not render within the limits: its own words.
    #[error("{0}")]
    Refused(String),
    #[error("the render check ran longer than {0:?}; the spec's templates take too long")]
    TimedOut(Duration),
    /// The check could not start, or was killed from outside.
    #[error("the render check did not finish: {0}")]
    Broken(String),
}

impl CheckError {
    /// A refusal or a timeout is the spec's doing; a check that could not
    /// run or was killed (the machine short of memory) may pass next time.
    pub fn is_transient(&self) -> bool {
        matches!(self, CheckError::Broken(_))
    }
}

/// The most of the child's stderr kept for the message.
const STDERR_LIMIT: u64 = 64 * 1024;

impl RenderCheck {
    /// Renders the spec at `root` in a child process: every plan, or
    /// only `plans`.
    ///
    /// # Errors
    /// [`CheckError`].
    pub fn run(
        &self,
        root: &Path,
        plans: Option<&std::collections::BTreeSet<String>>,
    ) -> Result<(), CheckError> {
        self.start(root).finish(plans)
    }

    /// Starts the check at `root` before the plans to render are known:
    /// the child loads and validates the spec meanwhile, then reads them
    /// from its standard input ([`Started::finish`]).
    pub fn start(&self, root: &Path) -> Started {
        let child = Command::new(&self.program)
            .args(&self.args)
            .arg("--spec")
            .arg(root)
            .args([
                "--color",
                "never",
                "validate",
                "--render",
                "--plans-from-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start it: {e}"));
        let child = child.map(|mut child| {
            let stderr = child.stderr.take();
            let reader = std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(stderr) = stderr {
                    let _ = stderr.take(STDERR_LIMIT).read_to_string(&mut text);
                }
                text
            });
            (child, reader)
        });
        Started {
            child: Some(child),
            started: Instant::now(),
            timeout: self.timeout,
        }
    }
}

/// A check started, waiting for the plans it renders; dropped unfinished,
/// its child is killed.
pub struct Started {
    child: Option<Result<(Child, std::thread::JoinHandle<String>), String>>,
    started: Instant,
    timeout: Duration,
}

impl Started {
    /// Tells the child which plans to render (`None`: every plan) and
    /// waits for its verdict.
    ///
    /// # Errors
    /// [`CheckError`].
    pub fn finish(
        mut self,
        plans: Option<&std::collections::BTreeSet<String>>,
    ) -> Result<(), CheckError> {
        let (mut child, reader) = self
            .child
            .take()
            .expect("a check is finished once")
            .map_err(CheckError::Broken)?;
        if plans.is_some_and(std::collections::BTreeSet::is_empty) {
            // No plan to render: nothing can fail.
            let _ = child.kill();
            let _ = child.wait();
            return Ok(());
        }
        if let Some(mut stdin) = child.stdin.take() {
            // One name a line; none, every plan. Written aside: the child
            // reads them only once it has loaded the spec, and one that
            // never does is killed at the timeout. A child that stopped
            // before reading says why on stderr.
            let names: String = plans
                .into_iter()
                .flatten()
                .map(|p| format!("{p}\n"))
                .collect();
            std::thread::spawn(move || {
                let _ = stdin.write_all(names.as_bytes());
            });
        }
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if self.started.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(CheckError::TimedOut(self.timeout));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => return Err(CheckError::Broken(e.to_string())),
            }
        };
        let said = reader.join().unwrap_or_default();
        match status.code() {
            Some(0) => Ok(()),
            Some(1) => Err(CheckError::Refused(errors_only(&said))),
            Some(code) => Err(CheckError::Broken(format!("exit status {code}: {said}"))),
            None => Err(CheckError::Broken(format!("{status}"))),
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(Ok((child, _))) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `error:` lines and what follows each (the location, the help),
/// without warnings.
fn errors_only(text: &str) -> String {
    let mut keep = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("error") {
            keep = true;
        } else if line.starts_with("warning") {
            keep = false;
        }
        if keep && !line.trim().is_empty() {
            out.push(line);
        }
    }
    if out.is_empty() {
        text.trim().to_owned()
    } else {
        out.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_are_kept() {
        let text = "warning: unused\n --> a.md\n\nerror: too big\n --> templates/x.j2\n  = help: h\nspec does not render: 1 error\n";
        assert_eq!(
            errors_only(text),
            "error: too big\n --> templates/x.j2\n  = help: h\nspec does not render: 1 error"
        );
    }

    #[test]
    fn a_check_that_cannot_start_is_transient_and_a_refusal_is_not() {
        let check = RenderCheck {
            program: PathBuf::from("/nonexistent/druppie"),
            args: Vec::new(),
            timeout: Duration::from_secs(5),
        };
        let err = check.run(Path::new("."), None).expect_err("cannot start");
        assert!(err.is_transient(), "{err}");
        assert!(!CheckError::Refused("x".into()).is_transient());
        assert!(!CheckError::TimedOut(Duration::from_secs(1)).is_transient());
    }
}
