//! The Redis `KvStore`, on one server or a Redis Cluster (see `redis_connection`). One Lua script for
//! the rate limiter, so a rate-limit decision is a single atomic round trip that uses Redis's own clock:
//! instances with skewed clocks still share one exact quota. Every key is namespaced by a prefix. The
//! keys of one script share a hash tag (checked before sending), so each script runs in one slot.

use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};
use security::gcra::{GcraDecision, Quota};
use security::{KvError, KvStore, Reserved, check_one_slot};

use super::redis_connection::{self, RedisConnection};

/// GCRA over Redis: KEYS[1] the cell; ARGV: emission interval (µs), window (µs), cost.
/// Returns {allowed (0/1), remaining, retry_after µs, reset_after µs}, followed by the values of KEYS[2..]
/// (read in the same round trip). Mirrors `security::gcra::decide`.
const GCRA_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - window
local out
if now < allow_at then
  out = {0, 0, allow_at - now, tat - now}
else
  local ttl_ms = math.ceil((new_tat - now) / 1000)
  if ttl_ms < 1 then ttl_ms = 1 end
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
  out = {1, math.floor((window - (new_tat - now)) / interval), 0, new_tat - now}
end
for i = 2, #KEYS do
  out[#out + 1] = redis.call('GET', KEYS[i])
end
return out
"#;

/// Increment, and start the TTL only when the counter is new.
const INCR_LUA: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"#;

/// KEYS[1] is the counter, KEYS[2..] the blockers; ARGV[1] now (seconds), ARGV[2] the TTL (ms).
/// Returns {0, index (0-based), until} when blocked, {1, count} when counted.
const RESERVE_LUA: &str = r#"
local now = tonumber(ARGV[1])
for i = 2, #KEYS do
  local blocked_until = tonumber(redis.call('GET', KEYS[i]))
  if blocked_until and blocked_until > now then return {0, i - 2, blocked_until} end
end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, n}
"#;

/// KEYS[1] loses one if it holds a positive count; its TTL stays.
const RELEASE_LUA: &str = r#"
local n = tonumber(redis.call('GET', KEYS[1]))
if n and n > 0 then redis.call('DECR', KEYS[1]) end
return 0
"#;

#[derive(Clone)]
pub struct RedisKv {
    conn: RedisConnection,
    prefix: String,
    gcra: Script,
    incr: Script,
    reserve: Script,
    release: Script,
}

