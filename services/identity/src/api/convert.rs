//! Every conversion between the proto messages and the domain: requests are parsed into
//! domain inputs naming every bad field at once (INVALID_ARGUMENT with field violations), and
//! domain results are written back as messages.

use std::collections::HashMap;

use portal_proto::identity::v1 as pb;
use portal_runtime::auth::Principal;
use portal_runtime::clock::{from_timestamp, to_micros, to_timestamp};
use portal_runtime::error::{ApiError, Violation, Violations};
use portal_runtime::paging::PageRequest;
use portal_runtime::vocab::{
    AccountId, Email, InvitationId, OrgKind, Password, ProductKey, RequestId, RoleKey, SchoolId,
    StaffId, TrustId, parse_name, parse_optional_text, truncate,
};

use crate::domain::OrganizationId;
use crate::domain::{
    AccessQuery, Account, AdminDecision, Administration, AdministratorCheck, CurrentAccount, Grant,
    GrantBatch, GrantOutcome, GrantResult, GrantSpec, GrantStatus, MAX_GRANTS_PER_BATCH,
    MAX_JOB_TITLE, MAX_MIS_ID, MAX_ORG_NAME, MAX_PERSON_NAME, MAX_SNAPSHOT, NewSchool, NewTrust,
    OrganizationAccess, ProductAccess, Registration, School, SchoolQuery, SignIn, SignedIn,
    Snapshot, StaffCursor, StaffEntry, StaffFilter, StaffMember, StaffQuery, StaffRecord,
    StaffStatus, StatusChange, StatusChangeCursor, StatusChangeQuery, SyncSummary, Trust,
    parse_sign_in_password, parse_urn,
};

/// A request whose input is a value of the shared vocabulary (an id, an email), or a few of
/// them: `Parsed(trust_id)`.
pub struct Parsed<T>(pub T);

/// A list request parsed: the use case's query, and the page its answer is cut to.
pub struct Listing<Q> {
    pub query: Q,
    page: PageRequest,
    /// What the request asked besides the page, so a token works only with its own query.
    filter: String,
}

impl<Q> Listing<Q> {
    /// Cuts `items` (fetched one past the page) to the page and returns the next page's
    /// token ("" after the last page).
    pub fn next_page<T>(&self, items: &mut Vec<T>, key: impl Fn(&T) -> String) -> String {
        self.page.finish(items, &self.filter, key)
    }
}

/// The violation of an empty account id from a service, which has no account of its own.
fn require_account_of_service(
    account_id: &Option<Option<AccountId>>,
    caller: &Principal,
    v: &mut Violations,
) {
    if let (Some(None), Principal::Service { .. }) = (account_id, caller) {
        v.add("account_id", "is required with a service token");
    }
}

// Directory.

impl TryFrom<pb::CreateTrustRequest> for NewTrust {
    type Error = ApiError;

    fn try_from(request: pb::CreateTrustRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let name = v.take("name", parse_name(&request.name, MAX_ORG_NAME));
        let request_id = v.take("request_id", RequestId::parse_optional(&request.request_id));
        v.finish_with(|| {
            Some(NewTrust {
                name: name?,
                request_id: request_id?,
            })
        })
    }
}

impl TryFrom<pb::GetTrustRequest> for Parsed<TrustId> {
    type Error = ApiError;

    fn try_from(request: pb::GetTrustRequest) -> Result<Self, ApiError> {
        TrustId::parse(&request.trust_id)
            .map(Parsed)
            .map_err(|d| ApiError::invalid("trust_id", d))
    }
}

impl TryFrom<pb::CreateSchoolRequest> for NewSchool {
    type Error = ApiError;

    fn try_from(request: pb::CreateSchoolRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", TrustId::parse(&request.trust_id));
        let name = v.take("name", parse_name(&request.name, MAX_ORG_NAME));
        let urn = v.take("urn", parse_urn(request.urn.as_deref().unwrap_or("")));
        let request_id = v.take("request_id", RequestId::parse_optional(&request.request_id));
        v.finish_with(|| {
            Some(NewSchool {
                trust_id: trust_id?,
                name: name?,
                urn: urn?,
                request_id: request_id?,
            })
        })
    }
}

