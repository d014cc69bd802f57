//! Failed attempts remembered per key (an account, a source address, a pair of both), so that
//! guessing is slowed and then refused: after `free` failures each further one closes the key
//! for twice as long as the last, from `first_delay` up to `max_delay`. A key's failures are
//! forgotten `forget_after` its last one, and a success clears it. And events counted per key
//! in a sliding window ([`Quota`]). Time comes from the injectable clock.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// How quickly a key is closed.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures allowed before the first delay.
    pub free: u32,
    /// The first delay; each failure after it doubles the next.
    pub first_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// How long after its last failure a key starts afresh.
    pub forget_after: Duration,
}

impl Policy {
    /// The delay after the `failures`th failure: none while free.
    fn delay(&self, failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(self.free)?.checked_sub(1)?;
        let factor = 1i32 << over.min(20);
        Some((self.first_delay * factor).min(self.max_delay))
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: DateTime<Utc>,
    closed_until: Option<DateTime<Utc>>,
}

/// Failed attempts per key, at most `limit` keys: when full, forgotten keys go first, then the
/// tenth with the oldest failures.
#[derive(Debug)]
pub struct Attempts<K> {
    policy: Policy,
    limit: usize,
    records: Mutex<HashMap<K, Record>>,
}

impl<K: Eq + Hash + Clone> Attempts<K> {
    pub fn new(policy: Policy, limit: usize) -> Self {
        Self {
            policy,
            limit: limit.max(1),
            records: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Until when `key` is closed; `None` when it may try now.
    pub fn closed_until(&self, key: &K, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.lock()
            .get(key)
            .and_then(|r| r.closed_until)
            .filter(|until| now < *until)
    }

    /// Whether `key` has failures remembered.
    pub fn has_failed(&self, key: &K, now: DateTime<Utc>) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|r| now < r.last + self.policy.forget_after)
    }

