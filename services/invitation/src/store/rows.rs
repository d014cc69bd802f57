//! The rows of the invitation tables as sqlx reads them, the JSON the outcome columns hold,
//! and their conversion to and from the domain.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sqlx::query::Query;
use sqlx::{Database, FromRow};

use portal_runtime::clock::{from_micros, to_micros};
use portal_runtime::db::{Column, Text};
use portal_runtime::vocab::{
    AccountId, Email, Id, InvitationId, OrgKind, ProductKey, RoleKey, SchoolId, StaffId, StepId,
    TrustId,
};

use crate::domain::{
    Delivery, GrantState, GrantedAccess, Invitation, LinkHash, Org, RevokeReason, SchoolAccess,
    SkipReason, SkippedAccess, Status, Step, StepKind, TrustAccess,
};

/// The columns of an invitation row, in table order, of the table aliased `i`.
pub const INVITATION_COLUMNS: &str = "i.id, i.trust_id, i.trust_name, i.staff_id, \
    i.staff_email, i.staff_given_name, i.inviter_account_id, i.trust_product_key, \
    i.trust_role_key, i.school_access, i.status, i.delivery, i.granted, i.skipped, \
    i.expire_time, i.current_link_hash, i.accepting, i.account_id, i.create_time, \
    i.update_time, i.accept_until, i.settled_by, i.revoke_reason";

/// An invitation row.
#[derive(FromRow)]
pub struct InvitationRow {
    id: InvitationId,
    trust_id: TrustId,
    trust_name: String,
    staff_id: StaffId,
    staff_email: Email,
    staff_given_name: String,
    inviter_account_id: AccountId,
    trust_product_key: ProductKey,
    trust_role_key: RoleKey,
    /// JSON: [`SchoolAccessJson`], or null.
    school_access: Option<String>,
    status: Text<Status>,
    delivery: Text<Delivery>,
    /// JSON: an array of [`GrantJson`].
    granted: String,
    /// JSON: an array of [`SkippedJson`].
    skipped: String,
    expire_time: Option<i64>,
    current_link_hash: Option<LinkHash>,
    accepting: bool,
    account_id: Option<AccountId>,
    create_time: i64,
    update_time: i64,
    accept_until: i64,
    settled_by: Option<InvitationId>,
    revoke_reason: Option<Text<RevokeReason>>,
}

impl TryFrom<InvitationRow> for Invitation {
    type Error = sqlx::Error;

    fn try_from(row: InvitationRow) -> Result<Self, Self::Error> {
        let school_access = match row.school_access {
            Some(text) => Some(from_json::<SchoolAccessJson>(&text, "school access")?.into()),
            None => None,
        };
        let granted: Vec<GrantJson> = from_json(&row.granted, "grants")?;
        let skipped: Vec<SkippedJson> = from_json(&row.skipped, "skipped pairs")?;
        Ok(Invitation {
            id: row.id,
            trust_id: row.trust_id,
            trust_name: row.trust_name,
            staff_id: row.staff_id,
            staff_email: row.staff_email,
            staff_given_name: row.staff_given_name,
            inviter_account_id: row.inviter_account_id,
            trust_access: TrustAccess {
                product_key: row.trust_product_key,
                role_key: row.trust_role_key,
            },
            school_access,
            status: row.status.into_inner(),
            delivery: row.delivery.into_inner(),
            granted: granted.into_iter().map(GrantedAccess::from).collect(),
            skipped: skipped.into_iter().map(SkippedAccess::from).collect(),
            expire_time: row.expire_time.map(from_micros),
            current_link_hash: row.current_link_hash,
            accepting: row.accepting,
            account_id: row.account_id,
            create_time: from_micros(row.create_time),
            update_time: from_micros(row.update_time),
            accept_until: row.accept_until,
            settled_by: row.settled_by,
            revoke_reason: row.revoke_reason.map(Text::into_inner),
        })
    }
}