impl TryFrom<pb::GetSchoolRequest> for Parsed<SchoolId> {
    type Error = ApiError;

    fn try_from(request: pb::GetSchoolRequest) -> Result<Self, ApiError> {
        SchoolId::parse(&request.school_id)
            .map(Parsed)
            .map_err(|d| ApiError::invalid("school_id", d))
    }
}

impl TryFrom<pb::ListSchoolsRequest> for Listing<SchoolQuery> {
    type Error = ApiError;

    fn try_from(request: pb::ListSchoolsRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", TrustId::parse(&request.trust_id));
        let filter = format!(
            "schools;trust={}",
            trust_id.map(|id| id.to_string()).unwrap_or_default()
        );
        let page = PageRequest::parse(request.page_size, &request.page_token, &filter, &mut v);
        let after = match &page.after {
            None => Some(None),
            Some(key) => v.take(
                "page_token",
                SchoolId::parse(key)
                    .map(Some)
                    .map_err(|_| "is not a token returned by this query".to_string()),
            ),
        };
        v.finish_with(|| {
            Some(Listing {
                query: SchoolQuery {
                    trust_id: trust_id?,
                    after: after?,
                    limit: page.fetch_limit(),
                },
                page,
                filter,
            })
        })
    }
}

impl From<Trust> for pb::Trust {
    fn from(trust: Trust) -> Self {
        pb::Trust {
            id: trust.id.to_string(),
            name: trust.name,
            create_time: Some(to_timestamp(trust.create_time)),
        }
    }
}

impl From<School> for pb::School {
    fn from(school: School) -> Self {
        pb::School {
            id: school.id.to_string(),
            trust_id: school.trust_id.to_string(),
            name: school.name,
            urn: school.urn.unwrap_or_default(),
            create_time: Some(to_timestamp(school.create_time)),
        }
    }
}

// Staff.

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

    /// Refuses a snapshot that grows past [`MAX_SNAPSHOT`] records before parsing a row.
    fn push_all(&mut self, inputs: Vec<pb::StaffRecordInput>) -> Result<(), ApiError> {
        if self.rows + inputs.len() > MAX_SNAPSHOT {
            return Err(ApiError::invalid(
                "records",
                format!("a snapshot holds at most {MAX_SNAPSHOT} records"),
            ));
        }
        self.records.reserve(inputs.len());
        for input in inputs {
            self.push(input);
        }
        Ok(())
    }

    fn field<T>(&mut self, row: usize, name: &str, parsed: Result<T, String>) -> Option<T> {
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
    fn finish(mut self, extra: Vec<Violation>) -> Result<Vec<StaffRecord>, ApiError> {
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
        Err(ApiError::InvalidArgument(all))
    }
}

impl TryFrom<pb::SyncStaffRequest> for Snapshot {
    type Error = ApiError;

    fn try_from(request: pb::SyncStaffRequest) -> Result<Self, ApiError> {
        let trust_id = TrustId::parse(&request.trust_id);
        // A bad trust id is named first, with the bad rows.
        let extra = match &trust_id {
            Ok(_) => Vec::new(),
            Err(description) => vec![Violation {
                field: "trust_id".into(),
                description: description.clone(),
            }],
        };
        let mut parser = SnapshotParser::default();
        parser.push_all(request.records)?;
        let records = parser.finish(extra)?;
        Ok(Snapshot {
            trust_id: trust_id.map_err(|d| ApiError::invalid("trust_id", d))?,
            records,
        })
    }
}

/// A snapshot streamed in messages: every message names the same trust, and rows are
/// numbered across messages.
#[derive(Default)]
pub struct SnapshotStream {
    trust_id: Option<TrustId>,
    messages: usize,
    parser: SnapshotParser,
}

