//! The identity domain: organisations, staff, accounts and grants, and the rules that do not
//! need a database (the snapshot diff, the administrator decision, access grouping).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use portal_runtime::demo::{ADMIN_ROLES, PORTAL_PRODUCT};
use portal_runtime::types::{Email, new_id};

/// Longest display name of a trust or school.
pub const MAX_ORG_NAME: usize = 200;
/// Longest given or family name.
pub const MAX_PERSON_NAME: usize = 100;
/// Longest MIS id.
pub const MAX_MIS_ID: usize = 64;
/// Longest job title.
pub const MAX_JOB_TITLE: usize = 200;
/// Most records one snapshot may carry.
pub const MAX_SNAPSHOT: usize = 1_000_000;
/// Most grants one BatchGrant call may carry.
pub const MAX_GRANTS_PER_BATCH: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    pub id: String,
    pub name: String,
    pub create_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct School {
    pub id: String,
    pub trust_id: String,
    pub name: String,
    pub urn: Option<String>,
    pub create_time: DateTime<Utc>,
}

/// A trust to create. `request_id` is the AIP-155 idempotency key.
#[derive(Debug, Clone)]
pub struct NewTrust {
    pub id: String,
    pub name: String,
    pub request_id: Option<String>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewSchool {
    pub id: String,
    pub trust_id: String,
    pub name: String,
    pub urn: Option<String>,
    pub request_id: Option<String>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StaffStatus {
    Active,
    Left,
}

impl StaffStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffStatus::Active => "active",
            StaffStatus::Left => "left",
        }
    }

    pub fn from_db(text: &str) -> Option<Self> {
        match text {
            "active" => Some(StaffStatus::Active),
            "left" => Some(StaffStatus::Left),
            _ => None,
        }
    }
}

/// One parsed row of an MIS snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRecord {
    pub mis_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Email,
    pub job_title: String,
}

/// A member of a trust's staff directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    pub id: String,
    pub trust_id: String,
    pub mis_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Email,
    pub job_title: String,
    pub status: StaffStatus,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// What a sync changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncSummary {
    pub received: u32,
    pub added: u32,
    pub updated: u32,
    pub marked_left: u32,
    pub unchanged: u32,
}

/// The lower-cased text the name filter searches: given and family name, kept apart by a
/// separator no filter can contain, so a filter never matches across the two.
pub fn staff_search_key(given_name: &str, family_name: &str) -> String {
    format!(
        "{}\u{1f}{}",
        given_name.to_lowercase(),
        family_name.to_lowercase()
    )
}

/// A staff row as stored, loaded for the diff.
#[derive(Debug, Clone)]
pub struct ExistingStaff {
    pub id: String,
    pub mis_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: String,
    pub job_title: String,
    pub status: StaffStatus,
}

/// A row to insert or update (the id is the stored id for updates, a new one for inserts).
#[derive(Debug, Clone)]
pub struct StaffRow {
    pub id: String,
    pub mis_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: String,
    pub job_title: String,
    pub search_key: String,
}

impl StaffRow {
    fn from_record(id: String, record: &StaffRecord) -> Self {
        Self {
            id,
            mis_id: record.mis_id.clone(),
            given_name: record.given_name.clone(),
            family_name: record.family_name.clone(),
            email: record.email.as_str().to_string(),
            job_title: record.job_title.clone(),
            search_key: staff_search_key(&record.given_name, &record.family_name),
        }
    }
}

/// The writes a snapshot needs: rows to add, rows to update (and make ACTIVE), ids to mark
/// LEFT.
#[derive(Debug, Default)]
pub struct SyncPlan {
    pub inserts: Vec<StaffRow>,
    pub updates: Vec<StaffRow>,
    pub mark_left: Vec<String>,
    pub summary: SyncSummary,
}

