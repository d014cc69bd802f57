//! Trusts and schools: written by the operator, read by services and by the trust's people.

use portal_runtime::auth::Principal;
use portal_runtime::vocab::{SchoolId, TrustId};

use super::{Admitted, App, DirectoryReads, DirectoryWrites, ServiceCall};
use crate::domain::{NewSchool, NewTrust, School, SchoolQuery, Trust};
use crate::error::{Error, Result};

impl App {
    /// Creates a trust.
    pub async fn create_trust(
        &self,
        _: &Admitted<DirectoryWrites>,
        new: NewTrust,
    ) -> Result<Trust> {
        self.store
            .create_trust(TrustId::generate(), new, self.now())
            .await
    }

    pub async fn get_trust(&self, caller: &Principal, trust_id: TrustId) -> Result<Trust> {
        self.require_trust_visible(caller, trust_id).await?;
        self.require_trust(trust_id).await
    }

    /// Creates a school.
    pub async fn create_school(
        &self,
        _: &Admitted<DirectoryWrites>,
        new: NewSchool,
    ) -> Result<School> {
        self.store
            .create_school(SchoolId::generate(), new, self.now())
            .await
    }

    /// A school, visible to whoever may see its trust; to anyone else it does not exist.
    pub async fn get_school(&self, caller: &Principal, school_id: SchoolId) -> Result<School> {
        // A service that may not read the directory is refused before the school is read.
        if let Principal::Service { .. } = caller {
            caller.require_service(DirectoryReads::CALLERS)?;
        }
        let school = self
            .store
            .get_school(school_id)
            .await?
            .ok_or(Error::SchoolNotFound(school_id))?;
        self.require_trust_visible(caller, school.trust_id)
            .await
            .map_err(|_| Error::SchoolNotFound(school_id))?;
        Ok(school)
    }

    pub async fn list_schools(
        &self,
        caller: &Principal,
        query: &SchoolQuery,
    ) -> Result<Vec<School>> {
        self.require_trust_visible(caller, query.trust_id).await?;
        self.require_trust(query.trust_id).await?;
        self.store
            .list_schools(query.trust_id, query.after, query.limit)
            .await
    }
}
