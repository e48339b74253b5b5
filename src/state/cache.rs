//! In-process link cache: a warm unlimited link is served with no store round trip.
//!
//! Entries live for a bounded time (`state.cache_ttl_seconds`) and are dropped at once when the
//! admin API changes the link in this process, so revocation applies to the next request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::model::link::{Link, LinkId};

pub struct LinkCache {
    ttl: Duration,
    capacity: usize,
    map: RwLock<HashMap<LinkId, (Arc<Link>, Instant)>>,
}

impl LinkCache {
    pub fn new(ttl: Duration, capacity: usize) -> LinkCache {
        LinkCache {
            ttl,
            capacity: capacity.max(1),
            map: RwLock::new(HashMap::new()),
        }
    }

    /// The cached link, if present and fresh.
    pub fn get(&self, id: &LinkId) -> Option<Arc<Link>> {
        let map = self.map.read();
        let (link, at) = map.get(id)?;
        (at.elapsed() < self.ttl).then(|| link.clone())
    }

    pub fn put(&self, link: Arc<Link>) {
        let mut map = self.map.write();
        if map.len() >= self.capacity && !map.contains_key(&link.id) {
            let ttl = self.ttl;
            map.retain(|_, (_, at)| at.elapsed() < ttl);
            if map.len() >= self.capacity {
                // Bounded memory beats a perfect hit rate: start over.
                map.clear();
            }
        }
        map.insert(link.id, (link, Instant::now()));
    }

    pub fn clear(&self) {
        self.map.write().clear();
    }

    pub fn invalidate(&self, id: &LinkId) {
        self.map.write().remove(id);
    }
}