/// Diffs a full snapshot against the stored directory of the trust. Records are matched on
/// MIS id; the snapshot must not repeat a MIS id (the edge refuses such snapshots).
pub fn plan_sync(existing: &[ExistingStaff], snapshot: &[StaffRecord]) -> SyncPlan {
    let by_mis: HashMap<&str, &ExistingStaff> =
        existing.iter().map(|e| (e.mis_id.as_str(), e)).collect();
    let mut seen: HashSet<&str> = HashSet::with_capacity(snapshot.len());
    let mut plan = SyncPlan {
        summary: SyncSummary {
            received: u32::try_from(snapshot.len()).unwrap_or(u32::MAX),
            ..SyncSummary::default()
        },
        ..SyncPlan::default()
    };
    for record in snapshot {
        seen.insert(record.mis_id.as_str());
        match by_mis.get(record.mis_id.as_str()) {
            None => {
                plan.inserts.push(StaffRow::from_record(new_id(), record));
                plan.summary.added += 1;
            }
            Some(current) => {
                let same = current.status == StaffStatus::Active
                    && current.given_name == record.given_name
                    && current.family_name == record.family_name
                    && current.email == record.email.as_str()
                    && current.job_title == record.job_title;
                if same {
                    plan.summary.unchanged += 1;
                } else {
                    plan.updates
                        .push(StaffRow::from_record(current.id.clone(), record));
                    plan.summary.updated += 1;
                }
            }
        }
    }
    for current in existing {
        if current.status == StaffStatus::Active && !seen.contains(current.mis_id.as_str()) {
            plan.mark_left.push(current.id.clone());
            plan.summary.marked_left += 1;
        }
    }
    plan
}

/// Filters of a staff listing.
#[derive(Debug, Clone, Default)]
pub struct StaffFilter {
    pub status: Option<StaffStatus>,
    /// Lower-cased text a given or family name must contain.
    pub name_contains: Option<String>,
    pub email: Option<Email>,
}

/// Keyset position in the staff listing order (family name, given name, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffCursor {
    pub family_name: String,
    pub given_name: String,
    pub id: String,
}

impl StaffCursor {
    pub fn of(member: &StaffMember) -> Self {
        Self {
            family_name: member.family_name.clone(),
            given_name: member.given_name.clone(),
            id: member.id.clone(),
        }
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(&[&self.family_name, &self.given_name, &self.id]).unwrap_or_default()
    }

