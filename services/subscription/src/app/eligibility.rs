//! Rule R5 and a school's information icon: answered from the trust's subscriptions in
//! memory (one query when they are not), after the organisations asked about are checked.

use std::sync::Arc;

use super::App;
use crate::domain::access::ELIGIBILITY_READERS;
use crate::domain::eligibility::{misplaced, unvouched};
use crate::domain::{
    Answers, Catalog, Query, SchoolQuery, SchoolRef, SchoolSubscriptions, TrustView,
};
use crate::error::{Error, Result};
use portal_runtime::Principal;
use portal_runtime::vocab::TrustId;

impl App {
    /// Refuses a caller who may not ask about `trust_id`, before the rest of the request is
    /// read: what a refused caller sends costs no more than this check. The use cases check
    /// again (a positive answer is remembered, so that costs nothing more).
    pub async fn admit_eligibility(&self, principal: &Principal, trust_id: TrustId) -> Result<()> {
        self.require_reader(principal, ELIGIBILITY_READERS, trust_id)
            .await
    }

    /// Which (school, product) pairs of the trust hold a subscription in force: in memory
    /// when the trust was read recently, otherwise one query (two when schools it does not
    /// know are asked). `catalog` is the one the query was checked against.
    pub async fn check_eligibility(
        &self,
        principal: &Principal,
        query: Query,
        catalog: Arc<Catalog>,
    ) -> Result<Answers> {
        self.require_reader(principal, ELIGIBILITY_READERS, query.trust_id)
            .await?;
        let view = self.views.trust(query.trust_id).await?;
        self.check_placement(&view, &query.schools).await?;
        let at = query.at.unwrap_or_else(|| self.clock.now());
        Ok(Answers {
            view,
            catalog,
            query,
            at,
        })
    }

    /// Every subscription of each school asked, with whether it is in force.
    pub async fn school_subscriptions(
        &self,
        principal: &Principal,
        query: SchoolQuery,
    ) -> Result<SchoolSubscriptions> {
        self.require_reader(principal, ELIGIBILITY_READERS, query.trust_id)
            .await?;
        let view = self.views.trust(query.trust_id).await?;
        self.check_placement(&view, &query.schools).await?;
        Ok(SchoolSubscriptions {
            view,
            schools: query.schools,
            at: query.at.unwrap_or_else(|| self.clock.now()),
        })
    }

    /// Refuses schools known under another trust (or known as trusts) and a trust id known
    /// as a school; what the view cannot vouch for takes one query.
    async fn check_placement(&self, view: &TrustView, schools: &[SchoolRef]) -> Result<()> {
        let ids = unvouched(view, schools);
        if ids.is_empty() {
            return Ok(());
        }
        let outside = self
            .store
            .organizations_outside(view.trust_id, &ids)
            .await?;
        let misplaced = misplaced(view.trust_id, schools, &outside);
        if misplaced.is_empty() {
            Ok(())
        } else {
            Err(Error::Misplaced(misplaced))
        }
    }
}
