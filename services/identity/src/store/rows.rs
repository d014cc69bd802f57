//! Rows as the statements read them, and what they are in the domain.

use portal_runtime::clock::from_micros;
use portal_runtime::db::Text;
use portal_runtime::vocab::{
    AccountId, Email, GrantId, InvitationId, OrgKind, ProductKey, RoleKey, SchoolId, StaffId,
    TrustId,
};

use crate::domain::{
    Account, AdminGrant, ExistingStaff, Grant, GrantStatus, OrganizationId, School, StaffMember,
    StaffStatus, Trust,
};

/// Every column of a staff row, in [`StaffMemberRow`]'s order.
pub const STAFF_COLUMNS: &str = "id, trust_id, mis_id, given_name, family_name, email, \
                                 job_title, status, create_time, update_time";
/// Every column of a grant row but `staff_id`, in [`GrantRow`]'s order.
pub const GRANT_COLUMNS: &str = "id, invitation_id, trust_id, organization_kind, \
                                 organization_id, product_key, role_key, email, account_id, \
                                 status, create_time, update_time, previous_role_key";

#[derive(sqlx::FromRow)]
pub struct TrustRow {
    id: TrustId,
    name: String,
    create_time: i64,
}

impl From<TrustRow> for Trust {
    fn from(row: TrustRow) -> Self {
        Trust {
            id: row.id,
            name: row.name,
            create_time: from_micros(row.create_time),
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct SchoolRow {
    id: SchoolId,
    trust_id: TrustId,
    name: String,
    urn: Option<String>,
    create_time: i64,
}

impl From<SchoolRow> for School {
    fn from(row: SchoolRow) -> Self {
        School {
            id: row.id,
            trust_id: row.trust_id,
            name: row.name,
            urn: row.urn,
            create_time: from_micros(row.create_time),
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct StaffMemberRow {
    id: StaffId,
    trust_id: TrustId,
    mis_id: String,
    given_name: String,
    family_name: String,
    email: Email,
    job_title: String,
    status: Text<StaffStatus>,
    create_time: i64,
    update_time: i64,
}

impl From<StaffMemberRow> for StaffMember {
    fn from(row: StaffMemberRow) -> Self {
        StaffMember {
            id: row.id,
            trust_id: row.trust_id,
            mis_id: row.mis_id,
            given_name: row.given_name,
            family_name: row.family_name,
            email: row.email,
            job_title: row.job_title,
            status: row.status.into_inner(),
            create_time: from_micros(row.create_time),
            update_time: from_micros(row.update_time),
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct StaffWithAccountRow {
    #[sqlx(flatten)]
    pub staff: StaffMemberRow,
    pub account_id: Option<AccountId>,
}

/// A staff row as the sync compares it.
#[derive(sqlx::FromRow)]
pub struct ExistingStaffRow {
    id: StaffId,
    mis_id: String,
    given_name: String,
    family_name: String,
    email: String,
    job_title: String,
    status: Text<StaffStatus>,
}

impl From<ExistingStaffRow> for ExistingStaff {
    fn from(row: ExistingStaffRow) -> Self {
        ExistingStaff {
            id: row.id,
            mis_id: row.mis_id,
            given_name: row.given_name,
            family_name: row.family_name,
            email: row.email,
            job_title: row.job_title,
            status: row.status.into_inner(),
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct AccountRow {
    id: AccountId,
    email: Email,
    given_name: String,
    family_name: String,
    create_time: i64,
}

impl From<AccountRow> for Account {
    fn from(row: AccountRow) -> Self {
        Account {
            id: row.id,
            email: row.email,
            given_name: row.given_name,
            family_name: row.family_name,
            create_time: from_micros(row.create_time),
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct CredentialsRow {
    #[sqlx(flatten)]
    account: AccountRow,
    password_hash: String,
}

/// The account and its password hash.
impl From<CredentialsRow> for (Account, String) {
    fn from(row: CredentialsRow) -> Self {
        (row.account.into(), row.password_hash)
    }
}

#[derive(sqlx::FromRow)]
pub struct GrantRow {
    id: GrantId,
    invitation_id: InvitationId,
    trust_id: TrustId,
    organization_kind: Text<OrgKind>,
    organization_id: OrganizationId,
    product_key: ProductKey,
    role_key: RoleKey,
    email: Email,
    account_id: Option<AccountId>,
    status: Text<GrantStatus>,
    create_time: i64,
    update_time: i64,
    previous_role_key: Option<RoleKey>,
}

impl From<GrantRow> for Grant {
    fn from(row: GrantRow) -> Self {
        Grant {
            id: row.id,
            invitation_id: row.invitation_id,
            trust_id: row.trust_id,
            kind: row.organization_kind.into_inner(),
            organization_id: row.organization_id,
            product_key: row.product_key,
            role_key: row.role_key,
            email: row.email,
            account_id: row.account_id,
            status: row.status.into_inner(),
            create_time: from_micros(row.create_time),
            update_time: from_micros(row.update_time),
            previous_role_key: row.previous_role_key,
        }
    }
}

/// Rows of one statement, as grants.
pub fn grants(rows: Vec<GrantRow>) -> Vec<Grant> {
    rows.into_iter().map(Grant::from).collect()
}

#[derive(sqlx::FromRow)]
pub struct AdminGrantRow {
    trust_id: TrustId,
    organization_kind: Text<OrgKind>,
    role_key: RoleKey,
}

impl From<AdminGrantRow> for AdminGrant {
    fn from(row: AdminGrantRow) -> Self {
        AdminGrant {
            trust_id: row.trust_id,
            kind: row.organization_kind.into_inner(),
            role_key: row.role_key,
        }
    }
}