    pub fn decode(text: &str) -> Option<Self> {
        let [family_name, given_name, id]: [String; 3] = serde_json::from_str(text).ok()?;
        Some(Self {
            family_name,
            given_name,
            id,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub email: Email,
    pub given_name: String,
    pub family_name: String,
    pub create_time: DateTime<Utc>,
}

/// An account to register; the password is already hashed.
#[derive(Clone)]
pub struct NewAccount {
    pub id: String,
    pub email: Email,
    pub given_name: String,
    pub family_name: String,
    pub password_hash: String,
    pub invitation_id: Option<String>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrgKind {
    Trust,
    School,
}

impl OrgKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Trust => "trust",
            OrgKind::School => "school",
        }
    }

    pub fn from_db(text: &str) -> Option<Self> {
        match text {
            "trust" => Some(OrgKind::Trust),
            "school" => Some(OrgKind::School),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantStatus {
    Pending,
    Active,
    Revoked,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Pending => "pending",
            GrantStatus::Active => "active",
            GrantStatus::Revoked => "revoked",
        }
    }

    pub fn from_db(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(GrantStatus::Pending),
            "active" => Some(GrantStatus::Active),
            "revoked" => Some(GrantStatus::Revoked),
            _ => None,
        }
    }
}

/// One product role at one organisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GrantSpec {
    pub kind: OrgKind,
    pub organization_id: String,
    pub product_key: String,
    pub role_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub invitation_id: String,
    pub trust_id: String,
    pub kind: OrgKind,
    pub organization_id: String,
    pub product_key: String,
    pub role_key: String,
    pub email: Email,
    pub account_id: Option<String>,
    pub status: GrantStatus,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

impl Grant {
    pub fn spec(&self) -> GrantSpec {
        GrantSpec {
            kind: self.kind,
            organization_id: self.organization_id.clone(),
            product_key: self.product_key.clone(),
            role_key: self.role_key.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantOutcome {
    Created,
    AlreadyGranted,
    AlreadyHeld,
}

/// The grants of one invitation, to make together.
#[derive(Debug, Clone)]
pub struct GrantBatch {
    pub invitation_id: String,
    pub trust_id: String,
    pub email: Email,
    pub staff_id: Option<String>,
    pub specs: Vec<GrantSpec>,
    pub activate: bool,
    pub now: DateTime<Utc>,
}

/// Classifies each requested grant against the invitation's own grants and the grants the
/// person already holds. `None` means "make it".
pub fn classify_grants(
    specs: &[GrantSpec],
    of_invitation: &[Grant],
    held: &[Grant],
) -> Vec<Option<(Grant, GrantOutcome)>> {
    let same = |g: &Grant, s: &GrantSpec| {
        g.organization_id == s.organization_id
            && g.product_key == s.product_key
            && g.role_key == s.role_key
    };
    specs
        .iter()
        .map(|spec| {
            if let Some(g) = of_invitation.iter().find(|g| same(g, spec)) {
                Some((g.clone(), GrantOutcome::AlreadyGranted))
            } else {
                held.iter()
                    .find(|g| g.status != GrantStatus::Revoked && same(g, spec))
                    .map(|g| (g.clone(), GrantOutcome::AlreadyHeld))
            }
        })
        .collect()
}

/// An active Portal administrator-role grant of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminGrant {
    pub trust_id: String,
    pub kind: OrgKind,
    pub role_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminDecision {
    Administrator,
    NotAdministrator,
    SchoolLevelOnly,
    OtherTrust,
}

/// Whether the holder of `grants` (active Portal administrator roles) administers `trust_id`,
/// and the role when they do (`account-owner` wins over `account-admin`).
pub fn decide_administrator(
    grants: &[AdminGrant],
    trust_id: &str,
) -> (AdminDecision, Option<String>) {
    let admin_grants = grants
        .iter()
        .filter(|g| ADMIN_ROLES.contains(&g.role_key.as_str()));
    let mut trust_roles: Vec<&str> = Vec::new();
    let mut school_level = false;
    let mut elsewhere = false;
    for grant in admin_grants {
        match (grant.trust_id == trust_id, grant.kind) {
            (true, OrgKind::Trust) => trust_roles.push(&grant.role_key),
            (true, OrgKind::School) => school_level = true,
            (false, _) => elsewhere = true,
        }
    }
    if !trust_roles.is_empty() {
        let role = ADMIN_ROLES
            .iter()
            .find(|r| trust_roles.contains(r))
            .map(|r| r.to_string());
        return (AdminDecision::Administrator, role);
    }
    let decision = if school_level {
        AdminDecision::SchoolLevelOnly
    } else if elsewhere {
        AdminDecision::OtherTrust
    } else {
        AdminDecision::NotAdministrator
    };
    (decision, None)
}

/// The product key administrators hold.
pub fn is_admin_grant(product_key: &str, role_key: &str) -> bool {
    product_key == PORTAL_PRODUCT && ADMIN_ROLES.contains(&role_key)
}

/// One product role at an organisation, as a person sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductAccess {
    pub product_key: String,
    pub role_key: String,
    pub status: GrantStatus,
}

/// Everything a person holds at one organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationAccess {
    pub kind: OrgKind,
    pub organization_id: String,
    pub trust_id: String,
    pub products: Vec<ProductAccess>,
}

impl OrganizationAccess {
    /// Sort and page key: by trust, the trust itself before its schools, then school id.
    pub fn key(&self) -> String {
        let rank = match self.kind {
            OrgKind::Trust => 0,
            OrgKind::School => 1,
        };
        format!("{}/{rank}/{}", self.trust_id, self.organization_id)
    }
}

/// Groups pending and active grants by organisation, in page-key order. Revoked grants are
/// left out.
pub fn group_access(grants: &[Grant]) -> Vec<OrganizationAccess> {
    let mut by_org: HashMap<(&str, OrgKind), OrganizationAccess> = HashMap::new();
    for grant in grants.iter().filter(|g| g.status != GrantStatus::Revoked) {
        let entry = by_org
            .entry((grant.organization_id.as_str(), grant.kind))
            .or_insert_with(|| OrganizationAccess {
                kind: grant.kind,
                organization_id: grant.organization_id.clone(),
                trust_id: grant.trust_id.clone(),
                products: Vec::new(),
            });
        entry.products.push(ProductAccess {
            product_key: grant.product_key.clone(),
            role_key: grant.role_key.clone(),
            status: grant.status,
        });
    }
    let mut access: Vec<OrganizationAccess> = by_org.into_values().collect();
    for entry in &mut access {
        entry
            .products
            .sort_by(|a, b| (&a.product_key, &a.role_key).cmp(&(&b.product_key, &b.role_key)));
    }
    access.sort_by_key(OrganizationAccess::key);
    access
}

/// Parses a catalogue key (product or role): short, lower-case letters, digits, `-`, `_`, `.`.
pub fn parse_key(raw: &str) -> Result<String, String> {
    let key = raw.trim();
    if key.is_empty() {
        return Err("is required".into());
    }
    if key.len() > 64 {
        return Err("is longer than 64 characters".into());
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
    {
        return Err("must use lower-case letters, digits, `-`, `_` or `.` only".into());
    }
    Ok(key.to_string())
}

/// Parses an optional AIP-155 request id: empty means none; otherwise a UUID.
pub fn parse_request_id(raw: &str) -> Result<Option<String>, String> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        portal_runtime::types::parse_id(raw).map(Some)
    }
}

/// Parses an optional free-text field: trimmed, at most `max` characters, no control
/// characters; empty stays empty.
pub fn parse_optional_text(raw: &str, max: usize) -> Result<String, String> {
    let text = raw.trim();
    if text.chars().count() > max {
        return Err(format!("is longer than {max} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(mis: &str, given: &str, email: &str) -> StaffRecord {
        StaffRecord {
            mis_id: mis.into(),
            given_name: given.into(),
            family_name: "Doe".into(),
            email: Email::parse(email).unwrap(),
            job_title: String::new(),
        }
    }

    fn stored(mis: &str, given: &str, email: &str, status: StaffStatus) -> ExistingStaff {
        ExistingStaff {
            id: format!("id-{mis}"),
            mis_id: mis.into(),
            given_name: given.into(),
            family_name: "Doe".into(),
            email: email.into(),
            job_title: String::new(),
            status,
        }
    }

    #[test]
    fn a_snapshot_adds_updates_marks_left_and_reactivates() {
        let existing = vec![
            stored("1", "Ann", "ann@s.org", StaffStatus::Active),
            stored("2", "Bob", "bob@s.org", StaffStatus::Active),
            stored("3", "Cat", "cat@s.org", StaffStatus::Active),
            stored("4", "Dan", "dan@s.org", StaffStatus::Left),
            stored("5", "Eve", "eve@s.org", StaffStatus::Left),
        ];
        let snapshot = vec![
            record("1", "Ann", "ann@s.org"),
            record("2", "Robert", "bob@s.org"),
            record("4", "Dan", "dan@s.org"),
            record("6", "Fay", "fay@s.org"),
        ];
        let plan = plan_sync(&existing, &snapshot);
        assert_eq!(
            plan.summary,
            SyncSummary {
                received: 4,
                added: 1,
                updated: 2,
                marked_left: 1,
                unchanged: 1
            }
        );
        assert_eq!(plan.mark_left, vec!["id-3".to_string()]);
        let updated: Vec<&str> = plan.updates.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(updated, vec!["id-2", "id-4"]);
        assert_eq!(plan.inserts[0].mis_id, "6");
    }

    #[test]
    fn a_school_admin_is_not_a_trust_admin() {
        let grants = vec![AdminGrant {
            trust_id: "t1".into(),
            kind: OrgKind::School,
            role_key: "account-admin".into(),
        }];
        assert_eq!(
            decide_administrator(&grants, "t1").0,
            AdminDecision::SchoolLevelOnly
        );
        assert_eq!(
            decide_administrator(&grants, "t2").0,
            AdminDecision::OtherTrust
        );
        assert_eq!(
            decide_administrator(&[], "t1").0,
            AdminDecision::NotAdministrator
        );
    }

    #[test]
    fn the_owner_role_is_reported_over_the_admin_role() {
        let grants = vec![
            AdminGrant {
                trust_id: "t1".into(),
                kind: OrgKind::Trust,
                role_key: "account-admin".into(),
            },
            AdminGrant {
                trust_id: "t1".into(),
                kind: OrgKind::Trust,
                role_key: "account-owner".into(),
            },
        ];
        assert_eq!(
            decide_administrator(&grants, "t1"),
            (AdminDecision::Administrator, Some("account-owner".into()))
        );
    }

    #[test]
    fn staff_cursors_round_trip() {
        let cursor = StaffCursor {
            family_name: "O'Neil".into(),
            given_name: "Zoë".into(),
            id: "x".into(),
        };
        assert_eq!(StaffCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(StaffCursor::decode("garbage"), None);
    }
}
