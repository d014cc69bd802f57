//! StaffService: full-snapshot MIS sync (R13) and reads of the staff directory.

use std::collections::HashMap;

use portal_proto::identity::v1 as pb;
use portal_proto::identity::v1::staff_service_server::StaffService;
use portal_runtime::error::{ApiError, Violation, Violations};
use portal_runtime::paging::PageRequest;
use portal_runtime::types::{Email, parse_id, parse_name, truncate};
use tonic::{Request, Response, Status, Streaming};

use super::directory::unreachable_parse;
use super::{
    IdentityApi, MIS_SYNC, OPERATOR, answer, principal, require_service, staff_pb, summary_pb,
};
use crate::domain::{
    MAX_JOB_TITLE, MAX_MIS_ID, MAX_PERSON_NAME, MAX_SNAPSHOT, StaffCursor, StaffFilter,
    StaffRecord, StaffStatus, SyncSummary, parse_optional_text,
};
use crate::error::{IdentityError, Result};

/// Most field violations one answer lists; the rest are counted in a final violation, so the
/// answer stays well under the gRPC metadata size limits.
const MAX_LISTED_VIOLATIONS: usize = 50;

/// Parses a snapshot row by row (across stream messages), collecting every bad row.
#[derive(Default)]
struct SnapshotParser {
    records: Vec<StaffRecord>,
    rows: usize,
    violations: Vec<Violation>,
    unlisted: usize,
    mis_rows: HashMap<String, usize>,
    email_rows: HashMap<String, usize>,
}

impl SnapshotParser {
    fn violation(&mut self, field: String, description: String) {
        if self.violations.len() < MAX_LISTED_VIOLATIONS {
            self.violations.push(Violation { field, description });
        } else {
            self.unlisted += 1;
        }
    }

    fn push_all(&mut self, inputs: Vec<pb::StaffRecordInput>) -> Result<()> {
        if self.rows + inputs.len() > MAX_SNAPSHOT {
            return Err(ApiError::invalid(
                "records",
                format!("a snapshot holds at most {MAX_SNAPSHOT} records"),
            )
            .into());
        }
        self.records.reserve(inputs.len());
        for input in inputs {
            self.push(input);
        }
        Ok(())
    }

    fn field<T>(
        &mut self,
        row: usize,
        name: &str,
        parsed: std::result::Result<T, String>,
    ) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(description) => {
                self.violation(format!("records[{row}].{name}"), description);
                None
            }
        }
    }

    /// Remembers the first row of a key; a later row with the same key is named with it.
    fn unique(&mut self, row: usize, name: &str, key: &str, by_email: bool) -> bool {
        let seen = if by_email {
            &mut self.email_rows
        } else {
            &mut self.mis_rows
        };
        match seen.get(key).copied() {
            Some(first) => {
                self.violation(
                    format!("records[{row}].{name}"),
                    format!("duplicates records[{first}].{name}"),
                );
                false
            }
            None => {
                seen.insert(key.to_string(), row);
                true
            }
        }
    }

    fn push(&mut self, input: pb::StaffRecordInput) {
        let i = self.rows;
        self.rows += 1;
        let mis_id = self.field(i, "mis_id", parse_name(&input.mis_id, MAX_MIS_ID));
        let given_name = self.field(
            i,
            "given_name",
            parse_name(&input.given_name, MAX_PERSON_NAME),
        );
        let family_name = self.field(
            i,
            "family_name",
            parse_name(&input.family_name, MAX_PERSON_NAME),
        );
        let email = self.field(i, "email", Email::parse(&input.email));
        let job_title = self.field(
            i,
            "job_title",
            parse_optional_text(&input.job_title, MAX_JOB_TITLE),
        );
        let unique_mis = match &mis_id {
            Some(mis_id) => self.unique(i, "mis_id", mis_id, false),
            None => false,
        };
        let unique_email = match &email {
            Some(email) => self.unique(i, "email", email.as_str(), true),
            None => false,
        };
        if let (
            true,
            true,
            Some(mis_id),
            Some(given_name),
            Some(family_name),
            Some(email),
            Some(job_title),
        ) = (
            unique_mis,
            unique_email,
            mis_id,
            given_name,
            family_name,
            email,
            job_title,
        ) && self.violations.is_empty()
        {
            self.records.push(StaffRecord {
                mis_id,
                given_name,
                family_name,
                email,
                job_title,
            });
        }
    }

    /// The records, or INVALID_ARGUMENT naming every bad row (with `extra` violations first).
    fn finish(mut self, extra: Vec<Violation>) -> Result<Vec<StaffRecord>> {
        if extra.is_empty() && self.violations.is_empty() {
            return Ok(self.records);
        }
        let mut all = extra;
        all.append(&mut self.violations);
        if self.unlisted > 0 {
            all.push(Violation {
                field: "records".into(),
                description: format!("{} more invalid fields are not listed", self.unlisted),
            });
        }
        Err(ApiError::InvalidArgument(all).into())
    }
}

