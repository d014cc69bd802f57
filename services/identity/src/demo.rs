//! Operator data: the demo trust of `portal up`, and the first administrator of a trust.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use portal_runtime::auth::admin::portal_product;
use portal_runtime::config::DatabaseArgs;
use portal_runtime::db::DbPool;
use portal_runtime::demo::{
    self, ADMIN_EMAIL, ADMIN_PASSWORD, EXISTING_USER_PASSWORD, OTHER_ADMIN_EMAIL,
    OTHER_ADMIN_PASSWORD, OTHER_SCHOOL, OTHER_TRUST_ID, OTHER_TRUST_NAME, SCHOOL_ADMIN_PASSWORD,
    SCHOOLS, STAFF, TRUST_ID, TRUST_NAME,
};
use portal_runtime::vocab::{
    AccountId, Email, Id, InvitationId, OrgKind, Password, ProductKey, RoleKey, SchoolId, StaffId,
    TrustId, parse_name,
};

use crate::MIGRATIONS;
use crate::domain::{
    GrantBatch, GrantSpec, MAX_PERSON_NAME, NewAccount, NewSchool, NewTrust, StaffRecord,
};
use crate::error::Error;
use crate::hashing;
use crate::store::{self, Store};

/// Invitation ids of the seeded grants ("made by the seed", not by a real invitation).
const SEED_INVITATIONS: [InvitationId; 4] = [
    InvitationId::from_u128(0x0000_0000_0000_4000_8000_0000_0000_00a1),
    InvitationId::from_u128(0x0000_0000_0000_4000_8000_0000_0000_00a2),
    InvitationId::from_u128(0x0000_0000_0000_4000_8000_0000_0000_00a3),
    InvitationId::from_u128(0x0000_0000_0000_4000_8000_0000_0000_00a4),
];

/// The other trust's own staff: (staff id, MIS id, given, family, email, job title).
const OTHER_STAFF: [demo::DemoStaff; 3] = [
    (
        "7f3c2a10-0000-4000-8000-000000002001",
        "SB2001",
        "Uma",
        "Reid",
        "uma.reid@southbank.example.org",
        "Head Teacher",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000002002",
        "SB2002",
        "Victor",
        "Nash",
        "victor.nash@southbank.example.org",
        "Teacher",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000002003",
        "SB2003",
        "Wendy",
        "Price",
        "wendy.price@southbank.example.org",
        "Office Manager",
    ),
];

async fn open(database: &DatabaseArgs) -> anyhow::Result<DbPool> {
    let pool = DbPool::connect_lazy(&database.settings())?;
    pool.migrate(&MIGRATIONS)
        .await
        .context("migrating the identity database")?;
    Ok(pool)
}

/// A demo id, or which one is not an id.
fn id<K>(text: &str) -> anyhow::Result<Id<K>> {
    Id::parse(text).map_err(|e| anyhow::anyhow!("demo id {e}"))
}

fn demo_password(text: &str) -> anyhow::Result<Password> {
    Password::parse(text).map_err(|e| anyhow::anyhow!("demo password {e}"))
}

fn demo_email(text: &str) -> anyhow::Result<Email> {
    Email::parse(text).map_err(|e| anyhow::anyhow!("demo email {e}"))
}

async fn ensure_trust(
    store: &dyn Store,
    id: TrustId,
    name: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if store.get_trust(id).await?.is_none() {
        let new = NewTrust {
            name: name.into(),
            request_id: None,
        };
        store.create_trust(id, new, now).await?;
    }
    Ok(())
}

async fn ensure_school(
    store: &dyn Store,
    trust_id: TrustId,
    (school_id, name, urn): (&str, &str, &str),
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let school_id: SchoolId = id(school_id)?;
    if store.get_school(school_id).await?.is_none() {
        let new = NewSchool {
            trust_id,
            name: name.into(),
            urn: Some(urn.into()),
            request_id: None,
        };
        store.create_school(school_id, new, now).await?;
    }
    Ok(())
}

