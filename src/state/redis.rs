//! The Redis store: shared, atomic link state for any number of gateway instances.
//!
//! Keys (prefix `lg` by default) all carry the link id as a hash tag, so one link's keys share a
//! Cluster hash slot and every script touches one slot:
//! - `lg:link:{id}`: the link record (JSON);
//! - `lg:used:{id}:GEN`: downloads used in generation GEN;
//! - `lg:acct:{id}:GEN`: the byte accounts of the link's documents in generation GEN (a hash of
//!   `PART:s` downloads counted, `PART:c` bytes charged, `PART:z` size; see [`crate::model::counting`];
//!   `PART:t` the last 64 block takes with the bytes each reserved, for the refund of a take whose
//!   answer was lost);
//! - `lg:events:{id}`: the link's audit chain (a list of event JSON, appended by script);
//! - `lg:seen:{id}`: the last write ids applied to the link's chain (`events`) and usage counters
//!   (`used:GEN`); a part's refunds keep theirs in its account (`PART:w`). A write that timed out
//!   may still have been applied; its retry carries the same [`WriteId`] and is skipped if seen;
//! - `lg:idx:NAME`: listing indexes (sorted sets ordered by member, newest first). They are written
//!   before the link, so a link is never missing from them.
//!
//! Counting is one server-side script (EVALSHA, loaded again on NOSCRIPT by the client) that checks
//! the link's generation and state and applies [`crate::model::counting::draw`]; another applies
//! [`crate::model::counting::refund`]. The scripts mirror those functions line by line (tests run both on
//! the same sequences). Changes are compare-and-set scripts followed by a PUBLISH on
//! `lg:changes`, which every gateway follows to drop its cached copy.
//!
//! Every call is bounded by `state.redis_timeout_ms`; connections reconnect by themselves.

use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};
use tokio::sync::OnceCell;

use super::{
    index_entries, list_by_index, list_shares_by_index, share_index_entries, Change, Draw,
    LinkStore, ListPage, ListQuery, MailJob, OnChange, OutboxEntry, ShareChange, SharePage,
    ShareQuery, StoreError, WriteId,
};
use crate::model::audit::{seal, Draft, Event};
use crate::model::counting::{Drawn, BLOCK_MIN, BLOCK_SHARE};
use crate::model::link::{Link, LinkId};
use crate::model::share::Share;
use crate::state::outage::{Outage, Say};
use crate::state::queues::Refund;

/// Where the Redis deployment is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server (`redis://…` or `rediss://…`).
    Single(String),
    /// Cluster seed nodes.
    Cluster(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct RedisOptions {
    pub target: RedisTarget,
    pub prefix: String,
    /// Bound on every store call; past it the request fails closed.
    pub timeout: Duration,
}

/// One multiplexed connection, to a single server or a cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

const DRAW: &str = r#"
-- KEYS: link, used, acct
-- ARGV: gen, max, part, need, bytes, size, probe, own, whole, block, block share, block min, take
-- Mirrors crate::model::counting::draw (and, for `own`, crate::model::counting::refund first).
-- A block is granted under `take` (a write id): the last 64 takes of the part are kept in
-- `PART:t` with the bytes they reserved, so that the refund of a take whose answer was lost gives
-- them back; a take that refund already named (`PART:w`) lands as nothing.
local raw = redis.call('GET', KEYS[1])
if not raw then return {-2, 0, 0} end
local link = cjson.decode(raw)
if tostring(link['generation']) ~= ARGV[1] or link['state'] ~= 'active' then return {-2, 0, 0} end
local max = tonumber(ARGV[2])
local part = ARGV[3]
local need = tonumber(ARGV[4])
local bytes = tonumber(ARGV[5])
local size = tonumber(ARGV[6])
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local slots = tonumber(redis.call('HGET', KEYS[3], part .. ':s') or '0')
local charged = tonumber(redis.call('HGET', KEYS[3], part .. ':c') or '0')
local known = tonumber(redis.call('HGET', KEYS[3], part .. ':z') or '0')
if size > 0 and (known == 0 or size < known) then
  known = size
  redis.call('HSET', KEYS[3], part .. ':z', known)
end
local function allowance(n)
  if n == 0 or known == 0 then return 0 end
  return n * known + math.floor(known / 2)
end
local function credit()
  return math.max(allowance(slots) - charged, 0)
end
local block = tonumber(ARGV[10])
if block > 0 and ARGV[8] ~= '1' and size > 0 and size == known then
  local take = ARGV[13]
  if take ~= '' and seen(KEYS[3], part .. ':w', take) then return {-2, 0, 0} end
  -- crate::model::counting::block_size
  local n = math.min(block, math.floor(math.max(max - used, 0) / tonumber(ARGV[11])))
  if n >= tonumber(ARGV[12]) then
    used = redis.call('INCRBY', KEYS[2], n)
    redis.call('HSET', KEYS[3], part .. ':s', slots + n)
    redis.call('HINCRBY', KEYS[3], part .. ':c', n * known)
    if take ~= '' then
      local takes = redis.call('HGET', KEYS[3], part .. ':t') or ''
      local entry = take .. string.format('%012d', n * known) .. ' '
      redis.call('HSET', KEYS[3], part .. ':t', string.sub(entry .. takes, 1, 45 * 64))
    end
    return {3, n, used}
  end
end
if ARGV[8] == '1' then
  -- First give back what the response drew before it knew its size was unknown (`need`).
  charged = math.max(charged - need, 0)
  local freed = 0
  while slots > 0 and used > 0 and charged <= allowance(slots - 1) do
    slots = slots - 1
    used = used - 1
    freed = freed + 1
  end
  redis.call('HSET', KEYS[3], part .. ':c', charged, part .. ':s', slots)
  if freed > 0 then redis.call('DECRBY', KEYS[2], freed) end
  if used >= max then return {0, 0, used} end
  used = redis.call('INCR', KEYS[2])
  return {2, 0, used}
end
if ARGV[7] == '1' then
  if used < max or credit() > math.floor(known / 2) then return {1, 0, used} end
  return {0, 0, used}
end
if known > 0 and charged + math.max(need, bytes) <= allowance(slots) then
  redis.call('HINCRBY', KEYS[3], part .. ':c', bytes)
  return {1, bytes, used}
end
if used < max then
  used = redis.call('INCR', KEYS[2])
  slots = slots + 1
  redis.call('HSET', KEYS[3], part .. ':s', slots)
  local given = math.min(bytes, credit())
  redis.call('HINCRBY', KEYS[3], part .. ':c', given)
  return {2, given, used}
end
local left = credit()
if left > 0 and bytes > 0 and ARGV[9] ~= '1' then
  local given = math.min(bytes, left)
  redis.call('HINCRBY', KEYS[3], part .. ':c', given)
  return {1, given, used}
end
return {0, 0, used}
"#;
/// Lua for write ids (see [`WriteId`]): `seen` tells whether `write` is among the ids remembered
/// in hash field `key`/`field`; `remember` puts it first and keeps the last 64 (ids are 32 hex
/// digits and a space, so the list is cut by length). A retry is recognised while fewer than 64
/// other writes reached the same record since its attempt, which holds for retries sent every
/// flush by any realistic number of gateways.
const SEEN: &str = r#"
local function seen(key, field, write)
  local recent = redis.call('HGET', key, field)
  return recent and string.find(recent, write, 1, true) ~= nil
end
local function remember(key, field, write)
  local recent = redis.call('HGET', key, field) or ''
  redis.call('HSET', key, field, string.sub(write .. ' ' .. recent, 1, 33 * 64 - 1))
end
"#;

const REFUND: &str = r#"
-- KEYS: link, used, acct   ARGV: gen, part, bytes, own, write, take
-- Mirrors crate::model::counting::refund; a refund for a generation that is over changes nothing, and a
-- refund already applied (its write id remembered in the account) is not applied again.
-- With `take` = 1, `write` is the id of a block take whose answer was lost: the bytes that take
-- reserved (if it landed, from `PART:t`) go back, and remembering the id voids it if it lands later.
if seen(KEYS[3], ARGV[2] .. ':w', ARGV[5]) then return 0 end
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
if tostring(cjson.decode(raw)['generation']) ~= ARGV[1] then return 0 end
local part = ARGV[2]
local bytes = tonumber(ARGV[3])
if ARGV[6] == '1' then
  bytes = 0
  local takes = redis.call('HGET', KEYS[3], part .. ':t') or ''
  local at = string.find(takes, ARGV[5], 1, true)
  if at then bytes = tonumber(string.sub(takes, at + 32, at + 43)) end
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local slots = tonumber(redis.call('HGET', KEYS[3], part .. ':s') or '0')
local charged = tonumber(redis.call('HGET', KEYS[3], part .. ':c') or '0')
local size = tonumber(redis.call('HGET', KEYS[3], part .. ':z') or '0')
charged = math.max(charged - bytes, 0)
local freed = math.min(tonumber(ARGV[4]), used)
used = used - freed
while slots > 0 and used > 0 do
  local allow = 0
  if slots - 1 > 0 and size > 0 then allow = (slots - 1) * size + math.floor(size / 2) end
  if charged > allow then break end
  slots = slots - 1
  used = used - 1
  freed = freed + 1
end
redis.call('HSET', KEYS[3], part .. ':c', charged, part .. ':s', slots)
remember(KEYS[3], part .. ':w', ARGV[5])
if freed > 0 then redis.call('DECRBY', KEYS[2], freed) end
return freed
"#;

const ADD_USAGE: &str = r#"
-- KEYS: used, seen   ARGV: n, field, write
if seen(KEYS[2], ARGV[2], ARGV[3]) then return 0 end
redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))
remember(KEYS[2], ARGV[2], ARGV[3])
return 1
"#;
const CREATE: &str = r#"
-- KEYS: link   ARGV: json
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 1 end
return 0
"#;

