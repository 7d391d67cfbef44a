//! The render cache: rendered objects by a digest of everything that determines them, bounded
//! by the total size of the cached objects and evicting the least recently used first. Objects
//! are kept as compact JSON and parsed again on a hit: as `serde_json::Value` trees (a B-tree
//! node per map) they took several times their text's size, for every app of a large
//! installation. Entries
//! expire after a time to live (Argo CD's repo cache expiration), since a render can depend on
//! more than its key: a chart dependency's version range, a plugin that reads the network.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferry_types::source::SourceType;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A cached render: how the source was rendered and its objects.
pub(crate) type Cached = (SourceType, Arc<Vec<Value>>);

/// A cache key: SHA-256 over the key material.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key([u8; 32]);

impl Key {
    /// Digest of `material` (serialized deterministically by the caller).
    pub(crate) fn of(material: &Value) -> Self {
        let bytes = serde_json::to_vec(material).expect("JSON values always serialize");
        Key(Sha256::digest(bytes).into())
    }
}

/// Counters for observing the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
    pub bytes: usize,
    pub evictions: u64,
}

pub(crate) struct RenderCache {
    max_bytes: usize,
    ttl: Duration,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Last-use tick → key, oldest first.
    by_age: BTreeMap<u64, Key>,
    tick: u64,
    bytes: usize,
}

struct Entry {
    source_type: SourceType,
    objects: Arc<[Box<[u8]>]>,
    bytes: usize,
    tick: u64,
    stored: Instant,
}

impl RenderCache {
    pub(crate) fn new(max_bytes: usize, ttl: Duration) -> Self {
        Self {
            max_bytes,
            ttl,
            inner: Mutex::new(Inner::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Cached> {
        let mut inner = self.inner.lock().expect("cache lock");
        inner.tick += 1;
        let tick = inner.tick;
        if inner
            .entries
            .get(key)
            .is_some_and(|entry| entry.stored.elapsed() > self.ttl)
        {
            let expired = inner.entries.remove(key).expect("just found");
            inner.by_age.remove(&expired.tick);
            inner.bytes -= expired.bytes;
        }
        let Some(entry) = inner.entries.get_mut(key) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let old = std::mem::replace(&mut entry.tick, tick);
        let (source_type, objects) = (entry.source_type, entry.objects.clone());
        inner.by_age.remove(&old);
        inner.by_age.insert(tick, key.clone());
        drop(inner);
        let parsed = objects
            .iter()
            .map(|bytes| serde_json::from_slice(bytes))
            .collect::<Result<Vec<Value>, _>>()
            .ok()?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some((source_type, Arc::new(parsed)))
    }

    /// Stores `objects`; an entry larger than the whole budget is not cached.
    pub(crate) fn put(&self, key: Key, value: Cached) {
        let Ok(objects) = value
            .1
            .iter()
            .map(|o| serde_json::to_vec(o).map(Vec::into_boxed_slice))
            .collect::<Result<Arc<[Box<[u8]>]>, _>>()
        else {
            return;
        };
        let bytes = objects.iter().map(|o| o.len()).sum::<usize>();
        if bytes > self.max_bytes {
            return;
        }
        let mut inner = self.inner.lock().expect("cache lock");
        inner.tick += 1;
        let tick = inner.tick;
        if let Some(old) = inner.entries.remove(&key) {
            inner.by_age.remove(&old.tick);
            inner.bytes -= old.bytes;
        }
        while inner.bytes + bytes > self.max_bytes {
            let Some((_, oldest)) = inner.by_age.pop_first() else {
                break;
            };
            let evicted = inner.entries.remove(&oldest).expect("indexes agree");
            inner.bytes -= evicted.bytes;
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        inner.bytes += bytes;
        inner.by_age.insert(tick, key.clone());
        inner.entries.insert(
            key,
            Entry {
                source_type: value.0,
                objects,
                bytes,
                tick,
                stored: Instant::now(),
            },
        );
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let inner = self.inner.lock().expect("cache lock");
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: inner.entries.len(),
            bytes: inner.bytes,
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objs(n: usize) -> Cached {
        // Each object serializes to 8 + n bytes: {"d":"xxx"}
        (
            SourceType::Directory,
            Arc::new(vec![json!({"d": "x".repeat(n)})]),
        )
    }

    #[test]
    fn hit_and_miss_are_counted() {
        let cache = RenderCache::new(1000, Duration::from_secs(60));
        let k = Key::of(&json!({"sha": "a"}));
        assert!(cache.get(&k).is_none());
        cache.put(k.clone(), objs(10));
        assert_eq!(cache.get(&k).unwrap().1.len(), 1);
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.entries, s.bytes), (1, 1, 1, 18));
    }

    #[test]
    fn least_recently_used_is_evicted_by_bytes() {
        let cache = RenderCache::new(100, Duration::from_secs(60));
        let keys: Vec<Key> = (0..3).map(|i| Key::of(&json!(i))).collect();
        cache.put(keys[0].clone(), objs(30)); // 38 bytes
        cache.put(keys[1].clone(), objs(30)); // 76
        cache.get(&keys[0]); // 0 is now the most recent
        cache.put(keys[2].clone(), objs(30)); // would be 114: evict 1
        assert!(cache.get(&keys[1]).is_none());
        assert!(cache.get(&keys[0]).is_some());
        assert!(cache.get(&keys[2]).is_some());
        let s = cache.stats();
        assert_eq!((s.entries, s.bytes, s.evictions), (2, 76, 1));
        // Too large for the whole budget: not cached, nothing evicted.
        cache.put(Key::of(&json!("big")), objs(200));
        assert_eq!(cache.stats().entries, 2);
    }

    #[test]
    fn expired_entries_are_misses_and_free_their_bytes() {
        let cache = RenderCache::new(1000, Duration::from_millis(20));
        let k = Key::of(&json!({"sha": "a"}));
        cache.put(k.clone(), objs(10));
        assert!(cache.get(&k).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get(&k).is_none());
        let s = cache.stats();
        assert_eq!((s.entries, s.bytes), (0, 0));
    }

    #[test]
    fn keys_differ_with_material() {
        assert_ne!(Key::of(&json!({"a": 1})), Key::of(&json!({"a": 2})));
        assert_eq!(Key::of(&json!({"a": 1})), Key::of(&json!({"a": 1})));
    }
}
