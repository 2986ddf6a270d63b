//! The daemon's events, numbered: every event gets an id
//! `<boot>-<seq>` (the process's start in hex, then a sequence from 1),
//! the newest [`KEPT`] are kept, and a subscriber that names the last id
//! it saw gets what it missed before the live ones.
//!
//! # Guarantees
//! Ids are unique within a process and increase in the order events are
//! sent; an id from an earlier process (another boot) is never taken for
//! one of this process's. [`Journal::subscribe`] reads the kept events
//! and subscribes under the lock [`Journal::emit`] sends under, so an
//! event is either replayed or received live, never both and never
//! neither. An id this process cannot place (another boot, not an id, a
//! sequence it never reached, or one older than what it keeps) gets
//! every kept event with a [`Gap`] saying so: the client reloads what it
//! shows from the API.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use super::state::Event;

/// How many recent events are kept for clients that resume.
pub const KEPT: usize = 1024;

/// An event's id: which process sent it, and its place there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId {
    pub boot: u64,
    pub seq: u64,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}", self.boot, self.seq)
    }
}

impl EventId {
    /// Reads `<boot hex>-<seq>`; anything else is `None`.
    pub fn parse(text: &str) -> Option<EventId> {
        let (boot, seq) = text.trim().split_once('-')?;
        let hex =
            |s: &str| !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !hex(boot) || !digits(seq) {
            return None;
        }
        Some(EventId {
            boot: u64::from_str_radix(boot, 16).ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

/// An event as sent: its id, when, and the event. It reads and
/// serializes as the event itself.
#[derive(Debug)]
pub struct Stamped {
    pub id: EventId,
    pub time: jiff::Timestamp,
    pub event: Event,
}

impl std::ops::Deref for Stamped {
    type Target = Event;
    fn deref(&self) -> &Event {
        &self.event
    }
}

impl Serialize for Stamped {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.event.serialize(s)
    }
}

/// Why a resuming client cannot be given exactly what it missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gap {
    /// The id is not one this process gave: another process's (the
    /// daemon restarted, or another replica answered), or not an id.
    Unknown,
    /// Events after it were sent and are no longer kept.
    Expired,
    /// The client read too slowly and live events passed it by.
    Lagged,
}

impl Gap {
    pub fn name(self) -> &'static str {
        match self {
            Gap::Unknown => "unknown",
            Gap::Expired => "expired",
            Gap::Lagged => "lagged",
        }
    }
}

/// What a subscriber gets before the live events.
#[derive(Debug, Default)]
pub struct Replay {
    pub events: Vec<Arc<Stamped>>,
    /// Set when `events` is not exactly what the client missed.
    pub gap: Option<Gap>,
}

struct Ring {
    next: u64,
    kept: VecDeque<Arc<Stamped>>,
}

/// The numbered event stream of one process.
pub struct Journal {
    boot: u64,
    ring: Mutex<Ring>,
    sender: broadcast::Sender<Arc<Stamped>>,
}

impl Journal {
    pub fn new() -> Journal {
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        Journal::with_boot(boot)
    }

    fn with_boot(boot: u64) -> Journal {
        Journal {
            boot,
            ring: Mutex::new(Ring {
                next: 1,
                kept: VecDeque::with_capacity(KEPT),
            }),
            sender: broadcast::channel(KEPT).0,
        }
    }

    /// Numbers `event`, keeps it and sends it to every subscriber (none
    /// listening is fine; a slow one lags, it never holds the sender).
    pub fn emit(&self, event: Event) -> Arc<Stamped> {
        let mut ring = self.ring.lock().expect("journal lock");
        let stamped = Arc::new(Stamped {
            id: EventId {
                boot: self.boot,
                seq: ring.next,
            },
            time: jiff::Timestamp::now(),
            event,
        });
        ring.next += 1;
        if ring.kept.len() == KEPT {
            ring.kept.pop_front();
        }
        ring.kept.push_back(stamped.clone());
        let _ = self.sender.send(stamped.clone());
        stamped
    }

    /// The live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Stamped>> {
        let _ring = self.ring.lock().expect("journal lock");
        self.sender.subscribe()
    }