const COMPARE_AND_SET: &str = r#"
-- KEYS: link   ARGV: expected json, new json
local current = redis.call('GET', KEYS[1])
if not current then return -1 end
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"#;

/// A yes/no argument of a script.
fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// Lua: `push` appends `ARGV[first..=last]` to list `key`, a thousand per `RPUSH` (a quarter
/// second's events come in one script; one call per event took Redis 1.7 times as long).
const PUSH: &str = r#"
local function push(key, first, last)
  for i = first, last, 1000 do
    redis.call('RPUSH', key, unpack(ARGV, i, math.min(i + 999, last)))
  end
end
"#;

const APPEND_EVENTS: &str = r#"
-- KEYS: events, seen   ARGV: write, expected tail hash ('' for an empty chain), prune-before
-- (RFC 3339 UTC), events...   Returns 1 appended, 0 the tail moved, 2 this write was applied before.
if seen(KEYS[2], 'events', ARGV[1]) then return 2 end
local tail = redis.call('LINDEX', KEYS[1], -1)
local tail_hash = ''
if tail then tail_hash = cjson.decode(tail)['hash'] end
if tail_hash ~= ARGV[2] then return 0 end
push(KEYS[1], 4, #ARGV)
remember(KEYS[2], 'events', ARGV[1])
if ARGV[3] ~= '' then
  for _ = 1, 1000 do
    local head = redis.call('LINDEX', KEYS[1], 0)
    if not head or cjson.decode(head)['at'] >= ARGV[3] then break end
    redis.call('LPOP', KEYS[1])
  end
end
return 1
"#;

const APPEND_NOTIFY: &str = r#"
-- KEYS: events, seen, outbox due, outbox events   ARGV: write, expected tail hash, prune-before,
-- outbox bound, N, N events..., then pairs (event id, index among the N) of notifiable events.
-- As APPEND_EVENTS, and the notifiable events enter the outbox (due now) in the same script while
-- it holds fewer than the bound. Returns {1|0|2 as APPEND_EVENTS, notifications left out}.
-- TIME and writes: replicated by effects (the default from Redis 5; asked for on older ones).
redis.replicate_commands()
if seen(KEYS[2], 'events', ARGV[1]) then return {2, 0} end
local tail = redis.call('LINDEX', KEYS[1], -1)
local tail_hash = ''
if tail then tail_hash = cjson.decode(tail)['hash'] end
if tail_hash ~= ARGV[2] then return {0, 0} end
local n = tonumber(ARGV[5])
push(KEYS[1], 6, 5 + n)
remember(KEYS[2], 'events', ARGV[1])
if ARGV[3] ~= '' then
  for _ = 1, 1000 do
    local head = redis.call('LINDEX', KEYS[1], 0)
    if not head or cjson.decode(head)['at'] >= ARGV[3] then break end
    redis.call('LPOP', KEYS[1])
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max = tonumber(ARGV[4])
local left = 0
for i = 6 + n, #ARGV, 2 do
  if redis.call('ZCARD', KEYS[3]) < max then
    redis.call('ZADD', KEYS[3], now, ARGV[i])
    redis.call('HSET', KEYS[4], ARGV[i], ARGV[5 + tonumber(ARGV[i + 1])])
  else
    left = left + 1
  end
end
return {1, left}
"#;

/// The outbox (see `LinkStore::outbox_lease`): KEYS due (sorted set, score = due or lease end in
/// ms), ev (hash id → event JSON), try (attempts), lease (lease tokens), err (last errors).
const OUTBOX_LEASE: &str = r#"
-- KEYS: due, ev, try, lease, err   ARGV: limit, lease ms, tokens...
-- TIME and writes: replicated by effects (the default from Redis 5; asked for on older ones).
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for i, id in ipairs(ids) do
  local ev = redis.call('HGET', KEYS[2], id)
  if ev then
    local token = ARGV[2 + i]
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
    redis.call('HSET', KEYS[4], id, token)
    table.insert(out, id)
    table.insert(out, ev)
    table.insert(out, redis.call('HGET', KEYS[3], id) or '0')
    table.insert(out, redis.call('HGET', KEYS[5], id) or '')
    table.insert(out, token)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"#;

const OUTBOX_SETTLE: &str = r#"
-- KEYS: due, ev, try, lease, err, failed, failed ev, failed try, failed err
-- ARGV: id, lease, action ('done' | 'retry' | 'fail'), delay ms, error, keep
-- Returns 1 when the lease held the entry (and the action was taken), else 0.
-- TIME and writes: replicated by effects (the default from Redis 5; asked for on older ones).
redis.replicate_commands()
local id = ARGV[1]
if redis.call('HGET', KEYS[4], id) ~= ARGV[2] then return 0 end
if not redis.call('ZSCORE', KEYS[1], id) then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == 'retry' then
  redis.call('HINCRBY', KEYS[3], id, 1)
  redis.call('HSET', KEYS[5], id, ARGV[5])
  redis.call('HDEL', KEYS[4], id)
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), id)
  return 1
