//! A trust's staff directory, kept in step with its MIS by full snapshots (rule R13).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use portal_runtime::vocab::{AccountId, Email, StaffId, TrustId};

/// Longest MIS id.
pub const MAX_MIS_ID: usize = 64;
/// Longest job title.
pub const MAX_JOB_TITLE: usize = 200;
/// Most records one snapshot may carry.
pub const MAX_SNAPSHOT: usize = 1_000_000;

/// Stored as `active` or `left`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumString, strum::IntoStaticStr, strum::Display,
)]
#[strum(serialize_all = "lowercase")]
pub enum StaffStatus {
    Active,
    Left,
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

/// A full snapshot of a trust's MIS staff: its MIS ids and emails are each unique.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub trust_id: TrustId,
    pub records: Vec<StaffRecord>,
}

/// A member of a trust's staff directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    pub id: StaffId,
    pub trust_id: TrustId,
    pub mis_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Email,
    pub job_title: String,
    pub status: StaffStatus,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// A staff member as the directory shows them: with the id of their account once they have
/// signed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffEntry {
    pub member: StaffMember,
    pub account_id: Option<AccountId>,
}

/// What a sync changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncSummary {
    pub received: u32,
    pub added: u32,
    pub updated: u32,
    pub marked_left: u32,
    pub unchanged: u32,
    /// Grants at the trust and its schools suspended because their holder left.
    pub suspended_grants: u32,
    /// Suspended grants in force again because their holder is listed again.
    pub restored_grants: u32,
    /// The sync suspended the trust's last active Account Owner: no one administers the
    /// trust as its owner any more.
    pub last_account_owner_left: bool,
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

/// A staff row as stored, loaded for the diff. The email is compared as stored text.
#[derive(Debug, Clone)]
pub struct ExistingStaff {
    pub id: StaffId,
    pub mis_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: String,
    pub job_title: String,
    pub status: StaffStatus,
}

impl ExistingStaff {
    /// Whether `record` would leave this row as it is (and active).
    fn unchanged_by(&self, record: &StaffRecord) -> bool {
        self.status == StaffStatus::Active
            && self.given_name == record.given_name
            && self.family_name == record.family_name
            && self.email == record.email.as_str()
            && self.job_title == record.job_title
    }
}

/// A row to insert or update (the id is the stored id for updates, a new one for inserts).
#[derive(Debug, Clone)]
pub struct StaffRow {
    pub id: StaffId,
    pub mis_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Email,
    pub job_title: String,
    pub search_key: String,
}

impl StaffRow {
    pub fn new(id: StaffId, record: StaffRecord) -> Self {
        Self {
            id,
            search_key: staff_search_key(&record.given_name, &record.family_name),
            mis_id: record.mis_id,
            given_name: record.given_name,
            family_name: record.family_name,
            email: record.email,
            job_title: record.job_title,
        }
    }
}

/// The writes a snapshot needs: rows to add, rows to update (and make ACTIVE), ids to mark
/// LEFT.
#[derive(Debug, Default)]
pub struct SyncPlan {
    pub inserts: Vec<StaffRow>,
    pub updates: Vec<StaffRow>,
    pub mark_left: Vec<StaffId>,
    /// LEFT records the snapshot lists again (they are among `updates`).
    pub reactivated: Vec<StaffId>,
    pub summary: SyncSummary,
}