/// `text` matched literally by a `SCAN MATCH` glob.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn unavailable(e: redis::RedisError) -> KvError {
    KvError::Unavailable(e.to_string())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisKv {
    /// Connects (with a bounded timeout) and checks the server answers. `prefix` namespaces every key.
    /// A `rediss://` URL is checked against the compiled-in public roots. A `redis+cluster://` URL
    /// (see `parse_redis_url`) connects to a Redis Cluster.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, KvError> {
        Self::connect_with_ca(url, prefix, None).await
    }

    /// [`Self::connect`], where a `rediss://` server's certificate must chain to `ca_pem` (PEM
    /// certificates) instead of the public roots: a private CA, as managed Redis services use.
    pub async fn connect_with_ca(
        url: &str,
        prefix: &str,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, KvError> {
        // A brace in the prefix would become every key's hash tag (all keys in one slot) or cut
        // into the tags the scripts rely on.
        if prefix.contains(['{', '}']) {
            return Err(KvError::Unavailable(
                "the Redis key prefix must not contain { or }".into(),
            ));
        }
        let conn = redis_connection::connect(url, ca_pem).await?;
        let kv = Self {
            conn,
            prefix: prefix.to_string(),
            gcra: Script::new(GCRA_LUA),
            incr: Script::new(INCR_LUA),
            reserve: Script::new(RESERVE_LUA),
            release: Script::new(RELEASE_LUA),
        };
        kv.ping().await?;
        Ok(kv)
    }

    /// True when connected to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.conn.is_cluster()
    }

    /// One page of `SCAN` over this prefix's keys matching `pattern` (a glob after the prefix):
    /// the next cursor (0 when done) and the keys without the prefix. Single server only: on a
    /// cluster a scan would have to visit every node, so this answers an error there.
    pub async fn scan_page(
        &self,
        cursor: u64,
        pattern: &str,
    ) -> Result<(u64, Vec<String>), KvError> {
        if self.is_cluster() {
            return Err(KvError::Protocol(
                "SCAN is not supported on a Redis Cluster here".into(),
            ));
        }
        let mut conn = self.conn.clone();
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}{pattern}", glob_escape(&self.prefix)))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let keys = keys
            .into_iter()
            .filter_map(|key| key.strip_prefix(&self.prefix).map(str::to_string))
            .collect();
        Ok((next, keys))
    }

    /// Copies each `(from, to)` (names after the prefix) with its value and TTL, unless `to` already
    /// holds something; one pipelined round trip. Returns how many were copied. Needs Redis 6.2
    /// (`COPY`). Single server only, as `scan_page`.
    pub async fn copy_if_absent(&self, pairs: &[(String, String)]) -> Result<u64, KvError> {
        if pairs.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for (from, to) in pairs {
            pipe.cmd("COPY").arg(self.key(from)).arg(self.key(to));
        }
        let mut conn = self.conn.clone();
        let done: Vec<i64> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        Ok(done
            .into_iter()
            .map(|d| u64::try_from(d).unwrap_or(0))
            .sum())
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl KvStore for RedisKv {
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, KvError> {
        let mut conn = self.conn.clone();
        self.incr
            .key(self.key(key))
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn reserve(
        &self,
        blockers: &[&str],
        now: u64,
        counter: &str,
        ttl: Duration,
    ) -> Result<Reserved, KvError> {
        check_one_slot(std::iter::once(counter).chain(blockers.iter().copied()))?;
        let mut conn = self.conn.clone();
        let mut invocation = self.reserve.key(self.key(counter));
        for blocker in blockers {
            invocation.key(self.key(blocker));
        }
        let reply: Vec<u64> = invocation
            .arg(now)
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        match reply.as_slice() {
            [0, index, until] => Ok(Reserved::Blocked {
                index: usize::try_from(*index).unwrap_or(usize::MAX),
                until: *until,
            }),
            [1, count] => Ok(Reserved::Counted(*count)),
            other => Err(KvError::Protocol(format!(
                "reserve script returned {other:?}"
            ))),
        }
    }

    async fn release(&self, counter: &str) -> Result<(), KvError> {
        let mut conn = self.conn.clone();
        self.release
            .key(self.key(counter))
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), KvError> {
        let mut conn = self.conn.clone();
        let options =
            redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(millis(ttl)));
        conn.set_options::<_, _, ()>(self.key(key), value, options)
            .await
            .map_err(unavailable)
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, KvError> {
        let mut conn = self.conn.clone();
        let reply: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(reply.is_some())
    }

    async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        let mut conn = self.conn.clone();
        conn.get(self.key(key)).await.map_err(unavailable)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<String>>, KvError> {
        if keys.is_empty() {
            return Ok(vec![]);
        }
        let mut conn = self.conn.clone();
        let prefixed: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        redis::cmd("MGET")
            .arg(&prefixed)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        let mut conn = self.conn.clone();
        conn.exists(self.key(key)).await.map_err(unavailable)
    }

    async fn delete(&self, key: &str) -> Result<bool, KvError> {
        let mut conn = self.conn.clone();
        let removed: u64 = conn.del(self.key(key)).await.map_err(unavailable)?;
        Ok(removed > 0)
    }

    async fn gcra(&self, key: &str, quota: Quota, cost: u32) -> Result<GcraDecision, KvError> {
        Ok(self.gcra_with_reads(key, quota, cost, &[]).await?.0)
    }

    async fn gcra_with_reads(
        &self,
        key: &str,
        quota: Quota,
        cost: u32,
        reads: &[&str],
    ) -> Result<(GcraDecision, Vec<Option<String>>), KvError> {
        check_one_slot(std::iter::once(key).chain(reads.iter().copied()))?;
        let mut conn = self.conn.clone();
        let mut invocation = self.gcra.key(self.key(key));
        for read in reads {
            invocation.key(self.key(read));
        }
        let reply: Vec<redis::Value> = invocation
            .arg(quota.emission_interval_micros())
            .arg(quota.burst_window_micros())
            .arg(cost)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if reply.len() != 4 + reads.len() {
            return Err(KvError::Protocol(format!(
                "rate-limit script returned {} values",
                reply.len()
            )));
        }
        let int = |v: &redis::Value| match v {
            redis::Value::Int(i) => Ok(u64::try_from(*i).unwrap_or(0)),
            other => Err(KvError::Protocol(format!(
                "expected an integer, got {other:?}"
            ))),
        };
        let decision = GcraDecision {
            allowed: int(&reply[0])? == 1,
            remaining: u32::try_from(int(&reply[1])?).unwrap_or(u32::MAX),
            retry_after: Duration::from_micros(int(&reply[2])?),
            reset_after: Duration::from_micros(int(&reply[3])?),
        };
        let values = reply[4..]
            .iter()
            .map(|v| match v {
                redis::Value::BulkString(bytes) => {
                    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
                }
                redis::Value::SimpleString(s) => Ok(Some(s.clone())),
                redis::Value::Nil => Ok(None),
                other => Err(KvError::Protocol(format!("unexpected value {other:?}"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((decision, values))
    }

    async fn ping(&self) -> Result<(), KvError> {
        let mut conn = self.conn.clone();
        let reply: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(KvError::Protocol(format!("PING answered {reply:?}")))
        }
    }

    fn backend(&self) -> &'static str {
        if self.is_cluster() {
            "redis-cluster"
        } else {
            "redis"
        }
    }
}
