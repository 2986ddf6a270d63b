//! The render check: before the daemon renders a spec revision itself,
//! a child process renders all of it (or the plans a change reaches), in
//! memory, under the same limits. A template that would exhaust memory
//! ends that child with a located error ([`crate::budget`]), and the
//! daemon records the revision as refused instead of going down with it.
//!
//! The daemon's own spec is checked by a child kept between reconciles
//! (`druppie render-check`, [`Open`] then [`Render`] on its standard
//! input): it holds the spec it checked last, so a push that edits a few
//! plan files has it read those again, not the whole spec
//! ([`crate::spec::reload`]). It starts as the daemon opens the spec,
//! loading it meanwhile, and is told the plans once the daemon knows
//! them. A child that refused a spec, ran out of time or was dropped
//! unfinished is gone; the next check starts another. Other specs (a
//! chat's proposal) are checked by a child of their own
//! (`validate --render`), which ends with its check.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How to start the check: the druppie binary and the arguments before
/// `--spec` (the config it runs with).
#[derive(Debug)]
pub struct RenderCheck {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The longest a check may run.
    pub timeout: Duration,
    /// The child kept between the daemon's checks.
    kept: Mutex<Option<Kept>>,
}

/// A check's first request: load and validate the spec, at commit `to`
/// (`None`: not a commit). A child that holds the spec at `from` reads
/// only `changed` again (paths from the spec root).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Open {
    pub from: Option<String>,
    pub to: Option<String>,
    pub changed: Option<Vec<String>>,
}

/// A check's second request: render these plans (`None`: every plan;
/// none listed: none).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Render {
    pub plans: Option<Vec<String>>,
}

/// What the child answers to a [`Render`] that passed: how many files
/// it read again for the [`Open`] before, when it did not load the whole
/// spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passed {
    pub passed: bool,
    pub files_read_again: Option<usize>,
}

/// The commit that last passed the check. The same commit renders the
/// same under the same configuration, so a reconcile that finds the spec
/// where it was (a poll, a webhook about a target repo) does not render
/// all of it again in a child; a checkout with uncommitted edits is
/// always checked.
#[derive(Debug, Default)]
pub struct Checked(std::sync::Mutex<Option<String>>);

impl Checked {
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
const STDERR_LIMIT: usize = 64 * 1024;

impl RenderCheck {
    pub fn new(program: PathBuf, args: Vec<OsString>, timeout: Duration) -> RenderCheck {
        RenderCheck {
            program,
            args,
            timeout,
            kept: Mutex::new(None),
        }
    }

    /// Renders every plan of the spec at `root` in a child of its own
    /// (`validate --render`).
    ///
    /// # Errors
    /// [`CheckError`].
    pub fn run(&self, root: &Path) -> Result<(), CheckError> {
        let started = Instant::now();
        let child = self
            .spawn(root, &["validate", "--render"])
            .map_err(CheckError::Broken)?;
        child.verdict(self.timeout.saturating_sub(started.elapsed()))
    }

    /// Starts the check of the daemon's spec at `root`: the child kept
    /// from the last check (or a new one) loads and validates it while
    /// the daemon does, then waits for the plans ([`Started::finish`]).
    pub fn start(&self, root: &Path, open: &Open) -> Started<'_> {
        let started = Instant::now();
        let kept = self.kept.lock().expect("check lock").take();
        // A child kept for another root, or that ended since, is
        // replaced.
        let kept = kept.and_then(|mut k| {
            if k.root == root && matches!(k.child.try_wait(), Ok(None)) {
                return Some(k);
            }
            k.kill();
            None
        });
        let child = kept
            .map_or_else(|| self.spawn(root, &["render-check"]), Ok)
            .and_then(|k| {
                // What it said is this check's alone.
                k.said.lock().expect("stderr lock").clear();
                match k.send(open) {
                    Ok(()) => Ok(k),
                    Err(e) => {
                        k.kill();
                        Err(e)
                    }
                }
            });
        Started {
            check: self,
            child: Some(child),
            started,
        }
    }

