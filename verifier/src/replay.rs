//! The replay store: (caller DID, nonce) pairs, each kept until its signature's window
//! closes. Entries go in only after the request signature verified, so only authenticated
//! callers can fill it; when it is full of live entries the request is refused with 503
//! rather than forgetting one (forgetting would let that request be replayed).

use std::collections::HashMap;
use std::sync::Mutex;

use civitas_core::problem;

use crate::denial::Denial;

/// Shards, so that concurrent requests rarely wait on one lock.
const SHARDS: usize = 16;

#[derive(Debug, Default)]
struct Shard {
    /// (DID, nonce) → unix second after which the entry may go.
    entries: HashMap<(Box<str>, Box<str>), i64>,
    /// When expired entries were last swept.
    swept: i64,
}

/// Bounded replay store.
#[derive(Debug)]
pub(crate) struct ReplayCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl ReplayCache {
    /// A store of at most `capacity` live entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, did: &str, nonce: &str) -> &Mutex<Shard> {
        // FNV-1a over the nonce and DID: cheap, and the nonce is random anyway.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in nonce.bytes().chain(did.bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        &self.shards[usize::try_from(h % SHARDS as u64).unwrap_or(0)]
    }

    /// Records (did, nonce) until `until` (unix seconds), refusing a pair seen before.
    pub(crate) fn insert(
        &self,
        did: &str,
        nonce: &str,
        until: i64,
        now: i64,
    ) -> Result<(), Denial> {
        let mut shard = self
            .shard(did, nonce)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let key = (Box::from(did), Box::from(nonce));
        if let Some(expiry) = shard.entries.get(&key)
            && *expiry >= now
        {
            return Err(Denial::new(
                problem::REPLAYED_REQUEST,
                "this request (signer and nonce) was seen before; sign each request afresh",
            ));
        }
        if shard.entries.len() >= self.per_shard && shard.swept < now {
            shard.swept = now;
            shard.entries.retain(|_, expiry| *expiry >= now);
        }
        if shard.entries.len() >= self.per_shard {
            return Err(Denial::new(
                problem::OVERLOADED,
                "too many recent requests to remember; try again shortly",
            ));
        }
        shard.entries.insert(key, until.max(now));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_refused_until_its_window_closes() {
        let cache = ReplayCache::new(100);
        assert!(cache.insert("did:civ:a", "n1", 110, 100).is_ok());
        let again = cache.insert("did:civ:a", "n1", 110, 105);
        assert_eq!(again.map_err(|d| d.kind()), Err(problem::REPLAYED_REQUEST));
        assert!(cache.insert("did:civ:b", "n1", 110, 105).is_ok());
        // After the window the signature itself is refused as expired; the entry may go.
        assert!(cache.insert("did:civ:a", "n1", 130, 111).is_ok());
    }

    #[test]
    fn a_full_store_refuses_rather_than_forgets() {
        let cache = ReplayCache::new(SHARDS);
        let mut refused = 0;
        for i in 0..SHARDS * 4 {
            if cache
                .insert("did:civ:a", &format!("n{i}"), 200, 100)
                .is_err()
            {
                refused += 1;
            }
        }
        assert!(refused > 0);
        // Every accepted pair is still refused as a replay.
        for i in 0..SHARDS * 4 {
            if let Err(d) = cache.insert("did:civ:a", &format!("n{i}"), 200, 100) {
                assert!(d.kind() == problem::REPLAYED_REQUEST || d.kind() == problem::OVERLOADED);
            }
        }
        // Once the entries expire they are swept and room is made.
        assert!(cache.insert("did:civ:a", "fresh", 400, 300).is_ok());
    }
}