fn parse_staff_status(raw: i32) -> std::result::Result<Option<StaffStatus>, String> {
    match pb::StaffStatus::try_from(raw) {
        Ok(pb::StaffStatus::Unspecified) => Ok(None),
        Ok(pb::StaffStatus::Active) => Ok(Some(StaffStatus::Active)),
        Ok(pb::StaffStatus::Left) => Ok(Some(StaffStatus::Left)),
        Err(_) => Err(format!("{raw} is not a staff status")),
    }
}

fn parse_name_filter(raw: &str) -> std::result::Result<Option<String>, String> {
    let text = parse_optional_text(raw, MAX_PERSON_NAME)?;
    Ok((!text.is_empty()).then(|| text.to_lowercase()))
}

impl IdentityApi {
    async fn apply_snapshot(
        &self,
        trust_id: &str,
        records: Vec<StaffRecord>,
    ) -> Result<SyncSummary> {
        let received = records.len();
        let started = std::time::Instant::now();
        let summary = self
            .store()
            .sync_staff(trust_id, records, self.now())
            .await?;
        tracing::info!(
            trust_id,
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

    async fn sync_staff_impl(
        &self,
        request: Request<pb::SyncStaffRequest>,
    ) -> Result<pb::SyncStaffResponse> {
        require_service(&principal(&request)?, &[MIS_SYNC, OPERATOR])?;
        let request = request.into_inner();
        let mut extra = Vec::new();
        let trust_id = match parse_id(&request.trust_id) {
            Ok(id) => Some(id),
            Err(description) => {
                extra.push(Violation {
                    field: "trust_id".into(),
                    description,
                });
                None
            }
        };
        let mut parser = SnapshotParser::default();
        parser.push_all(request.records)?;
        let records = parser.finish(extra)?;
        let Some(trust_id) = trust_id else {
            return unreachable_parse();
        };
        let summary = self.apply_snapshot(&trust_id, records).await?;
        Ok(pb::SyncStaffResponse {
            summary: Some(summary_pb(summary)),
        })
    }

    async fn stream_sync_staff_impl(
        &self,
        request: Request<Streaming<pb::StreamSyncStaffRequest>>,
    ) -> Result<pb::StreamSyncStaffResponse> {
        require_service(&principal(&request)?, &[MIS_SYNC, OPERATOR])?;
        let mut stream = request.into_inner();
        let mut parser = SnapshotParser::default();
        let mut trust_id: Option<String> = None;
        let mut messages = 0usize;
        while let Some(message) = stream.message().await.map_err(stream_error)? {
            messages += 1;
            let this_trust = parse_id(&message.trust_id)
                .map_err(|d| ApiError::invalid("trust_id", format!("message {messages}: {d}")))?;
            match &trust_id {
                None => trust_id = Some(this_trust),
                Some(first) if *first != this_trust => {
                    return Err(ApiError::invalid(
                        "trust_id",
                        format!(
                            "message {messages} names trust {} but the first message named {first}; \
                             a stream carries the snapshot of one trust",
                            truncate(&this_trust, 64)
                        ),
                    )
                    .into());
                }
                Some(_) => {}
            }
            parser.push_all(message.records)?;
        }
        let Some(trust_id) = trust_id else {
            return Err(ApiError::invalid(
                "trust_id",
                "the stream carried no message; send at least one with the trust_id",
            )
            .into());
        };
        let records = parser.finish(Vec::new())?;
        let summary = self.apply_snapshot(&trust_id, records).await?;
        Ok(pb::StreamSyncStaffResponse {
            summary: Some(summary_pb(summary)),
        })
    }

    async fn get_staff_member_impl(
        &self,
        request: Request<pb::GetStaffMemberRequest>,
    ) -> Result<pb::GetStaffMemberResponse> {
        let caller = principal(&request)?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", parse_id(&request.trust_id));
        let staff_id = v.take("staff_id", parse_id(&request.staff_id));
        v.finish()?;
        let (Some(trust_id), Some(staff_id)) = (trust_id, staff_id) else {
            return unreachable_parse();
        };
        self.require_trust_admin_or_service(&caller, &trust_id)
            .await?;
        let (member, account_id) = self
            .store()
            .get_staff_with_account(&trust_id, &staff_id)
            .await?
            .ok_or(IdentityError::StaffNotFound(staff_id))?;
        Ok(pb::GetStaffMemberResponse {
            staff_member: Some(staff_pb(member)),
            account_id: account_id.unwrap_or_default(),
        })
    }

    async fn list_staff_members_impl(
        &self,
        request: Request<pb::ListStaffMembersRequest>,
    ) -> Result<pb::ListStaffMembersResponse> {
        let caller = principal(&request)?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", parse_id(&request.trust_id));
        let status = v.take("status", parse_staff_status(request.status));
        let name_contains = v.take("name_contains", parse_name_filter(&request.name_contains));
        let email = if request.email.trim().is_empty() {
            Some(None)
        } else {
            v.take("email", Email::parse(&request.email).map(Some))
        };
        let filter_key = format!(
            "staff;trust={};status={};name={};email={}",
            trust_id.as_deref().unwrap_or(""),
            request.status,
            name_contains.clone().flatten().unwrap_or_default(),
            email
                .as_ref()
                .and_then(|e| e.as_ref())
                .map(Email::as_str)
                .unwrap_or_default(),
        );
        let page = PageRequest::parse(request.page_size, &request.page_token, &filter_key, &mut v);
        let cursor = match &page.after {
            None => None,
            Some(key) => match StaffCursor::decode(key) {
                Some(cursor) => Some(cursor),
                None => {
                    v.add("page_token", "is not a token returned by this query");
                    None
                }
            },
        };
        v.finish()?;
        let (Some(trust_id), Some(status), Some(name_contains), Some(email)) =
            (trust_id, status, name_contains, email)
        else {
            return unreachable_parse();
        };
        self.require_trust_admin_or_service(&caller, &trust_id)
            .await?;
        if self.store().get_trust(&trust_id).await?.is_none() {
            return Err(IdentityError::TrustNotFound(trust_id));
        }
        let filter = StaffFilter {
            status,
            name_contains,
            email,
        };
        let mut members = self
            .store()
            .list_staff(&trust_id, &filter, cursor.as_ref(), page.fetch_limit())
            .await?;
        let next_page_token =
            page.finish(&mut members, &filter_key, |m| StaffCursor::of(m).encode());
        Ok(pb::ListStaffMembersResponse {
            staff_members: members.into_iter().map(staff_pb).collect(),
            next_page_token,
        })
    }
}

/// A broken client stream: nothing is applied, and the client is told why.
fn stream_error(status: Status) -> IdentityError {
    IdentityError::Api(ApiError::invalid(
        "records",
        format!(
            "the stream failed before it was closed: {}",
            truncate(status.message(), 200)
        ),
    ))
}

#[tonic::async_trait]
impl StaffService for IdentityApi {
    async fn sync_staff(
        &self,
        request: Request<pb::SyncStaffRequest>,
    ) -> Result<Response<pb::SyncStaffResponse>, Status> {
        answer(self.sync_staff_impl(request).await)
    }

    async fn stream_sync_staff(
        &self,
        request: Request<Streaming<pb::StreamSyncStaffRequest>>,
    ) -> Result<Response<pb::StreamSyncStaffResponse>, Status> {
        answer(self.stream_sync_staff_impl(request).await)
    }

    async fn get_staff_member(
        &self,
        request: Request<pb::GetStaffMemberRequest>,
    ) -> Result<Response<pb::GetStaffMemberResponse>, Status> {
        answer(self.get_staff_member_impl(request).await)
    }

    async fn list_staff_members(
        &self,
        request: Request<pb::ListStaffMembersRequest>,
    ) -> Result<Response<pb::ListStaffMembersResponse>, Status> {
        answer(self.list_staff_members_impl(request).await)
    }
}
