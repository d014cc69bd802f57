//! The catalogue, read from the database and kept in memory: it only changes with a
//! migration, and every eligibility call needs it.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, Utc};
use portal_runtime::SharedClock;

use crate::domain::Catalog;
use crate::store::Store;

/// How long the in-memory catalogue is used before it is read again.
const REFRESH_AFTER: Duration = Duration::seconds(60);

pub struct CatalogCache {
    store: Arc<dyn Store>,
    clock: SharedClock,
    current: RwLock<Option<(DateTime<Utc>, Arc<Catalog>)>>,
}

impl CatalogCache {
    pub fn new(store: Arc<dyn Store>, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            current: RwLock::new(None),
        }
    }

    /// The catalogue, read from the database at most once a minute.
    pub async fn get(&self) -> Result<Arc<Catalog>, sqlx::Error> {
        let now = self.clock.now();
        if let Some((loaded, catalog)) = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            && now >= *loaded
            && now - *loaded < REFRESH_AFTER
        {
            return Ok(catalog.clone());
        }
        let catalog = Arc::new(self.store.load_catalog().await?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some((now, catalog.clone()));
        Ok(catalog)
    }
}