    /// The live events, after those a client missed since `last` (the
    /// `Last-Event-ID` it sent); see the module's guarantees.
    pub fn resume(&self, last: &str) -> (broadcast::Receiver<Arc<Stamped>>, Replay) {
        let ring = self.ring.lock().expect("journal lock");
        let rx = self.sender.subscribe();
        let all = || ring.kept.iter().cloned().collect::<Vec<_>>();
        let newest = ring.next - 1;
        let oldest = ring.kept.front().map_or(ring.next, |e| e.id.seq);
        let replay = match EventId::parse(last) {
            Some(id) if id.boot == self.boot && id.seq <= newest => {
                if id.seq + 1 >= oldest {
                    Replay {
                        events: ring
                            .kept
                            .iter()
                            .filter(|e| e.id.seq > id.seq)
                            .cloned()
                            .collect(),
                        gap: None,
                    }
                } else {
                    Replay {
                        events: all(),
                        gap: Some(Gap::Expired),
                    }
                }
            }
            _ => Replay {
                events: all(),
                gap: Some(Gap::Unknown),
            },
        };
        (rx, replay)
    }
}

impl Default for Journal {
    fn default() -> Self {
        Journal::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(n: u32) -> Event {
        Event::ReconcileStarted {
            id: format!("r{n}"),
            trigger: "poll".into(),
        }
    }

    fn ids(events: &[Arc<Stamped>]) -> Vec<u64> {
        events.iter().map(|e| e.id.seq).collect()
    }

    #[test]
    fn ids_read_back_and_other_text_is_no_id() {
        let id = EventId {
            boot: 0x1a2b,
            seq: 7,
        };
        assert_eq!(id.to_string(), "1a2b-7");
        assert_eq!(EventId::parse("1a2b-7"), Some(id));
        for bad in [
            "",
            "7",
            "x-1",
            "1a2b-",
            "-7",
            "1a2b-7-1",
            "1a2b--7",
            "11111111111111111-1",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_client_resuming_gets_exactly_what_it_missed_then_the_live_events() {
        let journal = Journal::with_boot(9);
        let sent: Vec<_> = (1..=5).map(|n| journal.emit(started(n))).collect();
        let (mut rx, replay) = journal.resume(&sent[1].id.to_string());
        assert_eq!(replay.gap, None);
        assert_eq!(ids(&replay.events), [3, 4, 5]);
        let sixth = journal.emit(started(6));
        assert_eq!(rx.try_recv().expect("live").id.seq, 6);
        assert!(rx.try_recv().is_err(), "nothing twice");
        let (_, replay) = journal.resume(&sixth.id.to_string());
        assert!(replay.events.is_empty() && replay.gap.is_none());
    }

    #[test]
    fn an_id_from_another_process_or_too_old_gets_everything_kept_and_says_so() {
        let journal = Journal::with_boot(9);
        for n in 0..(KEPT as u32 + 10) {
            journal.emit(started(n));
        }
        let (_, replay) = journal.resume("8-3");
        assert_eq!(replay.gap, Some(Gap::Unknown));
        assert_eq!(replay.events.len(), KEPT);
        assert_eq!(replay.events[0].id.seq, 11);
        let (_, replay) = journal.resume("9-3");
        assert_eq!(replay.gap, Some(Gap::Expired));
        assert_eq!(replay.events.len(), KEPT);
        // The newest just before the oldest kept: nothing was lost.
        let (_, replay) = journal.resume("9-10");
        assert_eq!(replay.gap, None);
        assert_eq!(replay.events.len(), KEPT);
        let (_, replay) = journal.resume("9-999999");
        assert_eq!(replay.gap, Some(Gap::Unknown));
        let (_, replay) = journal.resume("garbage");
        assert_eq!(replay.gap, Some(Gap::Unknown));
    }

    #[test]
    fn events_sent_while_a_client_resumes_are_neither_lost_nor_doubled() {
        let journal = Arc::new(Journal::with_boot(3));
        let first = journal.emit(started(0));
        let sender = {
            let journal = journal.clone();
            std::thread::spawn(move || {
                for n in 1..500 {
                    journal.emit(started(n));
                }
            })
        };
        let (mut rx, replay) = journal.resume(&first.id.to_string());
        sender.join().expect("sender");
        let mut seen = ids(&replay.events);
        while let Ok(e) = rx.try_recv() {
            seen.push(e.id.seq);
        }
        assert_eq!(seen, (2..=500).collect::<Vec<u64>>());
    }
}