impl SnapshotStream {
    pub fn push(&mut self, message: pb::StreamSyncStaffRequest) -> Result<(), ApiError> {
        self.messages += 1;
        let messages = self.messages;
        let trust_id = TrustId::parse(&message.trust_id)
            .map_err(|d| ApiError::invalid("trust_id", format!("message {messages}: {d}")))?;
        match self.trust_id {
            None => self.trust_id = Some(trust_id),
            Some(first) if first != trust_id => {
                return Err(ApiError::invalid(
                    "trust_id",
                    format!(
                        "message {messages} names trust {} but the first message named \
                         {first}; a stream carries the snapshot of one trust",
                        truncate(&trust_id.to_string(), 64)
                    ),
                ));
            }
            Some(_) => {}
        }
        self.parser.push_all(message.records)
    }

    pub fn finish(self) -> Result<Snapshot, ApiError> {
        let Some(trust_id) = self.trust_id else {
            return Err(ApiError::invalid(
                "trust_id",
                "the stream carried no message; send at least one with the trust_id",
            ));
        };
        Ok(Snapshot {
            trust_id,
            records: self.parser.finish(Vec::new())?,
        })
    }
}

/// A broken client stream: nothing is applied, and the client is told why.
pub fn broken_stream(status: tonic::Status) -> ApiError {
    ApiError::invalid(
        "records",
        format!(
            "the stream failed before it was closed: {}",
            truncate(status.message(), 200)
        ),
    )
}

impl TryFrom<pb::GetStaffMemberRequest> for Parsed<(TrustId, StaffId)> {
    type Error = ApiError;

    fn try_from(request: pb::GetStaffMemberRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", TrustId::parse(&request.trust_id));
        let staff_id = v.take("staff_id", StaffId::parse(&request.staff_id));
        v.finish_with(|| Some(Parsed((trust_id?, staff_id?))))
    }
}

impl TryFrom<pb::ListStaffAccessRequest> for Parsed<(TrustId, StaffId)> {
    type Error = ApiError;

    fn try_from(request: pb::ListStaffAccessRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", TrustId::parse(&request.trust_id));
        let staff_id = v.take("staff_id", StaffId::parse(&request.staff_id));
        v.finish_with(|| Some(Parsed((trust_id?, staff_id?))))
    }
}

/// A parsed WithdrawAccess request.
pub struct Withdrawal {
    pub trust_id: TrustId,
    pub staff_id: StaffId,
    /// One product at one organisation; None: everything at the trust.
    pub target: Option<(OrganizationId, ProductKey)>,
}

impl TryFrom<pb::WithdrawAccessRequest> for Withdrawal {
    type Error = ApiError;

    fn try_from(request: pb::WithdrawAccessRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", TrustId::parse(&request.trust_id));
        let staff_id = v.take("staff_id", StaffId::parse(&request.staff_id));
        let target = match (
            request.organization_id.is_empty(),
            request.product_key.is_empty(),
        ) {
            (true, true) => Some(None),
            (false, false) => {
                let org = v.take(
                    "organization_id",
                    OrganizationId::parse(&request.organization_id),
                );
                let product = v.take("product_key", ProductKey::parse(&request.product_key));
                org.zip(product).map(Some)
            }
            (true, false) => {
                v.add("organization_id", "is required with product_key");
                None
            }
            (false, true) => {
                v.add("product_key", "is required with organization_id");
                None
            }
        };
        v.finish_with(|| {
            Some(Withdrawal {
                trust_id: trust_id?,
                staff_id: staff_id?,
                target: target?,
            })
        })
    }
}

impl From<Grant> for pb::StaffAccess {
    fn from(grant: Grant) -> Self {
        pb::StaffAccess {
            organization_kind: grant.kind.to_proto(),
            organization_id: grant.organization_id.to_string(),
            product_key: grant.product_key.into_string(),
            role_key: grant.role_key.into_string(),
            status: pb::GrantStatus::from(grant.status).into(),
            invitation_id: grant.invitation_id.to_string(),
            previous_role_key: grant
                .previous_role_key
                .map(RoleKey::into_string)
                .unwrap_or_default(),
            create_time: Some(to_timestamp(grant.create_time)),
            update_time: Some(to_timestamp(grant.update_time)),
        }
    }
}