/// Binds the twenty columns of `invitation`'s row, in table order, as the next parameters.
pub fn bind_invitation<'q, DB>(
    query: Query<'q, DB, DB::Arguments<'q>>,
    invitation: &'q Invitation,
) -> Query<'q, DB, DB::Arguments<'q>>
where
    DB: Database,
    String: Column<DB>,
    i64: Column<DB>,
    bool: Column<DB>,
    Option<String>: Column<DB>,
    Option<i64>: Column<DB>,
{
    query
        .bind(invitation.id)
        .bind(invitation.trust_id)
        .bind(&invitation.trust_name)
        .bind(invitation.staff_id)
        .bind(&invitation.staff_email)
        .bind(&invitation.staff_given_name)
        .bind(invitation.inviter_account_id)
        .bind(&invitation.trust_access.product_key)
        .bind(&invitation.trust_access.role_key)
        .bind(invitation.school_access.as_ref().map(school_access_json))
        .bind(Text(invitation.status))
        .bind(Text(invitation.delivery))
        .bind(granted_json(&invitation.granted))
        .bind(skipped_json(&invitation.skipped))
        .bind(invitation.expire_time.map(to_micros))
        .bind(invitation.current_link_hash.as_ref().map(LinkHash::to_text))
        .bind(invitation.accepting)
        .bind(invitation.account_id.map(String::from))
        .bind(to_micros(invitation.create_time))
        .bind(to_micros(invitation.update_time))
}

/// An outbox row a claim returns.
#[derive(FromRow)]
pub struct StepRow {
    id: StepId,
    invitation_id: InvitationId,
    kind: Text<StepKind>,
    payload: String,
    attempts: i32,
}

impl From<StepRow> for Step {
    fn from(row: StepRow) -> Self {
        Step {
            id: row.id,
            invitation_id: row.invitation_id,
            kind: row.kind.into_inner(),
            payload: row.payload,
            attempts: row.attempts,
        }
    }
}

fn from_json<'a, T: Deserialize<'a>>(text: &'a str, what: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text)
        .map_err(|_| sqlx::Error::Decode(format!("invalid stored {what}").into()))
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// The `school_access` column. Keys are written as they are and read back without checking
/// them again, as the key columns are.
#[derive(Serialize, Deserialize)]
struct SchoolAccessJson<'a> {
    product_keys: Vec<Cow<'a, str>>,
    role_key: Cow<'a, str>,
    school_ids: Cow<'a, [SchoolId]>,
}

fn school_access_json(access: &SchoolAccess) -> String {
    to_json(&SchoolAccessJson {
        product_keys: access
            .product_keys
            .iter()
            .map(|k| Cow::Borrowed(k.as_str()))
            .collect(),
        role_key: Cow::Borrowed(access.role_key.as_str()),
        school_ids: Cow::Borrowed(&access.school_ids),
    })
}

impl From<SchoolAccessJson<'_>> for SchoolAccess {
    fn from(json: SchoolAccessJson<'_>) -> Self {
        SchoolAccess {
            product_keys: json
                .product_keys
                .iter()
                .map(|k| ProductKey::from_known(k))
                .collect(),
            role_key: RoleKey::from_known(&json.role_key),
            school_ids: json.school_ids.into_owned(),
        }
    }
}

/// [`OrgKind`] as the `granted` column names it: `Trust`, `School`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "OrgKind")]
enum OrgKindJson {
    Trust,
    School,
}

/// What an organisation's id is read as before its kind is known.
enum AnyOrg {}

/// One element of the `granted` column.
#[derive(Serialize, Deserialize)]
struct GrantJson<'a> {
    #[serde(with = "OrgKindJson")]
    org_kind: OrgKind,
    org_id: Id<AnyOrg>,
    product_key: Cow<'a, str>,
    role_key: Cow<'a, str>,
    state: GrantState,
    /// Written only when set, so the column keeps the JSON it always held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_role_key: Option<Cow<'a, str>>,
}

/// The `granted` column.
pub fn granted_json(granted: &[GrantedAccess]) -> String {
    let json: Vec<GrantJson> = granted
        .iter()
        .map(|g| GrantJson {
            org_kind: g.org.kind(),
            org_id: g.org.id(),
            product_key: Cow::Borrowed(g.product_key.as_str()),
            role_key: Cow::Borrowed(g.role_key.as_str()),
            state: g.state,
            previous_role_key: g
                .previous_role_key
                .as_ref()
                .map(|r| Cow::Borrowed(r.as_str())),
        })
        .collect();
    to_json(&json)
}