end
if ARGV[3] == 'fail' then
  redis.call('HSET', KEYS[7], id, redis.call('HGET', KEYS[2], id) or '')
  redis.call('HSET', KEYS[8], id, tonumber(redis.call('HGET', KEYS[3], id) or '0') + 1)
  redis.call('HSET', KEYS[9], id, ARGV[5])
  redis.call('ZADD', KEYS[6], now, id)
  local extra = redis.call('ZCARD', KEYS[6]) - tonumber(ARGV[6])
  if extra > 0 then
    local popped = redis.call('ZPOPMIN', KEYS[6], extra)
    for i = 1, #popped, 2 do
      local old = popped[i]
      redis.call('HDEL', KEYS[7], old)
      redis.call('HDEL', KEYS[8], old)
      redis.call('HDEL', KEYS[9], old)
    end
  end
end
redis.call('ZREM', KEYS[1], id)
redis.call('HDEL', KEYS[2], id)
redis.call('HDEL', KEYS[3], id)
redis.call('HDEL', KEYS[4], id)
redis.call('HDEL', KEYS[5], id)
return 1
"#;

const HIT: &str = r#"
-- KEYS: counter   ARGV: increment, window ms
local v = redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) end
return v
"#;

pub struct RedisStore {
    opts: RedisOptions,
    single: Option<redis::Client>,
    cluster: Option<redis::cluster::ClusterClient>,
    /// Created lazily inside the runtime that first uses it (Pingora runs several runtimes).
    conn: OnceCell<Conn>,
    draw: Script,
    refund: Script,
    create: Script,
    cas: Script,
    append: Script,
    append_notify: Script,
    add_usage: Script,
    hit: Script,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Checks the target's syntax; no connection is made until the first call.
    pub fn new(opts: RedisOptions) -> Result<RedisStore, StoreError> {
        let (single, cluster) = match &opts.target {
            RedisTarget::Single(url) => (
                Some(redis::Client::open(url.as_str()).map_err(unavailable)?),
                None,
            ),
            RedisTarget::Cluster(nodes) => {
                let client =
                    redis::cluster::ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                        .connection_timeout(opts.timeout)
                        .response_timeout(opts.timeout)
                        .retries(2)
                        .build()
                        .map_err(unavailable)?;
                (None, Some(client))
            }
        };
        Ok(RedisStore {
            opts,
            single,
            cluster,
            conn: OnceCell::new(),
            draw: Script::new(&format!("{SEEN}{DRAW}")),
            refund: Script::new(&format!("{SEEN}{REFUND}")),
            add_usage: Script::new(&format!("{SEEN}{ADD_USAGE}")),
            create: Script::new(CREATE),
            cas: Script::new(COMPARE_AND_SET),
            append: Script::new(&format!("{SEEN}{PUSH}{APPEND_EVENTS}")),
            append_notify: Script::new(&format!("{SEEN}{PUSH}{APPEND_NOTIFY}")),
            hit: Script::new(HIT),
        })
    }

    async fn connect(&self) -> Result<Conn, StoreError> {
        if let Some(client) = &self.single {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(self.opts.timeout)
                .set_response_timeout(self.opts.timeout)
                .set_number_of_retries(1)
                .set_max_delay(1_000);
            let manager = ConnectionManager::new_with_config(client.clone(), config)
                .await
                .map_err(unavailable)?;
            return Ok(Conn::Single(manager));
        }
        match &self.cluster {
            Some(client) => Ok(Conn::Cluster(
                client.get_async_connection().await.map_err(unavailable)?,
            )),
            None => Err(StoreError::Unavailable("no redis target".into())),
        }
    }