impl TryFrom<pb::ListStaffStatusChangesRequest> for Listing<StatusChangeQuery> {
    type Error = ApiError;

    fn try_from(request: pb::ListStaffStatusChangesRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let since = match &request.since {
            None => Some(i64::MIN),
            Some(ts) => v.take(
                "since",
                from_timestamp(ts)
                    .map(to_micros)
                    .ok_or_else(|| "is not a valid timestamp".to_string()),
            ),
        };
        let filter = format!("status-changes;since={}", since.unwrap_or_default());
        let page = PageRequest::parse(request.page_size, &request.page_token, &filter, &mut v);
        let after = match &page.after {
            None => Some(None),
            Some(key) => v.take(
                "page_token",
                StatusChangeCursor::decode(key)
                    .map(Some)
                    .ok_or_else(|| "is not a token returned by this query".to_string()),
            ),
        };
        v.finish_with(|| {
            Some(Listing {
                query: StatusChangeQuery {
                    since: since?,
                    after: after?,
                    limit: page.fetch_limit(),
                },
                page,
                filter,
            })
        })
    }
}

impl From<StatusChange> for pb::StaffStatusChange {
    fn from(change: StatusChange) -> Self {
        pb::StaffStatusChange {
            trust_id: change.trust_id.to_string(),
            staff_id: change.staff_id.to_string(),
            status: match change.status {
                StaffStatus::Active => pb::StaffStatus::Active,
                StaffStatus::Left => pb::StaffStatus::Left,
            } as i32,
            change_time: Some(to_timestamp(change.change_time)),
        }
    }
}

impl TryFrom<pb::ListStaffMembersRequest> for Listing<StaffQuery> {
    type Error = ApiError;

    fn try_from(request: pb::ListStaffMembersRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", TrustId::parse(&request.trust_id));
        let status = v.take(
            "status",
            match pb::StaffStatus::try_from(request.status) {
                Ok(pb::StaffStatus::Unspecified) => Ok(None),
                Ok(pb::StaffStatus::Active) => Ok(Some(StaffStatus::Active)),
                Ok(pb::StaffStatus::Left) => Ok(Some(StaffStatus::Left)),
                Err(_) => Err(format!("{} is not a staff status", request.status)),
            },
        );
        let name_contains = v.take(
            "name_contains",
            parse_optional_text(&request.name_contains, MAX_PERSON_NAME)
                .map(|text| (!text.is_empty()).then(|| text.to_lowercase())),
        );
        let email = if request.email.trim().is_empty() {
            Some(None)
        } else {
            v.take("email", Email::parse(&request.email).map(Some))
        };
        let filter = format!(
            "staff;trust={};status={};name={};email={}",
            trust_id.map(|id| id.to_string()).unwrap_or_default(),
            request.status,
            name_contains.clone().flatten().unwrap_or_default(),
            email
                .as_ref()
                .and_then(|e| e.as_ref())
                .map(Email::as_str)
                .unwrap_or_default(),
        );
        let page = PageRequest::parse(request.page_size, &request.page_token, &filter, &mut v);
        let after = match &page.after {
            None => Some(None),
            Some(key) => v.take(
                "page_token",
                StaffCursor::decode(key)
                    .map(Some)
                    .ok_or_else(|| "is not a token returned by this query".to_string()),
            ),
        };
        v.finish_with(|| {
            Some(Listing {
                query: StaffQuery {
                    trust_id: trust_id?,
                    filter: StaffFilter {
                        status: status?,
                        name_contains: name_contains?,
                        email: email?,
                    },
                    after: after?,
                    limit: page.fetch_limit(),
                },
                page,
                filter,
            })
        })
    }
}

impl From<StaffStatus> for pb::StaffStatus {
    fn from(status: StaffStatus) -> Self {
        match status {
            StaffStatus::Active => pb::StaffStatus::Active,
            StaffStatus::Left => pb::StaffStatus::Left,
        }
    }
}

