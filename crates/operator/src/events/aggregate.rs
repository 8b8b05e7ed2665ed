//! Which Events to write, and when: deduplication into Event series and rate limits, as a pure
//! state machine (the clock is an argument), so that its bounds can be unit-tested.
//!
//! Why: the webhook records a `PodDenied` Event for every refused pod that names a
//! ModelValidation, and anyone who can reach the webhook can send it forged AdmissionReviews.
//! Without bounds, every request would cost one API write. Here:
//! - repeats of the same Event (same object, reason and text) become one Event whose
//!   `series.count` grows, the events.k8s.io/v1 mechanism `kubectl describe` shows as
//!   "(x57 over 5m)";
//! - API writes are limited per object (a token bucket each) and overall (one more), and
//!   repeats that arrive while writes are held are counted, not lost: the next write carries
//!   the total;
//! - at most [`Limits::max_series`] series are tracked; beyond that, new ones are dropped and
//!   counted, so memory stays bounded whatever arrives.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::EventType;

/// The bounds. The defaults allow a burst of 5 writes per object, then one per 12 s; 20
/// writes per second overall.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Writes an object may get at once.
    pub per_object_burst: f64,
    /// Then one write per this long.
    pub per_object_interval: Duration,
    /// Writes overall at once.
    pub global_burst: f64,
    /// Then this many writes per second overall.
    pub global_per_second: f64,
    /// Series tracked at most.
    pub max_series: usize,
    /// A series no longer seen for this long is forgotten (a later repeat starts a new Event).
    pub ttl: Duration,
    /// A series whose writes fail this many times in a row is given up.
    pub max_failures: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_object_burst: 5.0,
            per_object_interval: Duration::from_secs(12),
            global_burst: 50.0,
            global_per_second: 20.0,
            max_series: 1024,
            ttl: Duration::from_secs(600),
            max_failures: 3,
        }
    }
}

/// One Event to record.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    /// The object it is about.
    pub regarding: ObjectReference,
    /// Normal or Warning.
    pub type_: EventType,
    /// `PascalCase` reason.
    pub reason: String,
    /// `PascalCase` action.
    pub action: String,
    /// The text shown (at most 1 kB).
    pub note: String,
    /// A second object involved.
    pub related: Option<ObjectReference>,
    /// What makes two Events "the same" beside object and reason: the note without the parts
    /// that differ between repeats (the name of each refused pod, for example).
    pub same_as: String,
}