    /// Runs `op` on the shared connection, bounded by the configured timeout.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let work = async {
            let conn = self.conn.get_or_try_init(|| self.connect()).await?.clone();
            op(conn).await.map_err(unavailable)
        };
        match tokio::time::timeout(self.opts.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "redis did not answer within {:?}",
                self.opts.timeout
            ))),
        }
    }

    /// Appends events (see `LinkStore::append_events`); with `notify` (the outbox's bound) the
    /// notifiable ones enter the outbox in the same script. Returns how many were left out.
    async fn append(
        &self,
        write: WriteId,
        id: LinkId,
        drafts: &[Draft],
        retention: Option<Duration>,
        notify: Option<u64>,
    ) -> Result<u64, StoreError> {
        let key = self.key("events", &id);
        let seen = self.key("seen", &id);
        let write = write.to_string();
        let cutoff = match retention {
            Some(keep) => (time::OffsetDateTime::now_utc() - keep)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            None => String::new(),
        };
        for _ in 0..16 {
            let k = key.clone();
            let tail: Option<Vec<u8>> = self
                .run(|mut c| async move {
                    redis::cmd("LINDEX")
                        .arg(k)
                        .arg(-1)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            let tail: Option<Event> = tail
                .map(|t| {
                    serde_json::from_slice(&t)
                        .map_err(|e| StoreError::Corrupt(format!("event record: {e}")))
                })
                .transpose()?;
            let sealed =
                seal(id, tail.as_ref(), drafts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            // The outbox's entries: (event id, index of the event among those appended).
            let notices: Vec<(String, usize)> = match notify {
                Some(_) => sealed
                    .iter()
                    .zip(drafts)
                    .enumerate()
                    .filter(|(_, (_, d))| crate::model::webhook::notifiable(&d.kind))
                    .map(|(i, ((seq, _), _))| (format!("{id}.{seq}"), i))
                    .collect(),
                None => Vec::new(),
            };
            let json: Vec<Vec<u8>> = sealed.into_iter().map(|(_, json)| json).collect();
            let expected = tail.map(|t| t.hash).unwrap_or_default();
            let (k, seen, write, cutoff) = (&key, &seen, &write, &cutoff);
            let outbox = (self.outbox_key("due"), self.outbox_key("ev"));
            let (appended, left_out): (i64, u64) = match notify {
                None => {
                    let appended: i64 = self
                        .run(|mut c| async move {
                            let mut inv = self.append.prepare_invoke();
                            inv.key(k).key(seen).arg(write).arg(expected).arg(cutoff);
                            for j in &json {
                                inv.arg(j.as_slice());
                            }
                            inv.invoke_async(&mut c).await
                        })
                        .await?;
                    (appended, 0)
                }
                Some(max) => {
                    let (json, notices, outbox) = (&json, &notices, &outbox);
                    let (appended, left_out): (i64, i64) = self
                        .run(|mut c| async move {
                            let mut inv = self.append_notify.prepare_invoke();
                            inv.key(k).key(seen).key(&outbox.0).key(&outbox.1);
                            inv.arg(write)
                                .arg(expected)
                                .arg(cutoff)
                                .arg(max)
                                .arg(json.len());
                            for j in json {
                                inv.arg(j.as_slice());
                            }
                            for (event, i) in notices {
                                inv.arg(event).arg(i + 1);
                            }
                            inv.invoke_async(&mut c).await
                        })
                        .await?;
                    (appended, left_out.max(0) as u64)
                }
            };
            if appended != 0 {
                return Ok(left_out);
            }
        }
        Err(StoreError::Unavailable(format!(
            "events of link {id} kept changing; gave up"
        )))
    }

    /// Puts a link in the expiry index at `at` (Unix ms), or earlier where it already is
    /// (`ZADD LT`: an entry only moves later through the sweeper, which checks the link first).
    async fn index_expiry(&self, id: LinkId, at: u64) -> Result<(), StoreError> {
        let key = self.expiry_key();
        self.run(|mut c| async move {
            redis::cmd("ZADD")
                .arg(key)
                .arg("LT")
                .arg(at)
                .arg(id.to_string())
                .query_async::<i64>(&mut c)
                .await
        })
        .await?;
        Ok(())
    }

    /// The expiry index: one sorted set (link id by Unix ms), one key, so one Cluster slot.
    fn expiry_key(&self) -> String {
        format!("{}:expiry", self.opts.prefix)
    }

    /// The share mail queue's keys: one hash tag, so one Cluster slot.
    fn mail_key(&self, kind: &str) -> String {
        format!("{}:mq:{{mail}}:{kind}", self.opts.prefix)
    }

    /// The outbox's keys (one set per deployment: the outbox needs a single Redis server).
    fn outbox_key(&self, kind: &str) -> String {
        format!("{}:obx:{kind}", self.opts.prefix)
    }

    fn key(&self, kind: &str, id: &LinkId) -> String {
        format!("{}:{kind}:{{{id}}}", self.opts.prefix)
    }

    fn gen_key(&self, kind: &str, id: &LinkId, generation: u64) -> String {
        format!("{}:{kind}:{{{id}}}:{generation}", self.opts.prefix)
    }

    fn channel(&self) -> String {
        format!("{}:changes", self.opts.prefix)
    }

    async fn publish(&self, id: LinkId) {
        let channel = self.channel();
        let sent = self
            .run(|mut c| async move {
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(id.to_string())
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await;
        if let Err(e) = sent {
            // Other instances still drop the link from their caches within the cache TTL.
            tracing::warn!(link = %id, error = %e, "could not announce a link change");
        }
    }

    /// Servers to follow changes on, tried in turn (in a Cluster, PUBLISH reaches every node).
    fn pubsub_clients(&self) -> Vec<redis::Client> {
        match &self.opts.target {
            RedisTarget::Single(_) => self.single.iter().cloned().collect(),
            RedisTarget::Cluster(nodes) => nodes
                .iter()
                .filter_map(|n| redis::Client::open(n.as_str()).ok())
                .collect(),
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what} record: {e}")))
}

fn encode<T: serde::Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Link and share records: JSON under one key each, listed in sorted-set indexes.
impl RedisStore {
    /// Writes a record after its index entries (`{prefix}:{index}:{name}`), so a crash in
    /// between leaves an entry without a record (skipped when listing), never a record that
    /// cannot be listed. Each index is its own key (and Cluster slot): one command each, sent
    /// together. `false` when a record is there already.
    async fn create_indexed(
        &self,
        key: String,
        json: Vec<u8>,
        index: &str,
        (names, member): (Vec<String>, String),
    ) -> Result<bool, StoreError> {
        let writes = names.into_iter().map(|name| {
            let (key, member) = (
                format!("{}:{index}:{name}", self.opts.prefix),
                member.clone(),
            );
            self.run(|mut c| async move {
                redis::cmd("ZADD")
                    .arg(key)
                    .arg(0)
                    .arg(member)
                    .query_async::<i64>(&mut c)
                    .await
            })
        });
        for written in futures_util::future::join_all(writes).await {
            written?;
        }
        let created: i64 = self
            .run(|mut c| async move { self.create.key(key).arg(json).invoke_async(&mut c).await })
            .await?;
        Ok(created == 1)
    }

    /// Up to `n` members of an index (`{prefix}:{kind}:{index}`) after `after` (exclusive).
    async fn scan_index(
        &self,
        kind: &str,
        index: String,
        after: Option<String>,
        n: usize,
    ) -> Result<Vec<String>, StoreError> {
        let key = format!("{}:{kind}:{index}", self.opts.prefix);
        let start = match after {
            Some(a) => format!("({a}"),
            None => "-".to_string(),
        };
        self.run(move |mut c| async move {
            redis::cmd("ZRANGE")
                .arg(key)
                .arg(start)
                .arg("+")
                .arg("BYLEX")
                .arg("LIMIT")
                .arg(0)
                .arg(n)
                .query_async(&mut c)
                .await
        })
        .await
    }

    async fn read_record<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        key: String,
    ) -> Result<Option<T>, StoreError> {
        let raw: Option<Vec<u8>> = self
            .run(|mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
            .await?;
        raw.map(|b| decode(what, &b)).transpose()
    }

    /// Read, change, compare-and-swap; read again when another writer got there first.
    /// `expiry` names the expiry index time a change needs (links; see
    /// [`super::expiry_entry`]): it is written before the record, as the listing indexes are,
    /// so an entry may be early (the sweeper moves it) but never missing.
    async fn change_record<T: serde::de::DeserializeOwned + serde::Serialize + Clone>(
        &self,
        what: &str,
        id: LinkId,
        key: String,
        change: &(dyn Fn(&mut T) -> Result<(), StoreError> + Send + Sync),
        expiry: fn(&T, &T) -> Option<u64>,
    ) -> Result<T, StoreError> {
        for attempt in 0..64u64 {
            if attempt > 0 {
                // Lost a race with another writer: back off a little, with jitter, and read again.
                tokio::time::sleep(Duration::from_millis(
                    rand::random::<u64>() % (2 + attempt.min(20)),
                ))
                .await;
            }
            let k = key.clone();
            let raw: Option<Vec<u8>> = self
                .run(|mut c| async move { redis::cmd("GET").arg(k).query_async(&mut c).await })
                .await?;
            let raw = raw.ok_or(StoreError::NotFound(id))?;
            let mut record: T = decode(what, &raw)?;
            let before = record.clone();
            change(&mut record)?;
            let new = encode(&record)?;
            if let Some(at) = expiry(&before, &record) {
                self.index_expiry(id, at).await?;
            }
            let k = key.clone();
            let swapped: i64 =
                self.run(|mut c| async move {
                    self.cas.key(k).arg(raw).arg(new).invoke_async(&mut c).await
                })
                .await?;
            match swapped {
                1 => return Ok(record),
                -1 => return Err(StoreError::NotFound(id)),
                _ => continue, // changed meanwhile: read again
            }
        }
        Err(StoreError::Unavailable(format!(
            "{what} {id} kept changing; gave up"
        )))
    }
}

#[async_trait]
impl LinkStore for RedisStore {
    async fn create(&self, link: &Link) -> Result<(), StoreError> {
        let (key, json) = (self.key("link", &link.id), encode(link)?);
        // Before the record, as its listing index entries.
        if let Some(at) = super::expiry_entry(None, link) {
            self.index_expiry(link.id, at).await?;
        }
        if self
            .create_indexed(key, json, "idx", index_entries(link))
            .await?
        {
            Ok(())
        } else {
            Err(StoreError::Exists(link.id))
        }
    }

    async fn get(&self, id: LinkId) -> Result<Option<Link>, StoreError> {
        self.read_record("link", self.key("link", &id)).await
    }

    async fn update(&self, id: LinkId, change: Change) -> Result<Link, StoreError> {
        let link = self
            .change_record(
                "link",
                id,
                self.key("link", &id),
                change.as_ref(),
                |before, after| super::expiry_entry(Some(before), after),
            )
            .await?;
        self.publish(id).await;
        Ok(link)
    }

    async fn draw(&self, d: &Draw) -> Result<Drawn, StoreError> {
        let keys = [
            self.key("link", &d.id),
            self.gen_key("used", &d.id, d.generation),
            self.gen_key("acct", &d.id, d.generation),
        ];
        let a = &d.ask;
        let (code, bytes, used): (i64, u64, u64) = self
            .run(|mut c| async move {
                let mut inv = self.draw.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(d.generation)
                    .arg(d.max)
                    .arg(&d.part)
                    .arg(a.need)
                    .arg(a.bytes)
                    .arg(a.size)
                    .arg(flag(a.probe))
                    .arg(flag(a.own))
                    .arg(flag(a.whole))
                    .arg(a.block)
                    .arg(BLOCK_SHARE)
                    .arg(BLOCK_MIN)
                    .arg(d.take.map(|t| t.to_string()).unwrap_or_default());
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(match code {
            1 => Drawn::Granted {
                bytes,
                counted: false,
                used,
            },
            2 => Drawn::Granted {
                bytes,
                counted: true,
                used,
            },
            3 => Drawn::Block { slots: bytes, used },
            0 => Drawn::Exhausted,
            _ => Drawn::Stale,
        })
    }

    async fn refund(&self, refunds: &[Refund]) -> Result<(), StoreError> {
        // One script each (refunds of different links live in different Cluster slots), sent
        // together over the multiplexed connection.
        let calls = refunds.iter().map(|r| {
            let keys = [
                self.key("link", &r.id),
                self.gen_key("used", &r.id, r.generation),
                self.gen_key("acct", &r.id, r.generation),
            ];
            self.run(move |mut c| async move {
                let mut inv = self.refund.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(r.generation)
                    .arg(&r.part)
                    .arg(r.bytes)
                    .arg(r.own)
                    .arg(r.write.to_string())
                    .arg(flag(r.take));
                inv.invoke_async::<i64>(&mut c).await
            })
        });
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .try_for_each(|r| r.map(|_| ()))
    }

    async fn add_usage(
        &self,
        write: WriteId,
        id: LinkId,
        generation: u64,
        n: u64,
    ) -> Result<(), StoreError> {
        let keys = [self.gen_key("used", &id, generation), self.key("seen", &id)];
        self.run(|mut c| async move {
            let mut inv = self.add_usage.prepare_invoke();
            inv.key(&keys[0]).key(&keys[1]);
            inv.arg(n)
                .arg(format!("used:{generation}"))
                .arg(write.to_string());
            inv.invoke_async::<i64>(&mut c).await
        })
        .await
        .map(|_| ())
    }

    async fn usage(&self, id: LinkId, generation: u64) -> Result<u64, StoreError> {
        let key = self.gen_key("used", &id, generation);
        let used: Option<i64> = self
            .run(|mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
            .await?;
        Ok(used.unwrap_or(0).max(0) as u64)
    }

    async fn list(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        list_by_index(self, query, |index, after, n| {
            self.scan_index("idx", index, after, n)
        })
        .await
    }

    async fn append_events(
        &self,
        write: WriteId,
        id: LinkId,
        drafts: &[Draft],
        retention: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.append(write, id, drafts, retention, None)
            .await
            .map(|_| ())
    }

    async fn events(&self, id: LinkId, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let key = self.key("events", &id);
        let k = key.clone();
        let head: Option<Vec<u8>> = self
            .run(
                |mut c| async move { redis::cmd("LINDEX").arg(k).arg(0).query_async(&mut c).await },
            )
            .await?;
        let Some(head) = head else {
            return Ok(Vec::new());
        };
        let first: Event = serde_json::from_slice(&head)
            .map_err(|e| StoreError::Corrupt(format!("event record: {e}")))?;
        let start = after.saturating_add(1).saturating_sub(first.seq) as i64;
        let stop = start + limit.max(1) as i64 - 1;
        let raw: Vec<Vec<u8>> = self
            .run(|mut c| async move {
                redis::cmd("LRANGE")
                    .arg(key)
                    .arg(start)
                    .arg(stop)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        raw.iter()
            .map(|r| {
                serde_json::from_slice(r)
                    .map_err(|e| StoreError::Corrupt(format!("event record: {e}")))
            })
            .filter(|e| !matches!(e, Ok(Event { seq, .. }) if *seq <= after))
            .collect()
    }

    async fn hit(&self, key: &str, window: Duration, incr: u64) -> Result<u64, StoreError> {
        let key = format!("{}:eph:{key}", self.opts.prefix);
        let ms = window.as_millis().max(1) as u64;
        let v: i64 = self
            .run(|mut c| async move {
                self.hit
                    .key(key)
                    .arg(incr)
                    .arg(ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(v.max(0) as u64)
    }

    async fn once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let key = format!("{}:eph:{key}", self.opts.prefix);
        let ms = ttl.as_millis().max(1) as u64;
        let set: Option<String> = self
            .run(|mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(set.is_some())
    }

    async fn kv_put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let key = format!("{}:eph:{key}", self.opts.prefix);
        let (value, ms) = (value.to_vec(), ttl.as_millis().max(1) as u64);
        self.run(|mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ms)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = format!("{}:eph:{key}", self.opts.prefix);
        self.run(|mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
            .await
    }

    async fn kv_del(&self, key: &str) -> Result<(), StoreError> {
        let key = format!("{}:eph:{key}", self.opts.prefix);
        self.run(|mut c| async move { redis::cmd("DEL").arg(key).query_async::<i64>(&mut c).await })
            .await
            .map(|_| ())
    }

    async fn follow_changes(&self, on_change: OnChange) {
        let clients = self.pubsub_clients();
        if clients.is_empty() {
            return;
        }
        let channel = self.channel();
        // Redis being unreachable is said once, recalled every minute while it lasts, and its
        // end said once; each attempt is a `debug` line.
        let mut outage = Outage::default();
        for client in clients.iter().cycle() {
            let failure = match tokio::time::timeout(
                self.opts.timeout.max(Duration::from_secs(1)),
                client.get_async_pubsub(),
            )
            .await
            {
                Ok(Ok(mut pubsub)) => match pubsub.subscribe(&channel).await {
                    Err(e) => e.to_string(),
                    Ok(()) => {
                        say_redis(outage.succeeded(Instant::now()), "");
                        // Changes may have been missed while not subscribed: drop every cached link.
                        on_change(None);
                        tracing::info!(channel = %channel, "following link changes");
                        let mut messages = pubsub.on_message();
                        while let Some(msg) = messages.next().await {
                            let payload: String = msg.get_payload().unwrap_or_default();
                            match LinkId::parse(&payload) {
                                Some(id) => on_change(Some(id)),
                                None => on_change(None),
                            }
                        }
                        "lost the link-change subscription".to_string()
                    }
                },
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out connecting".to_string(),
            };
            tracing::debug!(error = %failure, "redis: following link changes failed; retrying in 250 ms");
            say_redis(outage.failed(Instant::now()), &failure);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    // Kept values are plain Redis keys with an expiry, as the short-lived ones are: Redis keeps
    // them as it keeps everything else (its own persistence settings).
    async fn keep_new(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv_put_new(&format!("keep:{key}"), value, ttl).await
    }

    async fn keep_put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.kv_put(&format!("keep:{key}"), value, ttl).await
    }

    async fn keep_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv_get(&format!("keep:{key}")).await
    }

    async fn keep_del(&self, key: &str) -> Result<(), StoreError> {
        self.kv_del(&format!("keep:{key}")).await
    }

    async fn kv_put_new(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        // A script rather than `SET NX GET`, which needs Redis 7.
        static PUT_NEW: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
            Script::new(
                "local v = redis.call('GET', KEYS[1]) if v then return v end \
                 redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2])) return false",
            )
        });
        let key = format!("{}:eph:{key}", self.opts.prefix);
        let (value, ms) = (value.to_vec(), ttl.as_millis().max(1) as u64);
        self.run(|mut c| async move {
            PUT_NEW
                .key(key)
                .arg(value)
                .arg(ms)
                .invoke_async(&mut c)
                .await
        })
        .await
    }

    async fn tally(&self, key: &str, incr: u64) -> Result<u64, StoreError> {
        let key = format!("{}:tally:{key}", self.opts.prefix);
        let v: i64 = self
            .run(|mut c| async move {
                redis::cmd("INCRBY")
                    .arg(key)
                    .arg(incr)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(v.max(0) as u64)
    }

    async fn create_share(&self, share: &Share) -> Result<(), StoreError> {
        let (key, json) = (self.key("share", &share.id), encode(share)?);
        if self
            .create_indexed(key, json, "sidx", share_index_entries(share))
            .await?
        {
            Ok(())
        } else {
            Err(StoreError::Exists(share.id))
        }
    }

    async fn get_share(&self, id: LinkId) -> Result<Option<Share>, StoreError> {
        self.read_record("share", self.key("share", &id)).await
    }

    async fn update_share(&self, id: LinkId, change: ShareChange) -> Result<Share, StoreError> {
        self.change_record(
            "share",
            id,
            self.key("share", &id),
            change.as_ref(),
            |_, _| None,
        )
        .await
    }

    async fn list_shares(&self, query: &ShareQuery) -> Result<SharePage, StoreError> {
        list_shares_by_index(self, query, |index, after, n| {
            self.scan_index("sidx", index, after, n)
        })
        .await
    }

    async fn append_events_notify(
        &self,
        write: WriteId,
        id: LinkId,
        drafts: &[Draft],
        retention: Option<Duration>,
        max_pending: u64,
    ) -> Result<u64, StoreError> {
        self.append(write, id, drafts, retention, Some(max_pending))
            .await
    }

    async fn outbox_lease(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        static LEASE: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(OUTBOX_LEASE));
        let keys = ["due", "ev", "try", "lease", "err"].map(|k| self.outbox_key(k));
        let limit = limit.clamp(1, 1000);
        let tokens: Vec<String> = (0..limit).map(|_| super::lease_token()).collect();
        let ms = lease.as_millis().max(1) as u64;
        let raw: Vec<Vec<u8>> = self
            .run(|mut c| async move {
                let mut inv = LEASE.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(limit).arg(ms);
                for t in &tokens {
                    inv.arg(t);
                }
                inv.invoke_async(&mut c).await
            })
            .await?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let mut out = Vec::new();
        for chunk in raw.chunks_exact(5) {
            let event: Event = serde_json::from_slice(&chunk[1])
                .map_err(|e| StoreError::Corrupt(format!("outbox entry: {e}")))?;
            let error = text(&chunk[3]);
            out.push(OutboxEntry {
                id: text(&chunk[0]),
                event,
                attempts: text(&chunk[2]).parse().unwrap_or(0),
                lease: text(&chunk[4]),
                last_error: (!error.is_empty()).then_some(error),
                failed_at: None,
            });
        }
        Ok(out)
    }

    async fn outbox_done(&self, id: &str, lease: &str) -> Result<bool, StoreError> {
        self.settle(id, lease, "done", Duration::ZERO, "", 0).await
    }

    async fn outbox_retry(
        &self,
        id: &str,
        lease: &str,
        delay: Duration,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.settle(id, lease, "retry", delay, error, 0).await
    }

    async fn outbox_fail(
        &self,
        id: &str,
        lease: &str,
        error: &str,
        keep: usize,
    ) -> Result<bool, StoreError> {
        self.settle(id, lease, "fail", Duration::ZERO, error, keep)
            .await
    }

    async fn outbox_failed(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let failed = self.outbox_key("failed");
        let stop = limit.clamp(1, 1000) as i64 - 1;
        let ids: Vec<(String, f64)> = self
            .run(|mut c| async move {
                redis::cmd("ZREVRANGE")
                    .arg(failed)
                    .arg(0)
                    .arg(stop)
                    .arg("WITHSCORES")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One round trip for every entry's event, attempts and last error.
        let keys = ["fev", "ftry", "ferr"].map(|k| self.outbox_key(k));
        let fields: Vec<&str> = ids.iter().map(|(id, _)| id.as_str()).collect();
        type Columns = (
            Vec<Option<Vec<u8>>>,
            Vec<Option<String>>,
            Vec<Option<String>>,
        );
        let (events, tries, errors): Columns = self
            .run(|mut c| async move {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("HMGET").arg(k).arg(&fields);
                }
                pipe.query_async(&mut c).await
            })
            .await?;
        let mut out = Vec::new();
        for (i, (id, at)) in ids.iter().enumerate() {
            let Some(Some(ev)) = events.get(i) else {
                continue;
            };
            let event: Event = serde_json::from_slice(ev)
                .map_err(|e| StoreError::Corrupt(format!("failed webhook: {e}")))?;
            out.push(OutboxEntry {
                id: id.clone(),
                event,
                attempts: tries
                    .get(i)
                    .cloned()
                    .flatten()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0),
                lease: String::new(),
                last_error: errors.get(i).cloned().flatten(),
                failed_at: Some(at.max(0.0) as u64),
            });
        }
        Ok(out)
    }

    async fn outbox_pending(&self) -> Result<u64, StoreError> {
        let due = self.outbox_key("due");
        let n: i64 = self
            .run(|mut c| async move { redis::cmd("ZCARD").arg(due).query_async(&mut c).await })
            .await?;
        Ok(n.max(0) as u64)
    }

    async fn mail_hold(
        &self,
        jobs: &[String],
        lease: &str,
        hold: Duration,
    ) -> Result<(), StoreError> {
        static HOLD: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(MAIL_HOLD));
        if jobs.is_empty() {
            return Ok(());
        }
        let keys = ["due", "lease", "try"].map(|k| self.mail_key(k));
        let ms = hold.as_millis().max(1) as u64;
        self.run(|mut c| async move {
            let mut inv = HOLD.prepare_invoke();
            for k in &keys {
                inv.key(k);
            }
            inv.arg(ms).arg(lease);
            for j in jobs {
                inv.arg(j);
            }
            inv.invoke_async::<i64>(&mut c).await
        })
        .await?;
        Ok(())
    }

    async fn mail_lease(&self, limit: usize, hold: Duration) -> Result<Vec<MailJob>, StoreError> {
        static LEASE: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(MAIL_LEASE));
        let keys = ["due", "lease", "try"].map(|k| self.mail_key(k));
        let limit = limit.clamp(1, 1000);
        let tokens: Vec<String> = (0..limit).map(|_| super::lease_token()).collect();
        let ms = hold.as_millis().max(1) as u64;
        let raw: Vec<String> = self
            .run(|mut c| async move {
                let mut inv = LEASE.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(limit).arg(ms);
                for t in &tokens {
                    inv.arg(t);
                }
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(raw
            .chunks_exact(3)
            .map(|c| MailJob {
                id: c[0].clone(),
                lease: c[1].clone(),
                attempt: c[2].parse().unwrap_or(1),
            })
            .collect())
    }

    async fn mail_settle(
        &self,
        job: &str,
        lease: &str,
        retry: Option<Duration>,
    ) -> Result<bool, StoreError> {
        static SETTLE: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(MAIL_SETTLE));
        let keys = ["due", "lease", "try"].map(|k| self.mail_key(k));
        let delay = retry.map(|d| d.as_millis().to_string()).unwrap_or_default();
        let held: i64 = self
            .run(|mut c| async move {
                let mut inv = SETTLE.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(job).arg(lease).arg(delay);
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(held == 1)
    }

    async fn expiring(&self, now_ms: u64, limit: usize) -> Result<Vec<(LinkId, u64)>, StoreError> {
        let key = self.expiry_key();
        let limit = limit.clamp(1, 10_000);
        let raw: Vec<(String, f64)> = self
            .run(|mut c| async move {
                redis::cmd("ZRANGE")
                    .arg(key)
                    .arg("-inf")
                    .arg(now_ms)
                    .arg("BYSCORE")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .arg("WITHSCORES")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(raw
            .into_iter()
            .filter_map(|(id, at)| Some((LinkId::parse(&id)?, at.max(0.0) as u64)))
            .collect())
    }

    async fn expiry_settle(
        &self,
        id: LinkId,
        seen: u64,
        next: Option<u64>,
    ) -> Result<bool, StoreError> {
        static SETTLE: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(EXPIRY_SETTLE));
        let key = self.expiry_key();
        let next = next.map(|n| n.to_string()).unwrap_or_default();
        let held: i64 = self
            .run(|mut c| async move {
                SETTLE
                    .key(key)
                    .arg(id.to_string())
                    .arg(seen)
                    .arg(next)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(held == 1)
    }
}

const EXPIRY_SETTLE: &str = r#"
-- KEYS: expiry   ARGV: link id, seen ms, next ms ('' = remove)   Returns 1 if it was at `seen`.
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not at or tonumber(at) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], tonumber(ARGV[3]), ARGV[1])
end
return 1
"#;

/// The share mail queue (see `LinkStore::mail_hold`): KEYS due (sorted set, score = due or
/// hold end in ms), lease (job → token), try (job → attempts leased). One hash tag, so a Cluster
/// keeps them in one slot.
const MAIL_HOLD: &str = r#"
-- KEYS: due, lease, try   ARGV: hold ms, token, jobs...
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[2])
  redis.call('HSET', KEYS[3], ARGV[i], 1)
end
return 1
"#;

const MAIL_LEASE: &str = r#"
-- KEYS: due, lease, try   ARGV: limit, hold ms, tokens...   Returns id, token, attempt per job.
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for i, id in ipairs(ids) do
  local token = ARGV[2 + i]
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
  redis.call('HSET', KEYS[2], id, token)
  local n = redis.call('HINCRBY', KEYS[3], id, 1)
  table.insert(out, id)
  table.insert(out, token)
  table.insert(out, tostring(n))
end
return out
"#;

const MAIL_SETTLE: &str = r#"
-- KEYS: due, lease, try   ARGV: job, token, delay ms ('' = done)   Returns 1 if the lease held.
redis.replicate_commands()
local id = ARGV[1]
if redis.call('HGET', KEYS[2], id) ~= ARGV[2] then return 0 end
if not redis.call('ZSCORE', KEYS[1], id) then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  return 1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
redis.call('HDEL', KEYS[2], id)
return 1
"#;

impl RedisStore {
    /// Settles a leased outbox entry (`done`, `retry` after `delay`, or `fail`).
    async fn settle(
        &self,
        id: &str,
        lease: &str,
        action: &str,
        delay: Duration,
        error: &str,
        keep: usize,
    ) -> Result<bool, StoreError> {
        static SETTLE: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(OUTBOX_SETTLE));
        let keys = [
            "due", "ev", "try", "lease", "err", "failed", "fev", "ftry", "ferr",
        ]
        .map(|k| self.outbox_key(k));
        let ms = delay.as_millis() as u64;
        let held: i64 = self
            .run(|mut c| async move {
                let mut inv = SETTLE.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(id)
                    .arg(lease)
                    .arg(action)
                    .arg(ms)
                    .arg(error)
                    .arg(keep);
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(held == 1)
    }
}

/// Logs what [`Outage`] says about Redis, as seen by the link-change follower.
fn say_redis(say: Say, error: &str) {
    match say {
        Say::Nothing => {}
        Say::Down => tracing::warn!(
            error,
            "redis unreachable: link changes from other instances are not followed, requests that need redis fail closed (503); retrying"
        ),
        Say::StillDown { down_for, failures } => tracing::warn!(
            error,
            down_for_seconds = down_for.as_secs(),
            failures,
            "redis still unreachable; retrying"
        ),
        Say::Back { down_for, failures } => tracing::info!(
            down_for_ms = down_for.as_millis() as u64,
            failures,
            "redis reachable again"
        ),
    }
}