impl From<StaffMember> for pb::StaffMember {
    fn from(member: StaffMember) -> Self {
        pb::StaffMember {
            id: member.id.to_string(),
            trust_id: member.trust_id.to_string(),
            mis_id: member.mis_id,
            given_name: member.given_name,
            family_name: member.family_name,
            email: member.email.into_string(),
            job_title: member.job_title,
            status: pb::StaffStatus::from(member.status).into(),
            create_time: Some(to_timestamp(member.create_time)),
            update_time: Some(to_timestamp(member.update_time)),
        }
    }
}

impl From<StaffEntry> for pb::GetStaffMemberResponse {
    fn from(entry: StaffEntry) -> Self {
        pb::GetStaffMemberResponse {
            staff_member: Some(entry.member.into()),
            account_id: entry
                .account_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        }
    }
}

impl From<SyncSummary> for pb::SyncSummary {
    fn from(summary: SyncSummary) -> Self {
        let n = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        pb::SyncSummary {
            received: n(summary.received),
            added: n(summary.added),
            updated: n(summary.updated),
            marked_left: n(summary.marked_left),
            unchanged: n(summary.unchanged),
            suspended_grants: n(summary.suspended_grants),
            restored_grants: n(summary.restored_grants),
            last_account_owner_left: summary.last_account_owner_left,
        }
    }
}

// Accounts.

impl TryFrom<pb::RegisterAccountRequest> for Registration {
    type Error = ApiError;

    fn try_from(request: pb::RegisterAccountRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let email = v.take("email", Email::parse(&request.email));
        let given_name = v.take(
            "given_name",
            parse_name(&request.given_name, MAX_PERSON_NAME),
        );
        let family_name = v.take(
            "family_name",
            parse_name(&request.family_name, MAX_PERSON_NAME),
        );
        let password = v.take("password", Password::parse(&request.password));
        let invitation_id = v.take(
            "invitation_id",
            InvitationId::parse_optional(&request.invitation_id),
        );
        v.finish_with(|| {
            Some(Registration {
                email: email?,
                given_name: given_name?,
                family_name: family_name?,
                password: password?,
                invitation_id: invitation_id?,
            })
        })
    }
}

impl TryFrom<pb::SignInRequest> for SignIn {
    type Error = ApiError;

    fn try_from(request: pb::SignInRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let email = v.take("email", Email::parse(&request.email));
        let password = v.take("password", parse_sign_in_password(&request.password));
        v.finish_with(|| {
            Some(SignIn {
                email: email?,
                password: password?,
            })
        })
    }
}

impl TryFrom<pb::LookupAccountRequest> for Parsed<Email> {
    type Error = ApiError;

    fn try_from(request: pb::LookupAccountRequest) -> Result<Self, ApiError> {
        Email::parse(&request.email)
            .map(Parsed)
            .map_err(|d| ApiError::invalid("email", d))
    }
}

impl From<Account> for pb::Account {
    fn from(account: Account) -> Self {
        pb::Account {
            id: account.id.to_string(),
            email: account.email.into_string(),
            given_name: account.given_name,
            family_name: account.family_name,
            create_time: Some(to_timestamp(account.create_time)),
        }
    }
}

impl From<SignedIn> for pb::SignInResponse {
    fn from(signed_in: SignedIn) -> Self {
        pb::SignInResponse {
            access_token: signed_in.token.token,
            expire_time: Some(to_timestamp(signed_in.token.expires_at)),
            account: Some(signed_in.account.into()),
        }
    }
}

impl From<CurrentAccount> for pb::GetCurrentAccountResponse {
    fn from(current: CurrentAccount) -> Self {
        pb::GetCurrentAccountResponse {
            account: Some(current.account.into()),
            access: current.access.into_iter().map(Into::into).collect(),
        }
    }
}

// Grants.

