//! The staff directory: replaced by MIS snapshots, read by services and trust administrators.

use portal_runtime::auth::Principal;
use portal_runtime::vocab::{StaffId, TrustId};

use super::{Admitted, App, StaffFeed, StaffSync};
use crate::domain::{
    Snapshot, StaffEntry, StaffMember, StaffQuery, StatusChange, StatusChangeQuery, SyncSummary,
};
use crate::error::{Error, Result};

impl App {
    /// Applies a full snapshot.
    pub async fn sync_staff(
        &self,
        _: &Admitted<StaffSync>,
        snapshot: Snapshot,
    ) -> Result<SyncSummary> {
        let Snapshot { trust_id, records } = snapshot;
        let received = records.len();
        let started = std::time::Instant::now();
        let summary = self.store.sync_staff(trust_id, records, self.now()).await?;
        tracing::info!(
            %trust_id,
            received,
            added = summary.added,
            updated = summary.updated,
            marked_left = summary.marked_left,
            unchanged = summary.unchanged,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "staff snapshot applied"
        );
        Ok(summary)
    }

    /// Staff records whose status changed, oldest change first.
    pub async fn staff_status_changes(
        &self,
        _: &Admitted<StaffFeed>,
        query: &StatusChangeQuery,
    ) -> Result<Vec<StatusChange>> {
        self.store.staff_status_changes(query).await
    }

    /// A staff member, with the id of their account once they have one.
    pub async fn get_staff_member(
        &self,
        caller: &Principal,
        trust_id: TrustId,
        staff_id: StaffId,
    ) -> Result<StaffEntry> {
        self.require_trust_admin_or_service(caller, trust_id)
            .await?;
        self.store
            .get_staff_with_account(trust_id, staff_id)
            .await?
            .ok_or(Error::StaffNotFound(staff_id))
    }

    pub async fn list_staff(
        &self,
        caller: &Principal,
        query: &StaffQuery,
    ) -> Result<Vec<StaffMember>> {
        self.require_trust_admin_or_service(caller, query.trust_id)
            .await?;
        self.require_trust(query.trust_id).await?;
        self.store
            .list_staff(
                query.trust_id,
                &query.filter,
                query.after.as_ref(),
                query.limit,
            )
            .await
    }
}
