//! The in-process `KvStore`: a mutex-guarded map with expiry. Expired entries are dropped when read and
//! swept periodically, so memory stays proportional to live keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use security::gcra::{self, GcraDecision, Quota};
use security::{Clock, KvError, KvStore, SystemClock};

/// Writes between two sweeps of expired entries.
const SWEEP_EVERY: u64 = 4096;

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

#[derive(Default)]
struct Map {
    entries: HashMap<String, Entry>,
    writes: u64,
}

impl Map {
    fn live(&mut self, key: &str, now: u64) -> Option<&mut Entry> {
        let expired = self.entries.get(key).is_some_and(|e| e.expires_at <= now);
        if expired {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn note_write(&mut self, now: u64) {
        self.writes += 1;
        if self.writes.is_multiple_of(SWEEP_EVERY) {
            self.entries.retain(|_, e| e.expires_at > now);
        }
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
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            map: Arc::new(Mutex::new(Map::default())),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Map> {
        // A panic while holding the lock cannot leave the map half-updated (every update is a single
        // insert or field write), so a poisoned lock is still safe to use.
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
        map.entries.insert(
            key.to_string(),
            Entry {
                value: Value::Counter(1),
                expires_at: now.saturating_add(micros(ttl)),
            },
        );
        Ok(1)
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), KvError> {
        let now = self.clock.now_micros();
        let mut map = self.lock();
        map.note_write(now);
        map.entries.insert(
            key.to_string(),
            Entry {
                value: Value::Text(value.to_string()),
                expires_at: now.saturating_add(micros(ttl)),
            },
        );
        Ok(())
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
            map.entries.insert(
                key.to_string(),
                Entry {
                    value: Value::Tat(new_tat),
                    expires_at: new_tat,
                },
            );
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
