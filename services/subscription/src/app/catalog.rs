//! The catalogue use cases, answered from a copy kept in memory: the catalogue only changes
//! with a migration, and every eligibility call needs it.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, Utc};
use portal_runtime::SharedClock;
use portal_runtime::vocab::ProductKey;

use super::App;
use crate::domain::{Catalog, Product, ProductPage, RoleEquivalence, RoleSelection};
use crate::error::{Error, Result};
use crate::store::Store;

/// How long the in-memory catalogue is used before it is read again.
const REFRESH_AFTER: Duration = Duration::seconds(60);

/// The catalogue, read from the database at most once a minute.
pub(super) struct CatalogCache {
    store: Arc<dyn Store>,
    clock: SharedClock,
    current: RwLock<Option<(DateTime<Utc>, Arc<Catalog>)>>,
}

impl CatalogCache {
    pub(super) fn new(store: Arc<dyn Store>, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            current: RwLock::new(None),
        }
    }

    async fn get(&self) -> Result<Arc<Catalog>> {
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

impl App {
    /// The catalogue, which requests are checked against. Any caller with a token may read it.
    pub async fn catalog(&self) -> Result<Arc<Catalog>> {
        self.catalog.get().await
    }

    pub async fn list_products(&self, page: &ProductPage) -> Result<Vec<Product>> {
        Ok(self.catalog().await?.page(page))
    }

    pub async fn get_product(&self, key: &ProductKey) -> Result<Product> {
        let catalog = self.catalog().await?;
        let product = catalog.product(key.as_str());
        product
            .cloned()
            .ok_or_else(|| Error::ProductNotFound(key.clone()))
    }

    /// The equivalences of a product, or of one of its roles.
    pub async fn role_equivalences(&self, asked: &RoleSelection) -> Result<Vec<RoleEquivalence>> {
        let catalog = self.catalog().await?;
        let product = catalog
            .product(asked.product.as_str())
            .ok_or_else(|| Error::ProductNotFound(asked.product.clone()))?;
        if let Some(role) = &asked.role
            && product.role(role.as_str()).is_none()
        {
            return Err(Error::RoleNotDefined {
                product: product.key.clone(),
                role: role.clone(),
            });
        }
        Ok(catalog
            .equivalences_of(
                product.key.as_str(),
                asked.role.as_ref().map(|r| r.as_str()),
            )
            .into_iter()
            .cloned()
            .collect())
    }
}
