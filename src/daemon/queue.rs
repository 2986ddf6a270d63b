//! The triggers waiting for the reconcile worker. Triggers coalesce: a
//! burst of webhooks, file events and poll ticks becomes one reconcile,
//! and a push of a revision already reconciled becomes none.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

/// Why a reconcile was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The daemon started.
    Start,
    /// The poll interval passed.
    Poll,
    /// A spec file changed on disk.
    Watch,
    /// A webhook said `repo` changed; `after` is the spec repo's new
    /// commit when the push was to the spec branch.
    Webhook { after: Option<String> },
    /// A webhook said a pull request changed (opened, closed, merged,
    /// reviewed): what the forge holds besides git may have moved.
    PullRequest,
    /// A transient failure's backoff ran out.
    Retry,
    /// `POST /api/v1/promote`: after reconciling, promote `plan` to
    /// `to`.
    Promote { plan: String, to: String },
    /// This replica took a shard: its plans are reconciled (when the
    /// shards differ from the last reconcile's).
    Shards,
}

impl Trigger {
    /// A webhook as one replica passes it to the others
    /// ([`crate::kube::ShardLeases::ring`]); `None` for any other trigger.
    pub fn heard(&self) -> Option<String> {
        match self {
            Trigger::Webhook { after: Some(after) } => Some(format!("push {after}")),
            Trigger::Webhook { after: None } => Some("push".to_owned()),
            Trigger::PullRequest => Some("pull_request".to_owned()),
            _ => None,
        }
    }

    /// The webhook another replica passed on, as [`Trigger::heard`]
    /// wrote it; `None` for text it did not write.
    pub fn from_heard(text: &str) -> Option<Trigger> {
        match text.split_once(' ') {
            Some(("push", after)) if is_commit(after) => Some(Trigger::Webhook {
                after: Some(after.to_owned()),
            }),
            None if text == "push" => Some(Trigger::Webhook { after: None }),
            None if text == "pull_request" => Some(Trigger::PullRequest),
            _ => None,
        }
    }

    /// The one of two webhooks that covers both: a pull request event
    /// makes the reconcile whole, a push to a target repo asks for more
    /// than a push of one spec commit, and of two spec pushes the newer
    /// (`other`) counts.
    pub fn covering(self, other: Trigger) -> Trigger {
        let rank = |t: &Trigger| match t {
            Trigger::PullRequest => 2,
            Trigger::Webhook { after: None } => 1,
            _ => 0,
        };
        if rank(&self) > rank(&other) {
            self
        } else {
            other
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Poll => "poll",
            Trigger::Watch => "watch",
            Trigger::Webhook { .. } | Trigger::PullRequest => "webhook",
            Trigger::Retry => "retry",
            Trigger::Promote { .. } => "promote",
            Trigger::Shards => "shards",
        }
    }
}

/// A full hex commit id (40 or 64 digits), as a webhook names one.
fn is_commit(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The triggers taken in one go.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// How many of each kind.
    pub counts: BTreeMap<&'static str, u64>,
    /// Spec commits webhooks named.
    pub afters: BTreeSet<String>,
    /// A trigger other than a spec push naming its commit.
    pub open: bool,
    /// A trigger other than a push: the reconcile looks at everything,
    /// not only at what moved in git since the last one (see
    /// [`super::last`]).
    pub whole: bool,
    /// Promotions asked for, as (plan, environment), each once.
    pub promotions: Vec<(String, String)>,
}

impl Batch {
    fn add(&mut self, trigger: Trigger) {
        *self.counts.entry(trigger.name()).or_default() += 1;
        match trigger {
            Trigger::Webhook { after: Some(after) } => {
                self.afters.insert(after);
            }
            Trigger::Promote { plan, to } => {
                if !self.promotions.contains(&(plan.clone(), to.clone())) {
                    self.promotions.push((plan, to));
                }
                self.open = true;
                self.whole = true;
            }
            Trigger::Webhook { after: None } => self.open = true,
            // The worker compares the shards with the last reconcile's:
            // shards given back and taken again ask for nothing.
            Trigger::Shards => {}
            _ => {
                self.open = true;
                self.whole = true;
            }
        }
    }