/// Diffs a full snapshot against the stored directory of the trust. Records are matched on
/// MIS id; the snapshot must not repeat a MIS id (the edge refuses such snapshots).
pub fn plan_sync(existing: &[ExistingStaff], snapshot: Vec<StaffRecord>) -> SyncPlan {
    let mut by_mis: HashMap<&str, usize> = HashMap::with_capacity(existing.len());
    for (index, current) in existing.iter().enumerate() {
        by_mis.insert(current.mis_id.as_str(), index);
    }
    let mut seen = vec![false; existing.len()];
    let mut plan = SyncPlan {
        summary: SyncSummary {
            received: u32::try_from(snapshot.len()).unwrap_or(u32::MAX),
            ..SyncSummary::default()
        },
        ..SyncPlan::default()
    };
    for record in snapshot {
        match by_mis.get(record.mis_id.as_str()).copied() {
            None => {
                plan.inserts
                    .push(StaffRow::new(StaffId::generate(), record));
                plan.summary.added += 1;
            }
            Some(index) => {
                seen[index] = true;
                let current = &existing[index];
                if current.unchanged_by(&record) {
                    plan.summary.unchanged += 1;
                } else {
                    if current.status == StaffStatus::Left {
                        plan.reactivated.push(current.id);
                    }
                    plan.updates.push(StaffRow::new(current.id, record));
                    plan.summary.updated += 1;
                }
            }
        }
    }
    for (current, seen) in existing.iter().zip(seen) {
        if current.status == StaffStatus::Active && !seen {
            plan.mark_left.push(current.id);
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
    pub id: StaffId,
}

impl StaffCursor {
    pub fn of(member: &StaffMember) -> Self {
        Self {
            family_name: member.family_name.clone(),
            given_name: member.given_name.clone(),
            id: member.id,
        }
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(&[&self.family_name, &self.given_name, &self.id.to_string()])
            .unwrap_or_default()
    }

    pub fn decode(text: &str) -> Option<Self> {
        let [family_name, given_name, id]: [String; 3] = serde_json::from_str(text).ok()?;
        Some(Self {
            family_name,
            given_name,
            id: StaffId::parse(&id).ok()?,
        })
    }
}

/// A page of a trust's staff directory, filtered, in listing order.
#[derive(Debug, Clone)]
pub struct StaffQuery {
    pub trust_id: TrustId,
    pub filter: StaffFilter,
    pub after: Option<StaffCursor>,
    pub limit: i64,
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

    fn stored(n: u128, given: &str, email: &str, status: StaffStatus) -> ExistingStaff {
        ExistingStaff {
            id: StaffId::from_u128(n),
            mis_id: n.to_string(),
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
            stored(1, "Ann", "ann@s.org", StaffStatus::Active),
            stored(2, "Bob", "bob@s.org", StaffStatus::Active),
            stored(3, "Cat", "cat@s.org", StaffStatus::Active),
            stored(4, "Dan", "dan@s.org", StaffStatus::Left),
            stored(5, "Eve", "eve@s.org", StaffStatus::Left),
        ];
        let snapshot = vec![
            record("1", "Ann", "ann@s.org"),
            record("2", "Robert", "bob@s.org"),
            record("4", "Dan", "dan@s.org"),
            record("6", "Fay", "fay@s.org"),
        ];
        let plan = plan_sync(&existing, snapshot);
        assert_eq!(
            plan.summary,
            SyncSummary {
                received: 4,
                added: 1,
                updated: 2,
                marked_left: 1,
                unchanged: 1,
                ..SyncSummary::default()
            }
        );
        assert_eq!(plan.mark_left, vec![StaffId::from_u128(3)]);
        assert_eq!(plan.reactivated, vec![StaffId::from_u128(4)], "Dan is back");
        let updated: Vec<StaffId> = plan.updates.iter().map(|r| r.id).collect();
        assert_eq!(updated, vec![StaffId::from_u128(2), StaffId::from_u128(4)]);
        assert_eq!(plan.inserts[0].mis_id, "6");
    }

    #[test]
    fn staff_cursors_round_trip() {
        let cursor = StaffCursor {
            family_name: "O'Neil".into(),
            given_name: "Zoë".into(),
            id: StaffId::generate(),
        };
        assert_eq!(StaffCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(StaffCursor::decode("garbage"), None);
    }

    #[test]
    fn staff_statuses_are_stored_in_lower_case() {
        assert_eq!(<&str>::from(StaffStatus::Left), "left");
        assert_eq!("active".parse::<StaffStatus>(), Ok(StaffStatus::Active));
        assert!("gone".parse::<StaffStatus>().is_err());
    }
}

/// A staff record whose status changed: marked LEFT, or ACTIVE again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub trust_id: TrustId,
    pub staff_id: StaffId,
    pub status: StaffStatus,
    pub change_time: DateTime<Utc>,
}

/// Where a page of status changes starts: after this change (time in micros, staff id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChangeCursor {
    pub micros: i64,
    pub staff_id: StaffId,
}

impl StatusChangeCursor {
    pub fn of(change: &StatusChange) -> Self {
        Self {
            micros: portal_runtime::clock::to_micros(change.change_time),
            staff_id: change.staff_id,
        }
    }

    pub fn encode(&self) -> String {
        format!("{}/{}", self.micros, self.staff_id)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('/')?;
        Some(Self {
            micros: micros.parse().ok()?,
            staff_id: StaffId::parse(id).ok()?,
        })
    }
}

/// A parsed ListStaffStatusChanges request.
#[derive(Debug, Clone)]
pub struct StatusChangeQuery {
    /// Changes at or after this instant (micros).
    pub since: i64,
    pub after: Option<StatusChangeCursor>,
    pub limit: i64,
}
