//! The Redis store: shared, atomic link state for any number of gateway instances.
//!
//! Keys (prefix `lg` by default) all carry the link id as a hash tag, so one link's keys share a
//! Cluster hash slot and every script touches one slot:
//! - `lg:link:{id}`: the link record (JSON);
//! - `lg:used:{id}:GEN`: downloads used in generation GEN (reserved slots included);
//! - `lg:res:{id}:GEN`: reservations in flight, a sorted set of ticket → expiry (ms);
//! - `lg:grant:{id}:GEN:CLIENT`: a client's resume grant, expiring with the grant window;
//! - `lg:events:{id}`: the link's audit chain (a list of event JSON, appended by script);
//! - `lg:idx:NAME`: listing indexes (sorted sets ordered by member, newest first). They are written
//!   before the link, so a link is never missing from them.
//!
//! Counting is one server-side script (EVALSHA, loaded again on NOSCRIPT by the client): it sweeps
//! reservations whose gateway died, checks the link's generation and state, and takes a slot only
//! while `used < max`. Changes are compare-and-set scripts followed by a PUBLISH on
//! `lg:changes`, which every gateway follows to drop its cached copy.
//!
//! Every call is bounded by `state.redis_timeout_ms`; connections reconnect by themselves.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};
use tokio::sync::OnceCell;

use super::{
    index_entries, list_by_index, Change, LinkStore, ListPage, ListQuery, OnChange, Reservation,
    ReserveRequest, StoreError, Ticket,
};
use crate::audit::{seal, Draft, Event};
use crate::link::{Link, LinkId};

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
    /// How long a reservation lives without being renewed.
    pub reservation_ttl: Duration,
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

const RESERVE: &str = r#"
-- KEYS: link, used, res, grant   ARGV: gen, max, now_ms, ttl_ms, ticket, continuation, window_ms
local raw = redis.call('GET', KEYS[1])
if not raw then return {-2, 0} end
local link = cjson.decode(raw)
if tostring(link['generation']) ~= ARGV[1] or link['state'] ~= 'active' then return {-2, 0} end
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then
  -- Parallel ranges now share this download: the grant is marked so it is never given back.
  redis.call('SET', KEYS[4], '2', 'KEEPTTL')
  return {-1, 0}
end
local now = tonumber(ARGV[3])
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
if #dead > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  local left = redis.call('DECRBY', KEYS[2], #dead)
  if left < 0 then redis.call('SET', KEYS[2], 0) end
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used >= tonumber(ARGV[2]) then return {0, used} end
used = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[5])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[4]) * 2)
redis.call('SET', KEYS[4], '1', 'PX', tonumber(ARGV[7]))
return {1, used}
"#;

const RELEASE: &str = r#"
-- KEYS: used, res, grant   ARGV: ticket
if redis.call('GET', KEYS[3]) == '2' then
  -- Other ranges of this download rode on the slot: it stays counted.
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  local left = redis.call('DECR', KEYS[1])
  if left < 0 then redis.call('SET', KEYS[1], 0) end
end
redis.call('DEL', KEYS[3])
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

const APPEND_EVENTS: &str = r#"
-- KEYS: events   ARGV: expected tail hash ('' for an empty chain), prune-before (RFC 3339 UTC), events...
local tail = redis.call('LINDEX', KEYS[1], -1)
local tail_hash = ''
if tail then tail_hash = cjson.decode(tail)['hash'] end
if tail_hash ~= ARGV[1] then return 0 end
for i = 3, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
if ARGV[2] ~= '' then
  for _ = 1, 1000 do
    local head = redis.call('LINDEX', KEYS[1], 0)
    if not head or cjson.decode(head)['at'] >= ARGV[2] then break end
    redis.call('LPOP', KEYS[1])
  end
