//! Each trust's subscriptions kept in memory by this replica, so that CheckEligibility and
//! GetSchoolSubscriptions are answered without a query once a trust has been read.
//!
//! Freshness: a write made through this server drops the trust's copy when it commits. A
//! write made through another replica is noticed by a background check that compares the
//! revision of every copy with the database's, in one query, every `refresh`; until then this
//! replica may answer from the copy it has. When that check fails every copy is dropped, so
//! answers never lag by more than `refresh` plus one check. A `refresh` of zero turns the
//! copies off: every call reads the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use portal_runtime::config::parse_duration;
use portal_runtime::shutdown::Shutdown;
use portal_runtime::vocab::{IdMap, TrustId};
use tokio::sync::OnceCell;

use crate::domain::TrustView;
use crate::error::Result;
use crate::store::Store;

/// Flags and PORTAL_* env vars of the in-memory subscriptions (clap).
#[derive(Debug, Clone, clap::Args)]
pub struct ViewArgs {
    /// How often the in-memory subscriptions of each trust are checked against the database
    /// for writes made through other replicas; `0s` keeps no copy at all.
    #[arg(
        long,
        env = "PORTAL_ELIGIBILITY_REFRESH",
        default_value = "1s",
        value_parser = parse_duration
    )]
    pub eligibility_refresh: Duration,
    /// Most subscriptions kept in memory, all trusts together (about 300 bytes each); the
    /// trusts used least recently are dropped first.
    #[arg(long, env = "PORTAL_ELIGIBILITY_CACHE_SIZE", default_value_t = 50_000)]
    pub eligibility_cache_size: usize,
}

impl Default for ViewArgs {
    fn default() -> Self {
        Self {
            eligibility_refresh: Duration::from_secs(1),
            eligibility_cache_size: 50_000,
        }
    }
}

/// A trust's place in memory; loaded once, by the first caller that needs it.
#[derive(Debug, Default)]
struct Slot {
    view: OnceCell<Arc<TrustView>>,
    /// Value of `Views::ticks` when last used (least recently used is dropped first).
    last_used: AtomicU64,
}

/// The in-memory subscriptions of the trusts recently asked about, by trust id value.
pub struct Views {
    store: Arc<dyn Store>,
    refresh: Duration,
    limit: usize,
    slots: Mutex<IdMap<Arc<Slot>>>,
    ticks: AtomicU64,
}

impl Views {
    pub fn new(store: Arc<dyn Store>, args: &ViewArgs) -> Self {
        Self {
            store,
            refresh: args.eligibility_refresh,
            limit: args.eligibility_cache_size,
            slots: Mutex::new(IdMap::default()),
            ticks: AtomicU64::new(0),
        }
    }

    fn enabled(&self) -> bool {
        !self.refresh.is_zero() && self.limit > 0
    }

    fn lock(&self) -> MutexGuard<'_, IdMap<Arc<Slot>>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The trust's subscriptions: the copy in memory, or one read of the database.
    pub async fn trust(&self, trust_id: TrustId) -> Result<Arc<TrustView>> {
        let load = || async {
            let snapshot = self.store.trust_snapshot(trust_id).await?;
            Ok(Arc::new(TrustView::new(trust_id, snapshot)))
        };
        if !self.enabled() {
            return load().await;
        }
        let slot = self.lock().entry(trust_id.as_u128()).or_default().clone();
        slot.last_used.store(
            self.ticks.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        let mut loaded = false;
        let view = slot
            .view
            .get_or_try_init(|| {
                loaded = true;
                load()
            })
            .await?
            .clone();
        if loaded {
            self.enforce_limit(trust_id);
        }
        Ok(view)
    }

    /// Drops the trust's copy: called after every write to one of its subscriptions.
    pub fn invalidate(&self, trust_id: TrustId) {
        self.lock().remove(&trust_id.as_u128());
    }

    /// Drops the least recently used copies (never `keep`) until the limit holds.
    fn enforce_limit(&self, keep: TrustId) {
        let mut slots = self.lock();
        let size = |slot: &Slot| slot.view.get().map_or(0, |view| view.len());
        let mut total: usize = slots.values().map(|slot| size(slot)).sum();
        if total <= self.limit {
            return;
        }
        let mut by_age: Vec<(u64, u128, usize)> = slots
            .iter()
            .filter(|(id, _)| **id != keep.as_u128())
            .map(|(id, slot)| (slot.last_used.load(Ordering::Relaxed), *id, size(slot)))
            .collect();
        by_age.sort_unstable();
        for (_, id, len) in by_age {
            if total <= self.limit {
                break;
            }
            slots.remove(&id);
            total -= len;
        }
    }

    /// Compares every copy's revision with the database's and drops the stale ones.
    pub async fn drop_stale(&self) -> Result<usize> {
        let loaded: Vec<(TrustId, Arc<Slot>, i64)> = self
            .lock()
            .values()
            .filter_map(|slot| {
                let view = slot.view.get()?;
                Some((view.trust_id, slot.clone(), view.revision))
            })
            .collect();
        if loaded.is_empty() {
            return Ok(0);
        }
        let ids: Vec<TrustId> = loaded.iter().map(|(id, _, _)| *id).collect();
        let current: HashMap<TrustId, i64> = self
            .store
            .trust_revisions(&ids)
            .await?
            .into_iter()
            .collect();
        let mut slots = self.lock();
        let mut dropped = 0;
        for (id, slot, revision) in loaded {
            let now = current.get(&id).copied().unwrap_or(0);
            // Only the copy that was compared: a newer one loaded meanwhile stays.
            if now != revision
                && slots
                    .get(&id.as_u128())
                    .is_some_and(|s| Arc::ptr_eq(s, &slot))
            {
                slots.remove(&id.as_u128());
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Drops every copy.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Runs [`Self::drop_stale`] every `refresh` until `shutdown`.
    pub async fn keep_fresh(self: Arc<Self>, shutdown: Shutdown) {
        if !self.enabled() {
            return;
        }
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                () = tokio::time::sleep(self.refresh) => {}
            }
            match self.drop_stale().await {
                Ok(0) => {}
                Ok(dropped) => tracing::debug!(dropped, "stale trust subscriptions dropped"),
                Err(error) => {
                    tracing::warn!(%error, "cannot check the trusts' subscription revisions; \
                        dropping every in-memory copy");
                    self.clear();
                }
            }
        }
    }
}
