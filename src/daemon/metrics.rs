//! The daemon's metrics in the Prometheus text format (0.0.4): counters
//! and a histogram kept under one lock, written out on every scrape.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Upper bounds of the reconcile duration buckets, in seconds.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Default)]
struct Data {
    reconciles: BTreeMap<String, u64>,
    durations: [u64; BUCKETS.len()],
    duration_count: u64,
    duration_sum: f64,
    files_changed: u64,
    pending_approvals: u64,
    deliveries: BTreeMap<String, u64>,
    last_success: Option<f64>,
    /// Notifications by (sink, result).
    notifications: BTreeMap<(String, String), u64>,
    /// Notifications waiting per sink.
    notify_queues: BTreeMap<String, usize>,
    /// With shards: whether this replica holds each.
    shards: Option<crate::spec::Shards>,
}

#[derive(Default)]
pub struct Metrics(Mutex<Data>);

impl Metrics {
    /// A reconcile ended with `result` after `seconds`.
    pub fn reconciled(&self, result: &str, seconds: f64) {
        let mut d = self.0.lock().expect("metrics lock");
        *d.reconciles.entry(result.to_owned()).or_default() += 1;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                d.durations[i] += 1;
            }
        }
        d.duration_count += 1;
        d.duration_sum += seconds;
    }

    /// Triggers that needed no reconcile (their revision was done).
    pub fn coalesced(&self) {
        let mut d = self.0.lock().expect("metrics lock");
        *d.reconciles.entry("skipped".to_owned()).or_default() += 1;
    }

    pub fn succeeded(&self, unix_seconds: f64, files: u64, pending: u64) {
        let mut d = self.0.lock().expect("metrics lock");
        d.last_success = Some(unix_seconds);
        d.files_changed += files;
        d.pending_approvals = pending;
    }

    /// A reconcile that found nothing moved succeeded: the counts stand.
    pub fn unchanged(&self, unix_seconds: f64) {
        self.0.lock().expect("metrics lock").last_success = Some(unix_seconds);
    }

    pub fn delivery(&self, result: &str) {
        let mut d = self.0.lock().expect("metrics lock");
        *d.deliveries.entry(result.to_owned()).or_default() += 1;
    }

    /// `n` notifications to `sink` ended with `result` (`delivered`,
    /// `failed`, `refused`, `dropped`) or were `retried`.
    pub fn notification(&self, sink: &str, result: &str, n: u64) {
        let mut d = self.0.lock().expect("metrics lock");
        *d.notifications
            .entry((sink.to_owned(), result.to_owned()))
            .or_default() += n;
    }

    /// `sink` has `waiting` notifications queued.
    pub fn notification_queue(&self, sink: &str, waiting: usize) {
        let mut d = self.0.lock().expect("metrics lock");
        d.notify_queues.insert(sink.to_owned(), waiting);
    }

    /// This replica now holds `shards`.
    pub fn shards(&self, shards: &crate::spec::Shards) {
        self.0.lock().expect("metrics lock").shards = Some(shards.clone());
    }

    /// How many reconciles ended with `result`.
    pub fn count(&self, result: &str) -> u64 {
        let d = self.0.lock().expect("metrics lock");
        d.reconciles.get(result).copied().unwrap_or_default()
    }

    /// The text a scrape gets.
    pub fn render(&self) -> String {
        let d = self.0.lock().expect("metrics lock");
        let mut t = String::new();
        by_result(
            &mut t,
            "druppie_reconciles_total",
            "Reconciles by result (success, dry-run, terminal, failed, skipped).",
            &d.reconciles,
        );
        let name = "druppie_reconcile_duration_seconds";
        head(&mut t, name, "histogram", "How long reconciles took.");
        for (bound, n) in BUCKETS.iter().zip(d.durations) {
            let _ = writeln!(t, "{name}_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(t, "{name}_bucket{{le=\"+Inf\"}} {}", d.duration_count);
        let _ = writeln!(t, "{name}_sum {}", d.duration_sum);
        let _ = writeln!(t, "{name}_count {}", d.duration_count);
        let files = "Files written in commits and proposals.";
        single(
            &mut t,
            "druppie_files_changed_total",
            "counter",
            files,
            d.files_changed,
        );
        let pending = "Open proposals waiting for a merge: one per proposal branch.";
        single(
            &mut t,
            "druppie_pending_approvals",
            "gauge",
            pending,
            d.pending_approvals,
        );
        by_result(
            &mut t,
            "druppie_webhook_deliveries_total",
            "Webhook deliveries by result.",
            &d.deliveries,
        );
        if !d.notifications.is_empty() || !d.notify_queues.is_empty() {
            let name = "druppie_notifications_total";
            let help =
                "Notifications by sink and result (delivered, failed, refused, dropped, retried).";
            head(&mut t, name, "counter", help);
            for ((sink, result), n) in &d.notifications {
                let _ = writeln!(t, "{name}{{sink=\"{sink}\",result=\"{result}\"}} {n}");
            }
            let name = "druppie_notification_queue";
            head(
                &mut t,
                name,
                "gauge",
                "Notifications waiting to be sent, by sink.",
            );
            for (sink, n) in &d.notify_queues {
                let _ = writeln!(t, "{name}{{sink=\"{sink}\"}} {n}");
            }
        }
        if let Some(shards) = &d.shards {
            let name = "druppie_shard_held";
            let help = "1 for each shard this replica holds, 0 for the others: summed over the replicas, 1 per shard.";
            head(&mut t, name, "gauge", help);
            for shard in 0..shards.count() {
                let held = u8::from(shards.held().contains(&shard));
                let _ = writeln!(t, "{name}{{shard=\"{shard}\"}} {held}");
            }
        }
        if let Some(at) = d.last_success {
            let name = "druppie_last_success_timestamp_seconds";
            single(
                &mut t,
                name,
                "gauge",
                "When the last reconcile succeeded.",
                at,
            );
        }
        t
    }
}

fn head(t: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(t, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A metric with one value.
fn single(t: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    head(t, name, kind, help);
    let _ = writeln!(t, "{name} {value}");
}

/// A counter with a `result` label.
fn by_result(t: &mut String, name: &str, help: &str, counts: &BTreeMap<String, u64>) {
    head(t, name, "counter", help);
    for (result, n) in counts {
        let _ = writeln!(t, "{name}{{result=\"{result}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative_and_counts_every_reconcile() {
        let m = Metrics::default();
        m.reconciled("success", 0.07);
        m.reconciled("failed", 3.0);
        let text = m.render();
        assert!(text.contains("druppie_reconcile_duration_seconds_bucket{le=\"0.05\"} 0\n"));
        assert!(text.contains("druppie_reconcile_duration_seconds_bucket{le=\"0.1\"} 1\n"));
        assert!(text.contains("druppie_reconcile_duration_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("druppie_reconcile_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("druppie_reconcile_duration_seconds_count 2\n"));
        assert!(text.contains("druppie_reconciles_total{result=\"success\"} 1\n"));
        assert!(text.contains("druppie_reconciles_total{result=\"failed\"} 1\n"));
        assert!(!text.contains("druppie_shard_held"), "not sharded");
    }

    #[test]
    fn every_shard_shows_whether_this_replica_holds_it() {
        let m = Metrics::default();
        m.shards(&crate::spec::Shards::new(3, [0, 2]));
        let text = m.render();
        assert!(text.contains("# TYPE druppie_shard_held gauge\n"), "{text}");
        for (shard, held) in [(0, 1), (1, 0), (2, 1)] {
            let line = format!("druppie_shard_held{{shard=\"{shard}\"}} {held}\n");
            assert!(text.contains(&line), "{text}");
        }
    }
}