/// An API write to perform.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Create the Event of series `id` (with a series part when `count` > 1, as repeats may
    /// have arrived before the first write).
    Create {
        /// The series.
        id: u64,
        /// What to create.
        draft: Box<Draft>,
        /// Occurrences so far.
        count: u32,
        /// When the last one happened.
        last_observed: Timestamp,
    },
    /// Set `series.count` of the existing Event `name`.
    Patch {
        /// The series.
        id: u64,
        /// Namespace of the Event.
        namespace: String,
        /// Name of the Event.
        name: String,
        /// Occurrences so far.
        count: u32,
        /// When the last one happened.
        last_observed: Timestamp,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ObjectKey {
    namespace: String,
    kind: String,
    name: String,
}

impl ObjectKey {
    fn of(r: &ObjectReference) -> Self {
        ObjectKey {
            namespace: r.namespace.clone().unwrap_or_default(),
            kind: r.kind.clone().unwrap_or_default(),
            name: r.name.clone().unwrap_or_default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SeriesKey {
    object: ObjectKey,
    reason: String,
    same_as: String,
}

#[derive(Debug)]
struct Series {
    id: u64,
    draft: Draft,
    /// Occurrences seen.
    count: u32,
    /// Occurrences the API has been told of.
    written: u32,
    /// The Event's name once created.
    name: Option<String>,
    /// A write is in flight (its count).
    in_flight: Option<u32>,
    failures: u32,
    last_seen: Instant,
    last_seen_wall: Timestamp,
}

/// A token bucket.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Self {
        Bucket {
            tokens: capacity,
            at: now,
        }
    }

    fn refill(&mut self, capacity: f64, per_second: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.at = now;
    }
}

/// What [`Aggregator::observe`] did with an Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// It starts a new series.
    New,
    /// It repeats a series: its count grew.
    Repeat,
    /// Too many series are tracked: it was dropped.
    Dropped,
}

/// The state: series and buckets.
#[derive(Debug)]
pub struct Aggregator {
    limits: Limits,
    series: HashMap<SeriesKey, Series>,
    buckets: HashMap<ObjectKey, Bucket>,
    global: Bucket,
    next_id: u64,
}

impl Aggregator {
    /// Empty, with full buckets.
    pub fn new(limits: Limits, now: Instant) -> Self {
        let global = Bucket::full(limits.global_burst, now);
        Aggregator {
            limits,
            series: HashMap::new(),
            buckets: HashMap::new(),
            global,
            next_id: 0,
        }
    }

    /// Counts one occurrence of `draft`, seen at `now` (`wall`: the same moment as a timestamp).
    pub fn observe(&mut self, draft: Draft, now: Instant, wall: Timestamp) -> Observed {
        let key = SeriesKey {
            object: ObjectKey::of(&draft.regarding),
            reason: draft.reason.clone(),
            same_as: draft.same_as.clone(),
        };
        if let Some(s) = self.series.get_mut(&key) {
            s.count = s.count.saturating_add(1);
            s.last_seen = now;
            s.last_seen_wall = wall;
            return Observed::Repeat;
        }
        if self.series.len() >= self.limits.max_series {
            return Observed::Dropped;
        }
        self.next_id += 1;
        self.series.insert(
            key,
            Series {
                id: self.next_id,
                draft,
                count: 1,
                written: 0,
                name: None,
                in_flight: None,
                failures: 0,
                last_seen: now,
                last_seen_wall: wall,
            },
        );
        Observed::New
    }

    /// Whether some series has occurrences the API has not been told of.
    pub fn pending(&self) -> bool {
        self.series
            .values()
            .any(|s| s.in_flight.is_none() && s.count > s.written)
    }

    /// The writes the limits allow at `now`, oldest series first; each is in flight until
    /// [`Aggregator::done`] is called for it.
    pub fn due(&mut self, now: Instant) -> Vec<Write> {
        let l = &self.limits;
        self.global.refill(l.global_burst, l.global_per_second, now);
        let per_object_rate = 1.0 / l.per_object_interval.as_secs_f64().max(f64::MIN_POSITIVE);
        let mut ready: Vec<(&SeriesKey, &mut Series)> = self
            .series
            .iter_mut()
            .filter(|(_, s)| s.in_flight.is_none() && s.count > s.written)
            .collect();
        ready.sort_by_key(|(_, s)| s.id);
        let mut writes = Vec::new();
        for (key, s) in ready {
            if self.global.tokens < 1.0 {
                break;
            }
            let bucket = self
                .buckets
                .entry(key.object.clone())
                .or_insert_with(|| Bucket::full(l.per_object_burst, now));
            bucket.refill(l.per_object_burst, per_object_rate, now);
            if bucket.tokens < 1.0 {
                continue;
            }
            bucket.tokens -= 1.0;
            self.global.tokens -= 1.0;
            s.in_flight = Some(s.count);
            writes.push(match &s.name {
                None => Write::Create {
                    id: s.id,
                    draft: Box::new(s.draft.clone()),
                    count: s.count,
                    last_observed: s.last_seen_wall,
                },
                Some(name) => Write::Patch {
                    id: s.id,
                    namespace: key.object.namespace.clone(),
                    name: name.clone(),
                    count: s.count,
                    last_observed: s.last_seen_wall,
                },
            });
        }
        writes
    }

    /// Records the outcome of write `id`: the created Event's name (for a create), `Ok(None)`
    /// for a patch, or a failure.
    pub fn done(&mut self, id: u64, outcome: Result<Option<String>, ()>) {
        let max_failures = self.limits.max_failures;
        let Some((key, s)) = self.series.iter_mut().find(|(_, s)| s.id == id) else {
            return;
        };
        let Some(count) = s.in_flight.take() else {
            return;
        };
        match outcome {
            Ok(name) => {
                if s.name.is_none() {
                    s.name = name;
                }
                s.written = count;
                s.failures = 0;
            }
            Err(()) => {
                s.failures += 1;
                if s.failures >= max_failures {
                    let key = key.clone();
                    self.series.remove(&key);
                }
            }
        }
    }

    /// Forgets series not seen for [`Limits::ttl`] and fully written, and buckets that are
    /// full again and serve no series.
    pub fn expire(&mut self, now: Instant) {
        let l = &self.limits;
        self.series.retain(|_, s| {
            s.in_flight.is_some()
                || s.count > s.written
                || now.saturating_duration_since(s.last_seen) < l.ttl
        });
        let per_object_rate = 1.0 / l.per_object_interval.as_secs_f64().max(f64::MIN_POSITIVE);
        let series = &self.series;
        self.buckets.retain(|object, b| {
            b.refill(l.per_object_burst, per_object_rate, now);
            b.tokens < l.per_object_burst || series.keys().any(|k| &k.object == object)
        });
    }

    /// Series tracked now.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no series is tracked.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

#[cfg(test)]
mod tests;