end
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
    reserve: Script,
    release: Script,
    create: Script,
    cas: Script,
    append: Script,
    hit: Script,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
            reserve: Script::new(RESERVE),
            release: Script::new(RELEASE),
            create: Script::new(CREATE),
            cas: Script::new(COMPARE_AND_SET),
            append: Script::new(APPEND_EVENTS),
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

    fn key(&self, kind: &str, id: &LinkId) -> String {
        format!("{}:{kind}:{{{id}}}", self.opts.prefix)
    }

    fn gen_key(&self, kind: &str, id: &LinkId, generation: u64) -> String {
        format!("{}:{kind}:{{{id}}}:{generation}", self.opts.prefix)
    }

    fn grant_key(&self, id: &LinkId, generation: u64, client: &str) -> String {
        format!("{}:grant:{{{id}}}:{generation}:{client}", self.opts.prefix)
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

fn decode(bytes: &[u8]) -> Result<Link, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("link record: {e}")))
}

fn encode(link: &Link) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(link).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl LinkStore for RedisStore {
    async fn create(&self, link: &Link) -> Result<(), StoreError> {
        let key = self.key("link", &link.id);
        let json = encode(link)?;
        // Index entries first: a crash in between leaves an entry without a link (skipped when
        // listing), never a link that cannot be listed.
        // Each index is its own key (and Cluster slot): one command each, sent together.
        let (names, member) = index_entries(link);
        let writes = names.into_iter().map(|name| {
            let (key, member) = (format!("{}:idx:{name}", self.opts.prefix), member.clone());
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
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::Exists(link.id))
        }
    }

    async fn get(&self, id: LinkId) -> Result<Option<Link>, StoreError> {
        let key = self.key("link", &id);
        let raw: Option<Vec<u8>> = self
            .run(|mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
            .await?;
        raw.map(|b| decode(&b)).transpose()
    }

    async fn update(&self, id: LinkId, change: Change) -> Result<Link, StoreError> {
        let key = self.key("link", &id);
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
            let mut link = decode(&raw)?;
            change(&mut link)?;
            let new = encode(&link)?;
            let k = key.clone();
            let swapped: i64 =
                self.run(|mut c| async move {
                    self.cas.key(k).arg(raw).arg(new).invoke_async(&mut c).await
                })
                .await?;
            match swapped {
                1 => {
                    self.publish(id).await;
                    return Ok(link);
                }
                -1 => return Err(StoreError::NotFound(id)),
                _ => continue, // changed meanwhile: read again
            }
        }
        Err(StoreError::Unavailable(format!(
            "link {id} kept changing; gave up"
        )))
    }

    async fn reserve(&self, req: &ReserveRequest) -> Result<Reservation, StoreError> {
        let nonce: u64 = rand::random();
        let keys = [
            self.key("link", &req.id),
            self.gen_key("used", &req.id, req.generation),
            self.gen_key("res", &req.id, req.generation),
            self.grant_key(&req.id, req.generation, &req.client),
        ];
        let args = (
            req.generation,
            req.max,
            now_ms(),
            self.opts.reservation_ttl.as_millis() as u64,
            nonce,
            if req.continuation { "1" } else { "0" },
            req.window.as_millis().max(1) as u64,
        );
        let (code, used): (i64, u64) = self
            .run(|mut c| async move {
                let mut inv = self.reserve.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(args.0)
                    .arg(args.1)
                    .arg(args.2)
                    .arg(args.3)
                    .arg(args.4)
                    .arg(args.5)
                    .arg(args.6);
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(match code {
            1 => Reservation::Granted {
                used,
                ticket: Ticket {
                    id: req.id,
                    generation: req.generation,
                    nonce,
                },
            },
            0 => Reservation::Exhausted,
            -1 => Reservation::Covered,
            _ => Reservation::Stale,
        })
    }

    async fn commit(&self, tickets: &[Ticket]) -> Result<(), StoreError> {
        if tickets.is_empty() {
            return Ok(());
        }
        if let RedisTarget::Single(_) = self.opts.target {
            // One server: every commit of the batch in one round trip.
            let mut pipe = redis::pipe();
            for t in tickets {
                pipe.cmd("ZREM")
                    .arg(self.gen_key("res", &t.id, t.generation))
                    .arg(t.nonce)
                    .ignore();
            }
            return self
                .run(|mut c| async move { pipe.query_async::<()>(&mut c).await })
                .await;
        }
        // In a Cluster, tickets of different links live in different slots: one command each,
        // sent together over the multiplexed connection.
        let removals = tickets.iter().map(|t| {
            let key = self.gen_key("res", &t.id, t.generation);
            self.run(move |mut c| async move {
                redis::cmd("ZREM")
                    .arg(key)
                    .arg(t.nonce)
                    .query_async::<i64>(&mut c)
                    .await
            })
        });
        futures_util::future::join_all(removals)
            .await
            .into_iter()
            .try_for_each(|r| r.map(|_| ()))
    }

    async fn release(&self, ticket: Ticket, client: &str) -> Result<(), StoreError> {
        let keys = [
            self.gen_key("used", &ticket.id, ticket.generation),
            self.gen_key("res", &ticket.id, ticket.generation),
            self.grant_key(&ticket.id, ticket.generation, client),
        ];
        self.run(|mut c| async move {
            self.release
                .key(&keys[0])
                .key(&keys[1])
                .key(&keys[2])
                .arg(ticket.nonce)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await
        .map(|_| ())
    }

    async fn keep_alive(&self, tickets: &[Ticket]) -> Result<(), StoreError> {
        if tickets.is_empty() {
            return Ok(());
        }
        let ttl = self.opts.reservation_ttl.as_millis() as u64;
        let until = now_ms() + ttl;
        let renewals = tickets.iter().map(|t| {
            let key = self.gen_key("res", &t.id, t.generation);
            // Both commands touch one key, so this pipeline stays in one slot.
            let mut pipe = redis::pipe();
            pipe.cmd("ZADD")
                .arg(&key)
                .arg("XX")
                .arg(until)
                .arg(t.nonce)
                .ignore();
            pipe.cmd("PEXPIRE").arg(&key).arg(ttl * 2).ignore();
            self.run(move |mut c| async move { pipe.query_async::<()>(&mut c).await })
        });
        futures_util::future::join_all(renewals)
            .await
            .into_iter()
            .collect()
    }

    async fn add_usage(&self, id: LinkId, generation: u64, n: u64) -> Result<(), StoreError> {
        let key = self.gen_key("used", &id, generation);
        self.run(|mut c| async move {
            redis::cmd("INCRBY")
                .arg(key)
                .arg(n)
                .query_async::<i64>(&mut c)
                .await
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
            let key = format!("{}:idx:{index}", self.opts.prefix);
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
        })
        .await
    }

    async fn append_events(
        &self,
        id: LinkId,
        drafts: &[Draft],
        retention: Option<Duration>,
    ) -> Result<(), StoreError> {
        let key = self.key("events", &id);
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
            let json: Vec<Vec<u8>> = seal(id, tail.as_ref(), drafts)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
                .into_iter()
                .map(|(_, json)| json)
                .collect();
            let expected = tail.map(|t| t.hash).unwrap_or_default();
            let (k, cutoff) = (key.clone(), cutoff.clone());
            let appended: i64 = self
                .run(|mut c| async move {
                    let mut inv = self.append.prepare_invoke();
                    inv.key(k).arg(expected).arg(cutoff);
                    for j in &json {
                        inv.arg(j.as_slice());
                    }
                    inv.invoke_async(&mut c).await
                })
                .await?;
            if appended == 1 {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(format!(
            "events of link {id} kept changing; gave up"
        )))
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
        for client in clients.iter().cycle() {
            match tokio::time::timeout(
                self.opts.timeout.max(Duration::from_secs(1)),
                client.get_async_pubsub(),
            )
            .await
            {
                Ok(Ok(mut pubsub)) => {
                    if let Err(e) = pubsub.subscribe(&channel).await {
                        tracing::warn!(error = %e, "could not subscribe to link changes");
                    } else {
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
                        tracing::warn!("lost the link-change subscription; reconnecting");
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot reach redis to follow link changes")
                }
                Err(_) => tracing::warn!("timed out connecting to redis to follow link changes"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
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
}
