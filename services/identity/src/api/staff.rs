//! StaffService: full-snapshot MIS sync (R13) and reads of the staff directory.

use portal_proto::identity::v1 as pb;
use portal_proto::identity::v1::staff_service_server::StaffService;
use portal_runtime::auth::principal_of;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{Listing, Parsed, SnapshotStream, broken_stream};
use super::{Api, answer};
use crate::app::{StaffFeed, StaffSync};
use crate::domain::{Snapshot, StaffCursor, StaffQuery, StatusChangeCursor, StatusChangeQuery};

#[tonic::async_trait]
impl StaffService for Api {
    async fn sync_staff(
        &self,
        request: Request<pb::SyncStaffRequest>,
    ) -> Result<Response<pb::SyncStaffResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let admitted = self.app.admit::<StaffSync>(&caller)?;
                let snapshot = Snapshot::try_from(request.into_inner())?;
                let summary = self.app.sync_staff(&admitted, snapshot).await?;
                Ok(pb::SyncStaffResponse {
                    summary: Some(summary.into()),
                })
            }
            .await,
        )
    }

    async fn stream_sync_staff(
        &self,
        request: Request<Streaming<pb::StreamSyncStaffRequest>>,
    ) -> Result<Response<pb::StreamSyncStaffResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let admitted = self.app.admit::<StaffSync>(&caller)?;
                let mut messages = request.into_inner();
                let mut stream = SnapshotStream::default();
                while let Some(message) = messages.message().await.map_err(broken_stream)? {
                    stream.push(message)?;
                }
                let summary = self.app.sync_staff(&admitted, stream.finish()?).await?;
                Ok(pb::StreamSyncStaffResponse {
                    summary: Some(summary.into()),
                })
            }
            .await,
        )
    }

    async fn list_staff_status_changes(
        &self,
        request: Request<pb::ListStaffStatusChangesRequest>,
    ) -> Result<Response<pb::ListStaffStatusChangesResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let admitted = self.app.admit::<StaffFeed>(&caller)?;
                let listing = Listing::<StatusChangeQuery>::try_from(request.into_inner())?;
                let mut changes = self
                    .app
                    .staff_status_changes(&admitted, &listing.query)
                    .await?;
                let next_page_token =
                    listing.next_page(&mut changes, |c| StatusChangeCursor::of(c).encode());
                Ok(pb::ListStaffStatusChangesResponse {
                    changes: changes.into_iter().map(Into::into).collect(),
                    next_page_token,
                })
            }
            .await,
        )
    }

    async fn get_staff_member(
        &self,
        request: Request<pb::GetStaffMemberRequest>,
    ) -> Result<Response<pb::GetStaffMemberResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let Parsed((trust_id, staff_id)) = request.into_inner().try_into()?;
                let entry = self
                    .app
                    .get_staff_member(&caller, trust_id, staff_id)
                    .await?;
                Ok(entry.into())
            }
            .await,
        )
    }

    async fn list_staff_members(
        &self,
        request: Request<pb::ListStaffMembersRequest>,
    ) -> Result<Response<pb::ListStaffMembersResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let listing = Listing::<StaffQuery>::try_from(request.into_inner())?;
                let mut members = self.app.list_staff(&caller, &listing.query).await?;
                let next_page_token =
                    listing.next_page(&mut members, |m| StaffCursor::of(m).encode());
                Ok(pb::ListStaffMembersResponse {
                    staff_members: members.into_iter().map(Into::into).collect(),
                    next_page_token,
                })
            }
            .await,
        )
    }
}