    /// A child running `args` on the spec at `root`, its output read.
    fn spawn(&self, root: &Path, args: &[&str]) -> Result<Kept, String> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .arg("--spec")
            .arg(root)
            .args(["--color", "never"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start it: {e}"))?;
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        // Requests are written aside: a child that never reads them is
        // killed at the timeout, not waited for.
        let (requests, pending) = mpsc::channel::<String>();
        if let Some(mut stdin) = stdin {
            std::thread::spawn(move || {
                for line in pending {
                    if stdin
                        .write_all(line.as_bytes())
                        .and_then(|()| stdin.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
        let (answer, answers) = mpsc::channel::<String>();
        if let Some(stdout) = stdout {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    if answer.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        let said = Arc::new(Mutex::new(String::new()));
        let tail = Arc::clone(&said);
        let drain = std::thread::spawn(move || {
            let Some(mut stderr) = stderr else { return };
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                let mut text = tail.lock().expect("stderr lock");
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
                if text.len() > STDERR_LIMIT {
                    let mut cut = text.len() - STDERR_LIMIT;
                    while !text.is_char_boundary(cut) {
                        cut += 1;
                    }
                    text.drain(..cut);
                }
            }
        });
        Ok(Kept {
            root: root.to_owned(),
            child,
            requests,
            answers,
            said,
            drain,
        })
    }
}

impl Drop for RenderCheck {
    fn drop(&mut self) {
        if let Some(kept) = self.kept.lock().expect("check lock").take() {
            kept.kill();
        }
    }
}

/// A check's child, with threads writing its requests and reading its
/// answers and its standard error.
struct Kept {
    root: PathBuf,
    child: Child,
    requests: mpsc::Sender<String>,
    answers: Receiver<String>,
    /// The last [`STDERR_LIMIT`] bytes it wrote to standard error.
    said: Arc<Mutex<String>>,
    drain: JoinHandle<()>,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("pid", &self.child.id())
            .finish()
    }
}

impl Kept {
    /// Sends `request` as one line of JSON.
    fn send(&self, request: &impl serde::Serialize) -> Result<(), String> {
        let mut line = serde_json::to_string(request).map_err(|e| e.to_string())?;
        line.push('\n');
        self.requests
            .send(line)
            .map_err(|_| "the check's input closed".to_owned())
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `left` for the child to end, and what its end says.
    fn verdict(mut self, left: Duration) -> Result<(), CheckError> {
        let until = Instant::now() + left;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() > until => {
                    let timeout = left;
                    self.kill();
                    return Err(CheckError::TimedOut(timeout));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => return Err(CheckError::Broken(e.to_string())),
            }
        };
        let _ = self.drain.join();
        let said = std::mem::take(&mut *self.said.lock().expect("stderr lock"));
        match status.code() {
            Some(0) => Ok(()),
            Some(1) => Err(CheckError::Refused(errors_only(&said))),
            Some(code) => Err(CheckError::Broken(format!("exit status {code}: {said}"))),
            None => Err(CheckError::Broken(format!("{status}"))),
        }
    }
}

/// A check of the daemon's spec started, waiting for the plans it
/// renders; dropped unfinished, its child is killed.
pub struct Started<'c> {
    check: &'c RenderCheck,
    child: Option<Result<Kept, String>>,
    started: Instant,
}

impl Started<'_> {
    /// Tells the child which plans to render (`None`: every plan) and
    /// waits for its verdict; a child that passed is kept for the next
    /// check.
    ///
    /// # Errors
    /// [`CheckError`].
    pub fn finish(
        mut self,
        plans: Option<&std::collections::BTreeSet<String>>,
    ) -> Result<Passed, CheckError> {
        let kept = self
            .child
            .take()
            .expect("a check is finished once")
            .map_err(CheckError::Broken)?;
        let plans = plans.map(|p| p.iter().cloned().collect());
        if let Err(e) = kept.send(&Render { plans }) {
            kept.kill();
            return Err(CheckError::Broken(e));
        }
        let timeout = self.check.timeout;
        match kept
            .answers
            .recv_timeout(timeout.saturating_sub(self.started.elapsed()))
        {
            Ok(answer) => match serde_json::from_str::<Passed>(&answer) {
                Ok(passed) if passed.passed => {
                    *self.check.kept.lock().expect("check lock") = Some(kept);
                    Ok(passed)
                }
                _ => {
                    kept.kill();
                    Err(CheckError::Broken(format!("it answered {answer:?}")))
                }
            },
            Err(RecvTimeoutError::Timeout) => {
                kept.kill();
                Err(CheckError::TimedOut(timeout))
            }
            // It ended: its status and standard error say why.
            Err(RecvTimeoutError::Disconnected) => {
                let left = timeout.saturating_sub(self.started.elapsed());
                kept.verdict(left)
                    .and_then(|()| Err(CheckError::Broken("it ended without an answer".to_owned())))
            }
        }
    }
}

impl Drop for Started<'_> {
    fn drop(&mut self) {
        if let Some(Ok(kept)) = self.child.take() {
            kept.kill();
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
        let check = RenderCheck::new(
            PathBuf::from("/nonexistent/druppie"),
            Vec::new(),
            Duration::from_secs(5),
        );
        let err = check.run(Path::new(".")).expect_err("cannot start");
        assert!(err.is_transient(), "{err}");
        assert!(!CheckError::Refused("x".into()).is_transient());
        assert!(!CheckError::TimedOut(Duration::from_secs(1)).is_transient());
    }
}