/// The specs of a batch, each field checked, none repeated, and TRUST grants naming the
/// request's trust.
fn parse_specs(
    trust_id: Option<TrustId>,
    grants: &[pb::GrantSpec],
    v: &mut Violations,
) -> Option<Vec<GrantSpec>> {
    if grants.is_empty() {
        v.add("grants", "at least one grant is required");
        return None;
    }
    if grants.len() > MAX_GRANTS_PER_BATCH {
        v.add(
            "grants",
            format!("at most {MAX_GRANTS_PER_BATCH} grants per call"),
        );
        return None;
    }
    let before = v.len();
    let mut specs = Vec::with_capacity(grants.len());
    let mut first_index: HashMap<GrantSpec, usize> = HashMap::new();
    for (i, grant) in grants.iter().enumerate() {
        let kind = v.take(
            format!("grants[{i}].organization_kind"),
            OrgKind::from_proto(grant.organization_kind),
        );
        let organization_id = v.take(
            format!("grants[{i}].organization_id"),
            crate::domain::OrganizationId::parse(&grant.organization_id),
        );
        let product_key = v.take(
            format!("grants[{i}].product_key"),
            ProductKey::parse(&grant.product_key),
        );
        let role_key = v.take(
            format!("grants[{i}].role_key"),
            RoleKey::parse(&grant.role_key),
        );
        let (Some(kind), Some(organization_id), Some(product_key), Some(role_key)) =
            (kind, organization_id, product_key, role_key)
        else {
            continue;
        };
        if kind == OrgKind::Trust && trust_id.is_some_and(|t| t.cast() != organization_id) {
            v.add(
                format!("grants[{i}].organization_id"),
                "a TRUST grant must name the request's trust_id",
            );
            continue;
        }
        let spec = GrantSpec {
            kind,
            organization_id,
            product_key,
            role_key,
        };
        if let Some(first) = first_index.get(&spec) {
            v.add(
                format!("grants[{i}]"),
                format!("duplicates grants[{first}]"),
            );
            continue;
        }
        first_index.insert(spec.clone(), i);
        specs.push(spec);
    }
    (v.len() == before).then_some(specs)
}

impl TryFrom<pb::BatchGrantRequest> for GrantBatch {
    type Error = ApiError;

    fn try_from(request: pb::BatchGrantRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let invitation_id = v.take("invitation_id", InvitationId::parse(&request.invitation_id));
        let trust_id = v.take("trust_id", TrustId::parse(&request.trust_id));
        let email = v.take("email", Email::parse(&request.email));
        let staff_id = v.take("staff_id", StaffId::parse(&request.staff_id));
        let specs = parse_specs(trust_id, &request.grants, &mut v);
        v.finish_with(|| {
            Some(GrantBatch {
                invitation_id: invitation_id?,
                trust_id: trust_id?,
                email: email?,
                staff_id: Some(staff_id?),
                specs: specs?,
                activate: request.activate,
            })
        })
    }
}

impl TryFrom<pb::ActivateGrantsRequest> for Parsed<(InvitationId, AccountId)> {
    type Error = ApiError;

    fn try_from(request: pb::ActivateGrantsRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let invitation_id = v.take("invitation_id", InvitationId::parse(&request.invitation_id));
        let account_id = v.take("account_id", AccountId::parse(&request.account_id));
        v.finish_with(|| Some(Parsed((invitation_id?, account_id?))))
    }
}

/// The invitation, and whether only its pending grants go.
impl TryFrom<pb::RevokeGrantsRequest> for Parsed<(InvitationId, bool)> {
    type Error = ApiError;

    fn try_from(request: pb::RevokeGrantsRequest) -> Result<Self, ApiError> {
        InvitationId::parse(&request.invitation_id)
            .map(|id| Parsed((id, request.pending_only)))
            .map_err(|d| ApiError::invalid("invitation_id", d))
    }
}

/// An empty account id means the caller's own account.
impl TryFrom<(pb::ListAccessRequest, &Principal)> for Listing<AccessQuery> {
    type Error = ApiError;