    /// The trigger named in commits and logs: the most telling one.
    pub fn trigger(&self) -> &'static str {
        [
            "promote", "webhook", "watch", "retry", "start", "shards", "poll",
        ]
        .into_iter()
        .find(|t| self.counts.contains_key(t))
        .unwrap_or("poll")
    }

    /// Whether every trigger was a push of `commit`, reconciled already
    /// (or a shard taken: the worker compares the shards itself).
    pub fn only_pushes_of(&self, commit: Option<&str>) -> bool {
        !self.open && commit.is_some_and(|c| self.afters.iter().all(|a| a == c))
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// Work the worker runs between reconciles, with its reconciler: a
/// chat request's planner, on the one thread that writes the clones.
pub type Job = Box<dyn FnOnce(&super::Reconciler) + Send>;

#[derive(Default)]
struct Pending {
    batch: Option<Batch>,
    /// Run before the next batch, in order.
    jobs: VecDeque<Job>,
    stopping: bool,
}

/// Triggers in, batches out; one worker waits on it.
#[derive(Default)]
pub struct Queue {
    pending: Mutex<Pending>,
    wake: Condvar,
}

/// What the worker is told.
pub enum Next {
    Run(Batch),
    Job(Job),
    Stop,
}

impl Queue {
    pub fn push(&self, trigger: Trigger) {
        let mut p = self.pending.lock().expect("queue lock");
        p.batch.get_or_insert_with(Batch::default).add(trigger);
        self.wake.notify_one();
    }

    /// Hands `job` to the worker, which runs it before the next batch
    /// (after the reconcile in flight). A job still waiting when the
    /// worker stops is dropped unrun.
    pub fn job(&self, job: Job) {
        let mut p = self.pending.lock().expect("queue lock");
        p.jobs.push_back(job);
        self.wake.notify_one();
    }

    /// Asks the worker to stop after the reconcile in flight.
    pub fn stop(&self) {
        self.pending.lock().expect("queue lock").stopping = true;
        self.wake.notify_one();
    }

    pub fn stopping(&self) -> bool {
        self.pending.lock().expect("queue lock").stopping
    }

    /// Waits for triggers, or until `deadline` (then a retry).
    pub fn next(&self, deadline: Option<Instant>) -> Next {
        let mut p = self.pending.lock().expect("queue lock");
        loop {
            if p.stopping {
                return Next::Stop;
            }
            if let Some(job) = p.jobs.pop_front() {
                return Next::Job(job);
            }
            if let Some(batch) = p.batch.take() {
                return Next::Run(batch);
            }
            match deadline {
                None => p = self.wake.wait(p).expect("queue lock"),
                Some(at) => {
                    let now = Instant::now();
                    if now >= at {
                        let mut batch = Batch::default();
                        batch.add(Trigger::Retry);
                        return Next::Run(batch);
                    }
                    p = self.wake.wait_timeout(p, at - now).expect("queue lock").0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_passed_between_replicas_reads_back_as_itself_and_nothing_else_does() {
        let commit = "0123456789abcdef0123456789abcdef01234567".to_owned();
        for trigger in [
            Trigger::Webhook {
                after: Some(commit.clone()),
            },
            Trigger::Webhook { after: None },
            Trigger::PullRequest,
        ] {
            let text = trigger.heard().expect("a webhook is passed on");
            assert_eq!(Trigger::from_heard(&text), Some(trigger));
        }
        assert_eq!(Trigger::Poll.heard(), None);
        for text in [
            "push main",
            "push 0123",
            "poll",
            "push  ",
            "pull_request x",
            "",
        ] {
            assert_eq!(Trigger::from_heard(text), None, "{text:?}");
        }
        let spec = |c: &str| Trigger::Webhook {
            after: Some(c.repeat(40)),
        };
        assert_eq!(spec("a").covering(spec("b")), spec("b"), "the newer push");
        assert_eq!(
            Trigger::PullRequest.covering(spec("b")),
            Trigger::PullRequest
        );
        assert_eq!(
            spec("a").covering(Trigger::Webhook { after: None }),
            Trigger::Webhook { after: None }
        );
    }

    #[test]
    fn a_burst_of_triggers_is_one_batch() {
        let q = Queue::default();
        for _ in 0..1000 {
            q.push(Trigger::Webhook {
                after: Some("a".repeat(40)),
            });
        }
        q.push(Trigger::Poll);
        let Next::Run(batch) = q.next(None) else {
            panic!("a batch")
        };
        assert_eq!(batch.total(), 1001);
        assert_eq!(batch.trigger(), "webhook");
        // The poll makes it more than a push of one commit.
        assert!(!batch.only_pushes_of(Some(&"a".repeat(40))));
    }

    #[test]
    fn pushes_of_a_reconciled_commit_need_no_reconcile() {
        let mut batch = Batch::default();
        batch.add(Trigger::Webhook {
            after: Some("c1".into()),
        });
        batch.add(Trigger::Webhook {
            after: Some("c1".into()),
        });
        assert!(batch.only_pushes_of(Some("c1")));
        assert!(!batch.only_pushes_of(Some("c0")));
        assert!(!batch.only_pushes_of(None));
        batch.add(Trigger::Webhook { after: None });
        assert!(!batch.only_pushes_of(Some("c1")));
        // Pushes look at what moved in git; anything else at everything.
        assert!(!batch.whole);
        batch.add(Trigger::PullRequest);
        assert!(batch.whole);
        assert_eq!(batch.trigger(), "webhook");
    }

    #[test]
    fn a_job_runs_before_the_waiting_batch_and_keeps_its_order() {
        let q = Queue::default();
        q.push(Trigger::Poll);
        q.job(Box::new(|_| {}));
        q.job(Box::new(|_| {}));
        assert!(matches!(q.next(None), Next::Job(_)));
        assert!(matches!(q.next(None), Next::Job(_)));
        let Next::Run(batch) = q.next(None) else {
            panic!("the batch after the jobs")
        };
        assert_eq!(batch.trigger(), "poll");
    }

    #[test]
    fn stop_wins_over_waiting_triggers_and_a_deadline_is_a_retry() {
        let q = Queue::default();
        let Next::Run(b) = q.next(Some(Instant::now())) else {
            panic!("a retry")
        };
        assert_eq!(b.trigger(), "retry");
        assert!(b.whole);
        q.push(Trigger::Poll);
        q.stop();
        assert!(matches!(q.next(None), Next::Stop));
    }
}