fn staff_records(staff: &[demo::DemoStaff]) -> anyhow::Result<Vec<(StaffId, StaffRecord)>> {
    staff
        .iter()
        .map(|(staff_id, mis_id, given, family, email, title)| {
            Ok((
                id(staff_id)?,
                StaffRecord {
                    mis_id: mis_id.to_string(),
                    given_name: given.to_string(),
                    family_name: family.to_string(),
                    email: demo_email(email)?,
                    job_title: title.to_string(),
                },
            ))
        })
        .collect()
}

/// The account of `email`, registered with `password` when there is none yet.
async fn ensure_account(
    store: &dyn Store,
    email: &Email,
    given_name: &str,
    family_name: &str,
    password: Password,
    now: DateTime<Utc>,
) -> anyhow::Result<AccountId> {
    if let Some(account) = store.account_by_email(email).await? {
        return Ok(account.id);
    }
    let new = NewAccount {
        email: email.clone(),
        given_name: given_name.into(),
        family_name: family_name.into(),
        password_hash: hashing::hash_password(password).await?,
        invitation_id: None,
    };
    match store.create_account(AccountId::generate(), new, now).await {
        Ok(account) => Ok(account.id),
        // Created concurrently: reuse it.
        Err(Error::AccountExists) => store
            .account_by_email(email)
            .await?
            .map(|a| a.id)
            .context("the account vanished"),
        Err(e) => Err(e.into()),
    }
}

/// One active grant for an existing account.
async fn ensure_grant(
    store: &dyn Store,
    invitation_id: InvitationId,
    trust_id: TrustId,
    email: &Email,
    staff_id: Option<StaffId>,
    spec: GrantSpec,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let batch = GrantBatch {
        invitation_id,
        trust_id,
        email: email.clone(),
        staff_id,
        specs: vec![spec],
        activate: true,
    };
    store.batch_grant(batch, now).await?;
    Ok(())
}

fn spec<K>(kind: OrgKind, organization_id: Id<K>, product: ProductKey, role: &str) -> GrantSpec {
    GrantSpec {
        kind,
        organization_id: organization_id.cast(),
        product_key: product,
        role_key: RoleKey::from_known(role),
    }
}

/// Seeds the demo data for `portal up`; idempotent (a second call changes nothing).
pub async fn seed_demo(database: &DatabaseArgs) -> anyhow::Result<()> {
    let pool = open(database).await?;
    let store = store::open(&pool);
    let result = seed_into(store.as_ref(), Utc::now()).await;
    pool.close().await;
    result
}

/// A demo person: their account, and the one grant the seed makes them.
struct DemoMember {
    email: &'static str,
    given_name: &'static str,
    family_name: &'static str,
    password: &'static str,
    /// Their record in the trust's MIS, when they have one.
    staff_id: Option<&'static str>,
    trust_id: TrustId,
    access: GrantSpec,
}

