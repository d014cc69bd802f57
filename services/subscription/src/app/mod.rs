//! The use cases: one method of [`App`] per RPC, authorisation first, then the work with the
//! store, identity and the state this replica keeps in memory (the catalogue, and each
//! trust's subscriptions for eligibility). Domain types in and out.

mod access;
mod catalog;
mod eligibility;
mod subscriptions;
pub mod views;

use std::sync::Arc;

use portal_runtime::SharedClock;

use crate::clients::Identity;
use crate::store::Store;

use access::Administrators;
pub use access::{Billing, SubscriptionReader};
use catalog::CatalogCache;
pub use views::{ViewArgs, Views};

/// What every use case works with.
pub struct App {
    store: Arc<dyn Store>,
    clock: SharedClock,
    /// Where administrators are checked; `None` admits service tokens only.
    identity: Option<Identity>,
    administrators: Administrators,
    catalog: CatalogCache,
    /// Each trust's subscriptions in memory, for eligibility.
    views: Arc<Views>,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        identity: Option<Identity>,
        clock: SharedClock,
        views: &ViewArgs,
    ) -> Self {
        Self {
            catalog: CatalogCache::new(store.clone(), clock.clone()),
            views: Arc::new(Views::new(store.clone(), views)),
            administrators: Administrators::default(),
            store,
            clock,
            identity,
        }
    }

    /// The trusts' subscriptions this replica keeps in memory (kept fresh by
    /// [`Views::keep_fresh`]).
    pub fn views(&self) -> &Arc<Views> {
        &self.views
    }
}
