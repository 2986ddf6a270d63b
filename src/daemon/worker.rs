//! The reconcile worker: one thread, so there is one reconcile at a
//! time (and so at most one per target repo). It takes coalesced batches
//! of triggers, skips pushes of a revision already reconciled, retries
//! transient failures with jittered exponential backoff, and on stop
//! finishes the reconcile in flight, pushes included.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::queue::Next;
use super::reconcile::{Ended, Reconciler};
use super::state::Shared;

/// The first wait after a transient failure, and the longest, unless
/// `[server] retry_backoff` and `retry_backoff_max` say otherwise.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// Jittered exponential backoff: the n-th wait is uniform in
/// `[d/2, d]` with `d = min(cap, base · 2ⁿ)`.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
    pub deadline: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(BACKOFF_BASE, BACKOFF_CAP)
    }
}

impl Backoff {
    /// Waits starting at `base`, doubling up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap: cap.max(base),
            failures: 0,
            deadline: None,
        }
    }

    pub fn failed(&mut self, now: Instant) -> Duration {
        let full = self
            .base
            .saturating_mul(1 << self.failures.min(16))
            .min(self.cap);
        self.failures += 1;
        let wait = full.mul_f64(0.5 + fastrand::f64() / 2.0);
        self.deadline = Some(now + wait);
        wait
    }

    pub fn reset(&mut self) {
        self.failures = 0;
        self.deadline = None;
    }
}

/// Runs reconciles until the queue says stop; a transient failure is
/// tried again after `backoff`'s next wait (or at the next trigger).
pub fn run(reconciler: &Reconciler, shared: &Arc<Shared>, mut backoff: Backoff) {
    // The spec commit last reconciled to an end that another run of the
    // same commit would repeat (applied, or terminally refused).
    let mut done: Option<String> = None;
    let mut terminal: Option<(String, String)> = None;
    // The shards the last reconcile worked on.
    let mut worked = None;
    loop {
        let batch = match shared.queue.next(backoff.deadline) {
            Next::Stop => break,
            Next::Run(batch) => batch,
            Next::Job(job) => {
                // A panic is a bug; it ends the job (its caller hears
                // nothing back), not the worker.
                let ran =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(reconciler)));
                if ran.is_err() {
                    tracing::error!("a job on the reconcile worker panicked");
                }
                continue;
            }
        };
        // Another replica holds the Lease, or every shard: wait for one
        // (the batch waits too).
        let shards = loop {
            if shared.queue.stopping() {
                break None;
            }
            if let Some(shards) = shared.begin() {
                break Some(shards);
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        let Some(shards) = shards else {
            break;
        };
        // Other shards than the last reconcile's: their plans are new to
        // this replica, and what it remembers is of other plans.
        let moved = shards != worked;
        if !moved && batch.only_pushes_of(done.as_deref()) {
            shared.end();
            shared.metrics.coalesced();
            continue;
        }
        let id = format!("{:016x}", fastrand::u64(..));
        let span = tracing::info_span!("reconcile", id = %id, trigger = batch.trigger(), triggers = batch.total());
        let entered = span.enter();
        if let Some(s) = &shards {
            tracing::info!(shards = %s, "reconciling the plans of the shards held");
        }
        let (revision, ended) = reconciler.reconcile(
            shared,
            &id,
            batch.trigger(),
            terminal.as_ref(),
            (batch.whole || moved, shards.as_ref()),
        );
        if let Some(at) = revision.as_ref().and_then(|r| r.settle_after) {
            settle_at(shared, at);
        }
        let commit = revision.filter(|r| !r.dirty).and_then(|r| r.commit);
        match &ended {
            Ended::Success => {
                done = commit;
                terminal = None;
                backoff.reset();
            }
            Ended::Terminal(message) => {
                terminal = commit.clone().map(|c| (c, message.clone()));
                done = commit;
                backoff.reset();
            }
            Ended::DryRun => {
                done = None;
                backoff.reset();
            }
            Ended::Failed(_) => {
                done = None;
                let wait = backoff.failed(Instant::now());
                tracing::info!(retry_in = ?wait, "will retry");
            }
        }
        for (plan, to) in &batch.promotions {
            reconciler.promote(shared, &id, (plan, to), shards.as_ref());
        }
        shared.end();
        worked = shards;
        drop(entered);
        super::memory::give_back();
    }
    tracing::info!("reconcile worker stopped");
}

/// Settles the spec clone's index ([`super::source::SpecSource::settle`])
/// on the worker, between reconciles, once `at` has passed.
fn settle_at(shared: &Arc<Shared>, at: Instant) {
    let job: super::queue::Job = Box::new(|reconciler| {
        let started = Instant::now();
        match reconciler.source.settle(&reconciler.cache) {
            Ok(()) => tracing::debug!(elapsed = ?started.elapsed(), "spec index settled"),
            Err(e) => tracing::warn!(error = %crate::error::chain(&e), "settling the spec index"),
        }
    });
    let wait = at.saturating_duration_since(Instant::now());
    if wait.is_zero() {
        shared.queue.job(job);
        return;
    }
    let shared = Arc::clone(shared);
    std::thread::spawn(move || {
        std::thread::sleep(wait);
        shared.queue.job(job);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_resets() {
        let now = Instant::now();
        let mut b = Backoff::default();
        let waits: Vec<Duration> = (0..12).map(|_| b.failed(now)).collect();
        for (n, w) in waits.iter().enumerate() {
            let full = BACKOFF_BASE.saturating_mul(1 << n).min(BACKOFF_CAP);
            assert!(
                *w >= full / 2 && *w <= full,
                "wait {n}: {w:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
        assert!(waits[11] <= BACKOFF_CAP);
        assert_eq!(b.deadline, Some(now + waits[11]));
        b.reset();
        assert_eq!(b.deadline, None);
        assert!(b.failed(now) <= BACKOFF_BASE);
    }

    #[test]
    fn a_configured_backoff_starts_and_stops_where_it_says() {
        let now = Instant::now();
        let (base, cap) = (Duration::from_millis(100), Duration::from_millis(400));
        let mut b = Backoff::new(base, cap);
        let waits: Vec<Duration> = (0..6).map(|_| b.failed(now)).collect();
        assert!(waits[0] >= base / 2 && waits[0] <= base, "{waits:?}");
        assert!(waits[5] >= cap / 2 && waits[5] <= cap, "{waits:?}");
        b.reset();
        assert!(b.failed(now) <= base);
    }
}