impl From<GrantJson<'_>> for GrantedAccess {
    fn from(json: GrantJson<'_>) -> Self {
        GrantedAccess {
            org: Org::new(json.org_kind, json.org_id),
            product_key: ProductKey::from_known(&json.product_key),
            role_key: RoleKey::from_known(&json.role_key),
            state: json.state,
            previous_role_key: json.previous_role_key.map(|r| RoleKey::from_known(&r)),
        }
    }
}

/// One element of the `skipped` column.
#[derive(Serialize, Deserialize)]
struct SkippedJson<'a> {
    school_id: SchoolId,
    product_key: Cow<'a, str>,
    reason: SkipReason,
    detail: Cow<'a, str>,
}

fn skipped_json(skipped: &[SkippedAccess]) -> String {
    let json: Vec<SkippedJson> = skipped
        .iter()
        .map(|s| SkippedJson {
            school_id: s.school_id,
            product_key: Cow::Borrowed(s.product_key.as_str()),
            reason: s.reason,
            detail: Cow::Borrowed(&s.detail),
        })
        .collect();
    to_json(&json)
}

impl From<SkippedJson<'_>> for SkippedAccess {
    fn from(json: SkippedJson<'_>) -> Self {
        SkippedAccess {
            school_id: json.school_id,
            product_key: ProductKey::from_known(&json.product_key),
            reason: json.reason,
            detail: json.detail.into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_columns_keep_the_json_they_always_held() {
        let trust = TrustId::parse("7f3c2a10-0000-4000-8000-000000000001").unwrap();
        let school = SchoolId::parse("7f3c2a10-0000-4000-8000-000000000101").unwrap();
        let granted = vec![
            GrantedAccess {
                org: Org::Trust(trust),
                product_key: ProductKey::from_known("portal"),
                role_key: RoleKey::from_known("full-edit"),
                state: GrantState::Pending,
                previous_role_key: None,
            },
            GrantedAccess {
                org: Org::School(school),
                product_key: ProductKey::from_known("comms-hub"),
                role_key: RoleKey::from_known("writer"),
                state: GrantState::AlreadyHeld,
                previous_role_key: None,
            },
        ];
        let text = granted_json(&granted);
        assert_eq!(
            text,
            r#"[{"org_kind":"Trust","org_id":"7f3c2a10-0000-4000-8000-000000000001","product_key":"portal","role_key":"full-edit","state":"Pending"},{"org_kind":"School","org_id":"7f3c2a10-0000-4000-8000-000000000101","product_key":"comms-hub","role_key":"writer","state":"AlreadyHeld"}]"#
        );
        let back: Vec<GrantJson> = from_json(&text, "grants").unwrap();
        let back: Vec<GrantedAccess> = back.into_iter().map(GrantedAccess::from).collect();
        assert_eq!(back, granted);

        let skipped = vec![SkippedAccess {
            school_id: school,
            product_key: ProductKey::from_known("sonar"),
            reason: SkipReason::NoActiveSubscription,
            detail: "the school has no subscription to this product".into(),
        }];
        assert_eq!(
            skipped_json(&skipped),
            r#"[{"school_id":"7f3c2a10-0000-4000-8000-000000000101","product_key":"sonar","reason":"NO_ACTIVE_SUBSCRIPTION","detail":"the school has no subscription to this product"}]"#
        );
        let access = SchoolAccess {
            product_keys: vec![ProductKey::from_known("sonar")],
            role_key: RoleKey::from_known("viewer"),
            school_ids: vec![school],
        };
        let text = school_access_json(&access);
        assert_eq!(
            text,
            r#"{"product_keys":["sonar"],"role_key":"viewer","school_ids":["7f3c2a10-0000-4000-8000-000000000101"]}"#
        );
        let back: SchoolAccessJson = from_json(&text, "school access").unwrap();
        assert_eq!(SchoolAccess::from(back), access);
    }
}
