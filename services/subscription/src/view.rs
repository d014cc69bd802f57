//! The eligibility view: each trust's subscriptions kept in memory, so that CheckEligibility
//! and GetSchoolSubscriptions are answered without a query once a trust has been read.
//!
//! Freshness: a write made through this server drops the trust's copy when it commits. A
//! write made through another replica is noticed by a background check that compares the
//! revision of every copy with the database's, in one query, every `refresh`; until then this
//! replica may answer from the copy it has. When that check fails every copy is dropped, so
//! answers never lag by more than `refresh` plus one check. A `refresh` of zero turns the
//! view off: every call reads the database.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portal_runtime::config::parse_duration;
use portal_runtime::server::Shutdown;
use portal_runtime::types::{IdMap, id_key};
use tokio::sync::OnceCell;

use crate::domain::Subscription;
use crate::store::{Store, TrustSnapshot};

/// Flags and PORTAL_* env vars of the eligibility view (clap).
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

/// One trust's subscriptions, as of one revision, indexed for lookups by organisation.
#[derive(Debug)]
pub struct TrustView {
    pub trust_id: String,
    pub revision: i64,
    /// Ordered by (organisation, product, start time, id).
    subscriptions: Vec<Subscription>,
    /// Organisation id (its [`id_key`]) -> its slice of `subscriptions`.
    by_organization: IdMap<Range<usize>>,
}

impl TrustView {
    pub fn new(trust_id: &str, snapshot: TrustSnapshot) -> Self {
        let mut subscriptions = snapshot.subscriptions;
        subscriptions.retain(|s| s.trust_id == trust_id);
        subscriptions.sort_unstable_by(|a, b| {
            (&a.organization_id, &a.product_key, a.start_time, &a.id).cmp(&(
                &b.organization_id,
                &b.product_key,
                b.start_time,
                &b.id,
            ))
        });
        let mut by_organization: IdMap<Range<usize>> = IdMap::default();
        let mut start = 0;
        for end in 1..=subscriptions.len() {
            if end == subscriptions.len()
                || subscriptions[end].organization_id != subscriptions[start].organization_id
            {
                by_organization.insert(id_key(&subscriptions[start].organization_id), start..end);
                start = end;
            }
        }
        Self {
            trust_id: trust_id.to_string(),
            revision: snapshot.revision,
            subscriptions,
            by_organization,
        }
    }

    /// Every subscription of an organisation of the trust, by product then start time.
    pub fn of_organization(&self, organization_id: &str) -> &[Subscription] {
        self.of_key(id_key(organization_id))
    }

    /// [`Self::of_organization`] by the organisation's [`id_key`].
    pub fn of_key(&self, key: u128) -> &[Subscription] {
        self.by_organization
            .get(&key)
            .map_or(&[], |range| &self.subscriptions[range.clone()])
    }

    /// True when the organisation is registered with this trust: it has a subscription of
    /// the trust (the trust itself, or else one of its schools). Organisations never change
    /// trust or kind.
    pub fn knows(&self, organization_id: &str) -> bool {
        self.knows_key(id_key(organization_id))
    }

    /// [`Self::knows`] by the organisation's [`id_key`].
    pub fn knows_key(&self, key: u128) -> bool {
        self.by_organization.contains_key(&key)
    }

    pub fn len(&self) -> usize {
        self.subscriptions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subscriptions.is_empty()
    }
}

/// A trust's place in the view; loaded once, by the first caller that needs it.
#[derive(Debug, Default)]
struct Slot {
    view: OnceCell<Arc<TrustView>>,
    /// Value of `Views::ticks` when last used (least recently used is dropped first).
    last_used: AtomicU64,
}

/// The in-memory subscriptions of the trusts recently asked about.
pub struct Views {
    store: Arc<dyn Store>,
    refresh: Duration,
    limit: usize,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    ticks: AtomicU64,
}

impl Views {
    pub fn new(store: Arc<dyn Store>, args: &ViewArgs) -> Self {
        Self {
            store,
            refresh: args.eligibility_refresh,
            limit: args.eligibility_cache_size,
            slots: Mutex::new(HashMap::new()),
            ticks: AtomicU64::new(0),
        }
    }

    fn enabled(&self) -> bool {
        !self.refresh.is_zero() && self.limit > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The trust's subscriptions: the copy in memory, or one read of the database.
    pub async fn trust(&self, trust_id: &str) -> Result<Arc<TrustView>, sqlx::Error> {
        let load = || async {
            let snapshot = self.store.trust_snapshot(trust_id).await?;
            Ok::<_, sqlx::Error>(Arc::new(TrustView::new(trust_id, snapshot)))
        };
        if !self.enabled() {
            return load().await;
        }
        let slot = self.lock().entry(trust_id.to_string()).or_default().clone();
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
    pub fn invalidate(&self, trust_id: &str) {
        self.lock().remove(trust_id);
    }

    /// Drops the least recently used copies (never `keep`) until the limit holds.
    fn enforce_limit(&self, keep: &str) {
        let mut slots = self.lock();
        let size = |slot: &Slot| slot.view.get().map_or(0, |view| view.len());
        let mut total: usize = slots.values().map(|slot| size(slot)).sum();
        if total <= self.limit {
            return;
        }
        let mut by_age: Vec<(u64, String, usize)> = slots
            .iter()
            .filter(|(id, _)| id.as_str() != keep)
            .map(|(id, slot)| {
                (
                    slot.last_used.load(Ordering::Relaxed),
                    id.clone(),
                    size(slot),
                )
            })
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
    pub async fn drop_stale(&self) -> Result<usize, sqlx::Error> {
        let loaded: Vec<(String, Arc<Slot>, i64)> = self
            .lock()
            .iter()
            .filter_map(|(id, slot)| {
                let revision = slot.view.get()?.revision;
                Some((id.clone(), slot.clone(), revision))
            })
            .collect();
        if loaded.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = loaded.iter().map(|(id, _, _)| id.clone()).collect();
        let current: HashMap<String, i64> = self
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
            if now != revision && slots.get(&id).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                slots.remove(&id);
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
