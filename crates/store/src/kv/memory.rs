//! The in-process `KvStore`: a mutex-guarded map with expiry and a cap on its size. Expired entries
//! are dropped when read and swept in amortised O(1) per write, so memory stays proportional to live
//! keys; a flood of new keys meets the cap and evicts the entries closest to expiry instead of
//! growing the process or refusing writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use security::gcra::{self, GcraDecision, Quota};
use security::{Clock, KvError, KvStore, Reserved, SystemClock};

/// Fewest writes between two sweeps of expired entries, so a small map is not swept on every write.
const MIN_SWEEP_INTERVAL: u64 = 4096;

#[derive(Debug, Clone)]
enum Value {
    Counter(u64),
    Text(String),
    Tat(u64),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires_at: u64,
}

struct Map {
    entries: HashMap<String, Entry>,
    writes_since_sweep: u64,
    capacity: usize,
}

impl Map {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            writes_since_sweep: 0,
            capacity: capacity.max(1),
        }
    }

    fn live(&mut self, key: &str, now: u64) -> Option<&mut Entry> {
        let expired = self.entries.get(key).is_some_and(|e| e.expires_at <= now);
        if expired {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn sweep(&mut self, now: u64) {
        self.entries.retain(|_, e| e.expires_at > now);
        self.writes_since_sweep = 0;
    }

    /// A sweep costs O(len), so one is run only after at least len/2 writes: each write then pays
    /// O(1) amortised however large the map grows. Expired entries may wait a while; the capacity cap
    /// bounds memory regardless, and a full map sweeps before it evicts anything live.
    fn note_write(&mut self, now: u64) {
        self.writes_since_sweep += 1;
        let len = u64::try_from(self.entries.len()).unwrap_or(u64::MAX);
        if self.writes_since_sweep >= MIN_SWEEP_INTERVAL.max(len / 2) {
            self.sweep(now);
        }
    }

    /// Stores `entry` at `key`, making room first if the key is new and the map is full. Writes are
    /// never refused: a store that refused would fail the login or rate-limit check that called it.
    fn put(&mut self, key: &str, entry: Entry, now: u64) {
        if let Some(slot) = self.entries.get_mut(key) {
            *slot = entry;
            return;
        }
        if self.entries.len() >= self.capacity {
            self.make_room(now);
        }
        self.entries.insert(key.to_string(), entry);
    }

    /// Sweeps expired entries; if the map is still full, evicts a tenth of it, soonest expiry first.
    ///
    /// Evicting a batch rather than one entry keeps this O(len) pass rare (once per capacity/10 new
    /// keys), so inserts stay amortised O(1) even when every entry is live.
    ///
    /// Soonest expiry first rather than arbitrary (iteration) order because the entries are security
    /// state: lockout counters, rate-limit cells, one-time markers. The one closest to expiry is about
    /// to be forgotten anyway, so evicting it loses the least protection, while a long-lived entry
    /// (an account locked for an hour, a client far over its rate) is exactly what an attacker
    /// flooding the store with fresh keys would like to see evicted. A GCRA cell whose TAT is near
    /// `now` is already almost equivalent to no cell at all.
    fn make_room(&mut self, now: u64) {
        self.sweep(now);
        let target = self.capacity - (self.capacity / 10).max(1);
        let excess = self.entries.len().saturating_sub(target);
        if excess == 0 {
            return;
        }
        let mut expiries: Vec<u64> = self.entries.values().map(|e| e.expires_at).collect();
        // The `excess`-th soonest expiry: everything before it goes, plus just enough of the entries
        // that share it (a burst written in the same tick shares one expiry) to reach `excess`.
        let (sooner, cutoff, _) = expiries.select_nth_unstable(excess - 1);
        let cutoff = *cutoff;
        let sooner = sooner.iter().filter(|t| **t < cutoff).count();
        let mut at_cutoff = excess - sooner;
        self.entries.retain(|_, e| {
            if e.expires_at < cutoff {
                false
            } else if e.expires_at == cutoff && at_cutoff > 0 {
                at_cutoff -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// In-process store; clones share state.
#[derive(Clone)]
pub struct MemoryKv {
    map: Arc<Mutex<Map>>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryKv {
    fn default() -> Self {
        Self::new()
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 4)
}

impl MemoryKv {
    /// Keys held before those closest to expiry are evicted. With the short keys and values that
    /// lockout and rate-limit state uses an entry costs a couple of hundred bytes, so this holds the
    /// store to a few hundred MB while leaving far more room than one instance's live state needs.
    pub const DEFAULT_CAPACITY: usize = 1_000_000;

    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self::with_capacity_and_clock(Self::DEFAULT_CAPACITY, clock)
    }

    /// A store holding at most `capacity` keys (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_clock(capacity, Arc::new(SystemClock))
    }

    /// A store holding at most `capacity` keys (at least 1), reading time from `clock`.
    pub fn with_capacity_and_clock(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            map: Arc::new(Mutex::new(Map::new(capacity))),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Map> {
        // A panic while holding the lock cannot leave the map half-updated (every update is a single
        // insert, field write or retain), so a poisoned lock is still safe to use.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Number of live keys (for tests and metrics).
    pub fn len(&self) -> usize {
        let now = self.clock.now_micros();
        self.lock()
            .entries
            .values()
            .filter(|e| e.expires_at > now)
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl KvStore for MemoryKv {
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, KvError> {
        let now = self.clock.now_micros();
        let mut map = self.lock();
        map.note_write(now);
        if let Some(entry) = map.live(key, now) {
            if let Value::Counter(n) = &mut entry.value {
                *n += 1;
                return Ok(*n);
            }
            return Err(KvError::Protocol(format!("{key} does not hold a counter")));
        }
        let entry = Entry {
            value: Value::Counter(1),
            expires_at: now.saturating_add(micros(ttl)),
        };
        map.put(key, entry, now);
        Ok(1)
    }

    async fn reserve(
        &self,
        blockers: &[&str],
        now: u64,
        counter: &str,
        ttl: Duration,
    ) -> Result<Reserved, KvError> {
        security::check_one_slot(std::iter::once(counter).chain(blockers.iter().copied()))?;
        let clock = self.clock.now_micros();
        let mut map = self.lock();
        for (index, key) in blockers.iter().enumerate() {
            let until = map.live(key, clock).and_then(|e| match &e.value {
                Value::Text(t) => t.parse::<u64>().ok(),
                Value::Counter(n) => Some(*n),
                Value::Tat(_) => None,
            });
            if let Some(until) = until.filter(|until| *until > now) {
                return Ok(Reserved::Blocked { index, until });
            }
        }
        map.note_write(clock);
        if let Some(entry) = map.live(counter, clock) {
            if let Value::Counter(n) = &mut entry.value {
                *n += 1;
                return Ok(Reserved::Counted(*n));
            }
            return Err(KvError::Protocol(format!(
                "{counter} does not hold a counter"
            )));
        }
        let entry = Entry {
            value: Value::Counter(1),
            expires_at: clock.saturating_add(micros(ttl)),
        };
        map.put(counter, entry, clock);
        Ok(Reserved::Counted(1))
    }

    async fn release(&self, counter: &str) -> Result<(), KvError> {
        let clock = self.clock.now_micros();
        let mut map = self.lock();
        if let Some(entry) = map.live(counter, clock)
            && let Value::Counter(n) = &mut entry.value
        {
            *n = n.saturating_sub(1);
        }
        Ok(())
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), KvError> {
        let now = self.clock.now_micros();
        let mut map = self.lock();
        map.note_write(now);
        let entry = Entry {
            value: Value::Text(value.to_string()),
            expires_at: now.saturating_add(micros(ttl)),
        };
        map.put(key, entry, now);
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, KvError> {
        let now = self.clock.now_micros();
        let mut map = self.lock();
        if map.live(key, now).is_some() {
            return Ok(false);
        }
        map.note_write(now);
        let entry = Entry {
            value: Value::Text(value.to_string()),
            expires_at: now.saturating_add(micros(ttl)),
        };
        map.put(key, entry, now);
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        let now = self.clock.now_micros();
        let mut map = self.lock();
        Ok(map.live(key, now).map(|e| match &e.value {
            Value::Counter(n) => n.to_string(),
            Value::Text(t) => t.clone(),
            Value::Tat(t) => t.to_string(),
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool, KvError> {
        let now = self.clock.now_micros();
        let mut map = self.lock();
        let existed = map.live(key, now).is_some();
        map.entries.remove(key);
        Ok(existed)
    }

    async fn gcra(&self, key: &str, quota: Quota, cost: u32) -> Result<GcraDecision, KvError> {
        let now = self.clock.now_micros();
        let mut map = self.lock();
        let stored = match map.live(key, now).map(|e| &e.value) {
            Some(Value::Tat(t)) => Some(*t),
            Some(_) => {
                return Err(KvError::Protocol(format!(
                    "{key} does not hold a rate cell"
                )));
            }
            None => None,
        };
        let step = gcra::decide(quota, stored, now, cost);
        if let Some(new_tat) = step.new_tat {
            map.note_write(now);
            let entry = Entry {
                value: Value::Tat(new_tat),
                expires_at: new_tat,
            };
            map.put(key, entry, now);
        }
        Ok(step.decision)
    }

    async fn ping(&self) -> Result<(), KvError> {
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use security::ManualClock;

    const START: u64 = 1_700_000_000_000_000;

    fn store(capacity: usize) -> (MemoryKv, ManualClock) {
        let clock = ManualClock::new(START);
        let kv = MemoryKv::with_capacity_and_clock(capacity, Arc::new(clock.clone()));
        (kv, clock)
    }

    fn stored(kv: &MemoryKv) -> usize {
        kv.lock().entries.len()
    }

    #[test]
    fn default_constructors_use_the_default_capacity() {
        assert_eq!(MemoryKv::new().lock().capacity, MemoryKv::DEFAULT_CAPACITY);
        let clock = Arc::new(ManualClock::new(START));
        assert_eq!(
            MemoryKv::with_clock(clock).lock().capacity,
            MemoryKv::DEFAULT_CAPACITY
        );
        assert_eq!(MemoryKv::with_capacity(0).lock().capacity, 1);
    }

    #[tokio::test]
    async fn a_flood_of_new_keys_stays_within_the_cap_and_the_store_keeps_working() {
        let (kv, clock) = store(100);
        let quota = Quota::per_hour(10);
        for i in 0..10_000 {
            let ttl = Duration::from_secs(60);
            kv.set(&format!("s{i}"), "v", ttl).await.expect("set");
            assert_eq!(kv.incr(&format!("c{i}"), ttl).await.ok(), Some(1));
            assert!(
                kv.gcra(&format!("g{i}"), quota, 1)
                    .await
                    .expect("gcra")
                    .allowed
            );
            assert!(stored(&kv) <= 100, "{} entries at {i}", stored(&kv));
            if i % 1000 == 0 {
                clock.advance(Duration::from_millis(1));
            }
        }
        // The newest keys are there and still behave.
        assert_eq!(kv.get("s9999").await.expect("get").as_deref(), Some("v"));
        assert_eq!(
            kv.incr("c9999", Duration::from_secs(60)).await.ok(),
            Some(2)
        );
        assert!(kv.gcra("g9999", quota, 1).await.expect("gcra").allowed);
        kv.set("after", "x", Duration::from_secs(1))
            .await
            .expect("set");
        assert_eq!(kv.get("after").await.expect("get").as_deref(), Some("x"));
    }

    #[tokio::test]
    async fn eviction_keeps_the_longest_lived_entries() {
        let (kv, _clock) = store(50);
        // An account locked for an hour must outlive an attacker's flood of fresh minute-long keys.
        assert_eq!(
            kv.incr("lockout:alice", Duration::from_secs(3600))
                .await
                .ok(),
            Some(1)
        );
        for i in 0..30 {
            kv.incr(&format!("brief{i}"), Duration::from_secs(1))
                .await
                .expect("incr");
        }
        for i in 0..1_000 {
            kv.set(&format!("flood{i}"), "x", Duration::from_secs(60))
                .await
                .expect("set");
            assert!(stored(&kv) <= 50);
        }
        assert_eq!(
            kv.incr("lockout:alice", Duration::from_secs(3600))
                .await
                .ok(),
            Some(2)
        );
        // The one-second keys expire first, so they went first.
        for i in 0..30 {
            assert_eq!(kv.get(&format!("brief{i}")).await.expect("get"), None);
        }
    }

    #[tokio::test]
    async fn a_full_store_sweeps_expired_entries_before_evicting_live_ones() {
        let (kv, clock) = store(20);
        for i in 0..10 {
            kv.set(&format!("live{i}"), "v", Duration::from_secs(600))
                .await
                .expect("set");
            kv.set(&format!("old{i}"), "v", Duration::from_secs(1))
                .await
                .expect("set");
        }
        clock.advance(Duration::from_secs(2));
        for i in 0..10 {
            kv.set(&format!("new{i}"), "v", Duration::from_secs(600))
                .await
                .expect("set");
        }
        assert_eq!(stored(&kv), 20);
        for i in 0..10 {
            assert!(kv.exists(&format!("live{i}")).await.expect("exists"));
            assert!(kv.exists(&format!("new{i}")).await.expect("exists"));
        }
    }

    #[tokio::test]
    async fn overwriting_a_key_in_a_full_store_evicts_nothing() {
        let (kv, _clock) = store(3);
        for key in ["a", "b", "c"] {
            kv.set(key, "1", Duration::from_secs(60))
                .await
                .expect("set");
        }
        kv.set("b", "2", Duration::from_secs(60))
            .await
            .expect("set");
        assert_eq!(stored(&kv), 3);
        for (key, value) in [("a", "1"), ("b", "2"), ("c", "1")] {
            assert_eq!(kv.get(key).await.expect("get").as_deref(), Some(value));
        }
        // A new key, by contrast, must make room: one entry goes and the write still succeeds.
        assert_eq!(kv.incr("n", Duration::from_secs(60)).await.ok(), Some(1));
        assert_eq!(stored(&kv), 3);
        assert_eq!(kv.get("n").await.expect("get").as_deref(), Some("1"));
    }

    #[tokio::test]
    async fn a_capacity_of_one_still_works() {
        let (kv, _clock) = store(0);
        for i in 0..10 {
            kv.set(&format!("k{i}"), "v", Duration::from_secs(60))
                .await
                .expect("set");
            assert_eq!(stored(&kv), 1);
            assert!(kv.exists(&format!("k{i}")).await.expect("exists"));
        }
    }

    #[test]
    fn eviction_takes_exactly_a_tenth_even_when_expiries_tie() {
        let mut map = Map::new(100);
        for i in 0..100 {
            let entry = Entry {
                value: Value::Counter(1),
                expires_at: 1_000,
            };
            map.put(&format!("k{i}"), entry, 0);
        }
        let entry = Entry {
            value: Value::Counter(1),
            expires_at: 1_000,
        };
        map.put("one-more", entry, 0);
        assert_eq!(map.entries.len(), 91);
        assert!(map.entries.contains_key("one-more"));
    }

    #[test]
    fn sweeps_wait_for_half_the_map_in_writes() {
        let mut map = Map::new(usize::MAX);
        for i in 0..20_000 {
            let entry = Entry {
                value: Value::Counter(1),
                expires_at: 10,
            };
            map.put(&format!("k{i}"), entry, 0);
        }
        // Every entry has expired, but a sweep is O(len) and only paid for after len/2 writes.
        for _ in 0..9_999 {
            map.note_write(20);
        }
        assert_eq!(map.entries.len(), 20_000);
        map.note_write(20);
        assert!(map.entries.is_empty());
        // A small map still waits the minimum interval.
        map.put(
            "k",
            Entry {
                value: Value::Counter(1),
                expires_at: 30,
            },
            20,
        );
        for _ in 0..MIN_SWEEP_INTERVAL - 1 {
            map.note_write(40);
        }
        assert_eq!(map.entries.len(), 1);
        map.note_write(40);
        assert!(map.entries.is_empty());
    }
}