    /// Records a failure of `key`; returns until when it is closed now, if it is.
    pub fn failed(&self, key: K, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut records = self.lock();
        if !records.contains_key(&key) && records.len() >= self.limit {
            self.make_room(&mut records, now);
        }
        let policy = self.policy;
        let record = records.entry(key).or_insert(Record {
            failures: 0,
            last: now,
            closed_until: None,
        });
        if now >= record.last + policy.forget_after
            && record.closed_until.is_none_or(|until| now >= until)
        {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last = now;
        record.closed_until = policy.delay(record.failures).map(|delay| now + delay);
        record.closed_until
    }

    /// Clears `key` (its owner proved who they are).
    pub fn succeeded(&self, key: &K) {
        self.lock().remove(key);
    }

    fn make_room(&self, records: &mut HashMap<K, Record>, now: DateTime<Utc>) {
        let forget_after = self.policy.forget_after;
        records.retain(|_, r| {
            now < r.last + forget_after || r.closed_until.is_some_and(|until| now < until)
        });
        if records.len() < self.limit {
            return;
        }
        let mut lasts: Vec<DateTime<Utc>> = records.values().map(|r| r.last).collect();
        let cut = lasts.len() / 10;
        let (_, threshold, _) = lasts.select_nth_unstable(cut);
        let threshold = *threshold;
        records.retain(|_, r| r.last > threshold);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Events per key in a sliding window: at most `limit` of them in any `window` (emails sent
/// per invitation or per trust). At most `max_keys` keys are kept: when full, keys with no
/// event in the window go first, then the one with the oldest last event.
#[derive(Debug)]
pub struct Quota<K> {
    limit: usize,
    window: Duration,
    max_keys: usize,
    events: Mutex<HashMap<K, VecDeque<DateTime<Utc>>>>,
}

impl<K: Eq + Hash + Clone> Quota<K> {
    pub fn new(limit: u32, window: Duration, max_keys: usize) -> Self {
        Self {
            limit: limit as usize,
            window,
            max_keys: max_keys.max(1),
            events: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, VecDeque<DateTime<Utc>>>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Until when `key` has used its quota; `None` while one more event fits.
    pub fn full_until(&self, key: &K, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut events = self.lock();
        let times = events.get_mut(key)?;
        while times.front().is_some_and(|t| *t + self.window <= now) {
            times.pop_front();
        }
        if times.len() < self.limit {
            return None;
        }
        // The window must pass over enough events for one more to fit.
        let freeing = times.len() - self.limit;
        times.get(freeing).map(|t| *t + self.window)
    }

    /// Counts an event of `key`.
    pub fn record(&self, key: K, now: DateTime<Utc>) {
        let mut events = self.lock();
        if !events.contains_key(&key) && events.len() >= self.max_keys {
            let window = self.window;
            events.retain(|_, times| times.back().is_some_and(|t| now < *t + window));
            if events.len() >= self.max_keys
                && let Some(oldest) = events
                    .iter()
                    .min_by_key(|(_, times)| times.back().copied())
                    .map(|(k, _)| k.clone())
            {
                events.remove(&oldest);
            }
        }
        let times = events.entry(key).or_default();
        times.push_back(now);
        while times.len() > self.limit.max(1) {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            free: 3,
            first_delay: Duration::seconds(1),
            max_delay: Duration::seconds(60),
            forget_after: Duration::minutes(15),
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn free_failures_close_nothing_then_each_doubles_the_delay_up_to_the_cap() {
        let attempts = Attempts::new(policy(), 100);
        let now = t0();
        for _ in 0..3 {
            assert_eq!(attempts.failed("a", now), None);
        }
        assert_eq!(attempts.failed("a", now), Some(now + Duration::seconds(1)));
        assert_eq!(attempts.failed("a", now), Some(now + Duration::seconds(2)));
        assert_eq!(attempts.failed("a", now), Some(now + Duration::seconds(4)));
        for _ in 0..40 {
            attempts.failed("a", now);
        }
        assert_eq!(
            attempts.closed_until(&"a", now),
            Some(now + Duration::seconds(60))
        );
        assert_eq!(
            attempts.closed_until(&"a", now + Duration::seconds(60)),
            None
        );
        assert_eq!(attempts.closed_until(&"b", now), None);
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_while_and_cleared_by_a_success() {
        let attempts = Attempts::new(policy(), 100);
        let now = t0();
        for _ in 0..4 {
            attempts.failed("a", now);
        }
        assert!(attempts.closed_until(&"a", now).is_some());
        let later = now + Duration::minutes(16);
        assert_eq!(attempts.failed("a", later), None, "counted afresh");
        attempts.succeeded(&"a");
        assert!(!attempts.has_failed(&"a", later));
    }

    #[test]
    fn a_full_table_drops_forgotten_keys_then_the_oldest() {
        let attempts = Attempts::new(policy(), 10);
        let now = t0();
        for key in 0..10u32 {
            attempts.failed(key, now + Duration::seconds(i64::from(key)));
        }
        attempts.failed(100, now + Duration::seconds(20));
        assert!(attempts.len() <= 10);
        assert!(attempts.has_failed(&100, now + Duration::seconds(20)));
        assert!(attempts.has_failed(&9, now + Duration::seconds(20)));
        assert!(!attempts.has_failed(&0, now + Duration::seconds(20)));
    }

    #[test]
    fn a_quota_refuses_the_event_past_its_limit_until_the_window_passes_the_oldest() {
        let quota = Quota::new(2, Duration::hours(1), 100);
        let now = t0();
        assert_eq!(quota.full_until(&"trust", now), None);
        quota.record("trust", now);
        quota.record("trust", now + Duration::minutes(10));
        assert_eq!(
            quota.full_until(&"trust", now + Duration::minutes(20)),
            Some(now + Duration::hours(1))
        );
        assert_eq!(quota.full_until(&"other", now), None);
        assert_eq!(quota.full_until(&"trust", now + Duration::hours(1)), None);
    }
}