async fn seed_into(store: &dyn Store, now: DateTime<Utc>) -> anyhow::Result<()> {
    let trust_id: TrustId = id(TRUST_ID)?;
    let other_trust_id: TrustId = id(OTHER_TRUST_ID)?;
    let first_school: SchoolId = id(SCHOOLS[0].0)?;
    ensure_trust(store, trust_id, TRUST_NAME, now).await?;
    ensure_trust(store, other_trust_id, OTHER_TRUST_NAME, now).await?;
    for school in SCHOOLS {
        ensure_school(store, trust_id, school, now).await?;
    }
    ensure_school(store, other_trust_id, OTHER_SCHOOL, now).await?;
    store
        .insert_staff_if_missing(trust_id, staff_records(&STAFF)?, now)
        .await?;
    store
        .insert_staff_if_missing(other_trust_id, staff_records(&OTHER_STAFF)?, now)
        .await?;

    let (existing_staff, _, existing_given, existing_family, existing_email, _) = STAFF[1];
    let (school_staff, _, school_given, school_family, school_email, _) = STAFF[6];
    let members = [
        DemoMember {
            email: ADMIN_EMAIL,
            given_name: "Northfield",
            family_name: "Administrator",
            password: ADMIN_PASSWORD,
            staff_id: None,
            trust_id,
            access: spec(OrgKind::Trust, trust_id, portal_product(), "account-owner"),
        },
        DemoMember {
            email: existing_email,
            given_name: existing_given,
            family_name: existing_family,
            password: EXISTING_USER_PASSWORD,
            staff_id: Some(existing_staff),
            trust_id,
            access: spec(
                OrgKind::School,
                first_school,
                ProductKey::from_known("websites-cms"),
                "writer",
            ),
        },
        DemoMember {
            email: school_email,
            given_name: school_given,
            family_name: school_family,
            password: SCHOOL_ADMIN_PASSWORD,
            staff_id: Some(school_staff),
            trust_id,
            access: spec(
                OrgKind::School,
                first_school,
                portal_product(),
                "account-admin",
            ),
        },
        DemoMember {
            email: OTHER_ADMIN_EMAIL,
            given_name: "Southbank",
            family_name: "Administrator",
            password: OTHER_ADMIN_PASSWORD,
            staff_id: None,
            trust_id: other_trust_id,
            access: spec(
                OrgKind::Trust,
                other_trust_id,
                portal_product(),
                "account-owner",
            ),
        },
    ];
    for (member, invitation_id) in members.into_iter().zip(SEED_INVITATIONS) {
        let email = demo_email(member.email)?;
        let password = demo_password(member.password)?;
        let (given, family) = (member.given_name, member.family_name);
        ensure_account(store, &email, given, family, password, now).await?;
        let staff_id = member.staff_id.map(id).transpose()?;
        let (trust_id, access) = (member.trust_id, member.access);
        ensure_grant(
            store,
            invitation_id,
            trust_id,
            &email,
            staff_id,
            access,
            now,
        )
        .await?;
    }
    tracing::info!("identity demo data seeded");
    Ok(())
}

/// Makes `email` an administrator (Portal `account-owner`, active, at trust level) of an
/// existing trust, registering the account with `password` when it has none. Idempotent: an
/// existing account keeps its password and an administrator stays one. Returns the account id.
pub async fn bootstrap_admin(
    database: &DatabaseArgs,
    trust_id: &str,
    email: &str,
    given_name: &str,
    family_name: &str,
    password: &str,
) -> anyhow::Result<String> {
    let trust_id = TrustId::parse(trust_id).map_err(|e| anyhow::anyhow!("trust id {e}"))?;
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("email {e}"))?;
    let given_name =
        parse_name(given_name, MAX_PERSON_NAME).map_err(|e| anyhow::anyhow!("given name {e}"))?;
    let family_name =
        parse_name(family_name, MAX_PERSON_NAME).map_err(|e| anyhow::anyhow!("family name {e}"))?;
    let password = Password::parse(password).map_err(|e| anyhow::anyhow!("password {e}"))?;
    let pool = open(database).await?;
    let store = store::open(&pool);
    let result = async {
        let now = Utc::now();
        if store.get_trust(trust_id).await?.is_none() {
            anyhow::bail!("trust {trust_id} does not exist; create it first");
        }
        let store = store.as_ref();
        let account_id =
            ensure_account(store, &email, &given_name, &family_name, password, now).await?;
        // A fresh invitation id: the grant is skipped as ALREADY_HELD when the account is
        // already an owner, so repeating the command changes nothing.
        let owner = spec(OrgKind::Trust, trust_id, portal_product(), "account-owner");
        ensure_grant(
            store,
            InvitationId::generate(),
            trust_id,
            &email,
            None,
            owner,
            now,
        )
        .await?;
        Ok(account_id.to_string())
    }
    .await;
    pool.close().await;
    result
}