    fn try_from((request, caller): (pb::ListAccessRequest, &Principal)) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let account_id = v.take("account_id", AccountId::parse_optional(&request.account_id));
        require_account_of_service(&account_id, caller, &mut v);
        let filter = format!(
            "access;account={}",
            account_id
                .flatten()
                .map(|id| id.to_string())
                .unwrap_or_default()
        );
        let page = PageRequest::parse(request.page_size, &request.page_token, &filter, &mut v);
        v.finish_with(|| {
            Some(Listing {
                query: AccessQuery {
                    account_id: account_id?.or(caller.account_id())?,
                    after: page.after.clone(),
                    limit: page.fetch_limit(),
                },
                page,
                filter,
            })
        })
    }
}

/// An empty account id means the caller's own account.
impl TryFrom<(pb::CheckAdministratorRequest, &Principal)> for AdministratorCheck {
    type Error = ApiError;

    fn try_from(
        (request, caller): (pb::CheckAdministratorRequest, &Principal),
    ) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", TrustId::parse(&request.trust_id));
        let account_id = v.take("account_id", AccountId::parse_optional(&request.account_id));
        require_account_of_service(&account_id, caller, &mut v);
        v.finish_with(|| {
            Some(AdministratorCheck {
                trust_id: trust_id?,
                account_id: account_id?.or(caller.account_id())?,
            })
        })
    }
}

impl From<GrantStatus> for pb::GrantStatus {
    fn from(status: GrantStatus) -> Self {
        match status {
            GrantStatus::Pending => pb::GrantStatus::Pending,
            GrantStatus::Active => pb::GrantStatus::Active,
            GrantStatus::Revoked => pb::GrantStatus::Revoked,
            GrantStatus::Suspended => pb::GrantStatus::Suspended,
        }
    }
}

impl From<GrantOutcome> for pb::GrantOutcome {
    fn from(outcome: GrantOutcome) -> Self {
        match outcome {
            GrantOutcome::Created => pb::GrantOutcome::Created,
            GrantOutcome::AlreadyGranted => pb::GrantOutcome::AlreadyGranted,
            GrantOutcome::AlreadyHeld => pb::GrantOutcome::AlreadyHeld,
            GrantOutcome::RoleChanged => pb::GrantOutcome::RoleChanged,
        }
    }
}

impl From<Grant> for pb::Grant {
    fn from(grant: Grant) -> Self {
        pb::Grant {
            id: grant.id.to_string(),
            invitation_id: grant.invitation_id.to_string(),
            trust_id: grant.trust_id.to_string(),
            organization_kind: grant.kind.to_proto(),
            organization_id: grant.organization_id.to_string(),
            product_key: grant.product_key.into_string(),
            role_key: grant.role_key.into_string(),
            email: grant.email.into_string(),
            account_id: grant
                .account_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            status: pb::GrantStatus::from(grant.status).into(),
            create_time: Some(to_timestamp(grant.create_time)),
            update_time: Some(to_timestamp(grant.update_time)),
            previous_role_key: grant
                .previous_role_key
                .map(RoleKey::into_string)
                .unwrap_or_default(),
        }
    }
}

impl From<GrantResult> for pb::GrantResult {
    fn from(result: GrantResult) -> Self {
        pb::GrantResult {
            grant: Some(result.grant.into()),
            outcome: pb::GrantOutcome::from(result.outcome).into(),
        }
    }
}

impl From<ProductAccess> for pb::ProductAccess {
    fn from(product: ProductAccess) -> Self {
        pb::ProductAccess {
            product_key: product.product_key.into_string(),
            role_key: product.role_key.into_string(),
            status: pb::GrantStatus::from(product.status).into(),
        }
    }
}

impl From<OrganizationAccess> for pb::OrganizationAccess {
    fn from(access: OrganizationAccess) -> Self {
        pb::OrganizationAccess {
            organization_kind: access.kind.to_proto(),
            organization_id: access.organization_id.to_string(),
            trust_id: access.trust_id.to_string(),
            products: access.products.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Administration> for pb::CheckAdministratorResponse {
    fn from(answer: Administration) -> Self {
        pb::CheckAdministratorResponse {
            administrator: answer.decision == AdminDecision::Administrator,
            decision: pb::AdministratorDecision::from(answer.decision).into(),
            role_key: answer.role.map(RoleKey::into_string).unwrap_or_default(),
        }
    }
}
