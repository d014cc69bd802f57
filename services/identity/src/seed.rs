//! Operator data: the demo trust of `portal up`, and the first administrator of a trust.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use portal_runtime::config::DatabaseArgs;
use portal_runtime::db::DbPool;
use portal_runtime::demo::{
    self, ADMIN_EMAIL, ADMIN_PASSWORD, EXISTING_USER_PASSWORD, OTHER_ADMIN_EMAIL,
    OTHER_ADMIN_PASSWORD, OTHER_SCHOOL, OTHER_TRUST_ID, OTHER_TRUST_NAME, PORTAL_PRODUCT,
    SCHOOL_ADMIN_PASSWORD, SCHOOLS, STAFF, TRUST_ID, TRUST_NAME,
};
use portal_runtime::types::{Email, new_id, parse_id, parse_name};

use crate::MIGRATIONS;
use crate::domain::{
    GrantBatch, GrantSpec, MAX_PERSON_NAME, NewAccount, NewSchool, NewTrust, OrgKind, StaffRecord,
};
use crate::password::{self, Password};
use crate::storage::{self, Store};

/// Invitation ids of the seeded grants ("made by the seed", not by a real invitation).
pub const SEED_INVITATIONS: [&str; 4] = [
    "00000000-0000-4000-8000-0000000000a1",
    "00000000-0000-4000-8000-0000000000a2",
    "00000000-0000-4000-8000-0000000000a3",
    "00000000-0000-4000-8000-0000000000a4",
];

/// The other trust's own staff: (staff id, MIS id, given, family, email, job title).
pub const OTHER_STAFF: [demo::DemoStaff; 3] = [
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

async fn ensure_trust(
    store: &dyn Store,
    id: &str,
    name: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if store.get_trust(id).await?.is_none() {
        store
            .create_trust(NewTrust {
                id: id.into(),
                name: name.into(),
                request_id: None,
                now,
            })
            .await?;
    }
    Ok(())
}

async fn ensure_school(
    store: &dyn Store,
    trust_id: &str,
    (id, name, urn): (&str, &str, &str),
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if store.get_school(id).await?.is_none() {
        store
            .create_school(NewSchool {
                id: id.into(),
                trust_id: trust_id.into(),
                name: name.into(),
                urn: Some(urn.into()),
                request_id: None,
                now,
            })
            .await?;
    }
    Ok(())
}

fn staff_records(staff: &[demo::DemoStaff]) -> anyhow::Result<Vec<(String, StaffRecord)>> {
    staff
        .iter()
        .map(|(id, mis_id, given, family, email, title)| {
            Ok((
                id.to_string(),
                StaffRecord {
                    mis_id: mis_id.to_string(),
                    given_name: given.to_string(),
                    family_name: family.to_string(),
                    email: Email::parse(email).map_err(|e| anyhow::anyhow!("demo email {e}"))?,
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
) -> anyhow::Result<String> {
    if let Some(account) = store.account_by_email(email).await? {
        return Ok(account.id);
    }
    let password_hash = password::hash_blocking(password).await?;
    match store
        .create_account(NewAccount {
            id: new_id(),
            email: email.clone(),
            given_name: given_name.into(),
            family_name: family_name.into(),
            password_hash,
            invitation_id: None,
            now,
        })
        .await
    {
        Ok(account) => Ok(account.id),
        // Created concurrently: reuse it.
        Err(crate::error::IdentityError::AccountExists) => store
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
    invitation_id: &str,
    trust_id: &str,
    email: &Email,
    staff_id: Option<&str>,
    spec: GrantSpec,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    store
        .batch_grant(GrantBatch {
            invitation_id: invitation_id.into(),
            trust_id: trust_id.into(),
            email: email.clone(),
            staff_id: staff_id.map(str::to_string),
            specs: vec![spec],
            activate: true,
            now,
        })
        .await?;
    Ok(())
}

fn spec(kind: OrgKind, organization_id: &str, product: &str, role: &str) -> GrantSpec {
    GrantSpec {
        kind,
        organization_id: organization_id.into(),
        product_key: product.into(),
        role_key: role.into(),
    }
}

fn demo_password(text: &str) -> anyhow::Result<Password> {
    Password::parse(text).map_err(|e| anyhow::anyhow!("demo password {e}"))
}

fn demo_email(text: &str) -> anyhow::Result<Email> {
    Email::parse(text).map_err(|e| anyhow::anyhow!("demo email {e}"))
}

/// Seeds the demo data for `portal up`; idempotent (a second call changes nothing).
pub async fn seed_demo(database: &DatabaseArgs) -> anyhow::Result<()> {
    let pool = open(database).await?;
    let store = storage::open(&pool);
    let result = seed_into(store.as_ref(), Utc::now()).await;
    pool.close().await;
    result
}

async fn seed_into(store: &dyn Store, now: DateTime<Utc>) -> anyhow::Result<()> {
    ensure_trust(store, TRUST_ID, TRUST_NAME, now).await?;
    ensure_trust(store, OTHER_TRUST_ID, OTHER_TRUST_NAME, now).await?;
    for school in SCHOOLS {
        ensure_school(store, TRUST_ID, school, now).await?;
    }
    ensure_school(store, OTHER_TRUST_ID, OTHER_SCHOOL, now).await?;
    store
        .insert_staff_if_missing(TRUST_ID, staff_records(&STAFF)?, now)
        .await?;
    store
        .insert_staff_if_missing(OTHER_TRUST_ID, staff_records(&OTHER_STAFF)?, now)
        .await?;

    let admin = demo_email(ADMIN_EMAIL)?;
    ensure_account(
        store,
        &admin,
        "Northfield",
        "Administrator",
        demo_password(ADMIN_PASSWORD)?,
        now,
    )
    .await?;
    ensure_grant(
        store,
        SEED_INVITATIONS[0],
        TRUST_ID,
        &admin,
        None,
        spec(OrgKind::Trust, TRUST_ID, PORTAL_PRODUCT, "account-owner"),
        now,
    )
    .await?;

    let (staff_id, _, given, family, email, _) = STAFF[1];
    let existing_user = demo_email(email)?;
    ensure_account(
        store,
        &existing_user,
        given,
        family,
        demo_password(EXISTING_USER_PASSWORD)?,
        now,
    )
    .await?;
    ensure_grant(
        store,
        SEED_INVITATIONS[1],
        TRUST_ID,
        &existing_user,
        Some(staff_id),
        spec(OrgKind::School, SCHOOLS[0].0, "websites-cms", "writer"),
        now,
    )
    .await?;

    let (staff_id, _, given, family, email, _) = STAFF[6];
    let school_admin = demo_email(email)?;
    ensure_account(
        store,
        &school_admin,
        given,
        family,
        demo_password(SCHOOL_ADMIN_PASSWORD)?,
        now,
    )
    .await?;
    ensure_grant(
        store,
        SEED_INVITATIONS[2],
        TRUST_ID,
        &school_admin,
        Some(staff_id),
        spec(
            OrgKind::School,
            SCHOOLS[0].0,
            PORTAL_PRODUCT,
            "account-admin",
        ),
        now,
    )
    .await?;

    let other_admin = demo_email(OTHER_ADMIN_EMAIL)?;
    ensure_account(
        store,
        &other_admin,
        "Southbank",
        "Administrator",
        demo_password(OTHER_ADMIN_PASSWORD)?,
        now,
    )
    .await?;
    ensure_grant(
        store,
        SEED_INVITATIONS[3],
        OTHER_TRUST_ID,
        &other_admin,
        None,
        spec(
            OrgKind::Trust,
            OTHER_TRUST_ID,
            PORTAL_PRODUCT,
            "account-owner",
        ),
        now,
    )
    .await?;
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
    let trust_id = parse_id(trust_id).map_err(|e| anyhow::anyhow!("trust id {e}"))?;
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("email {e}"))?;
    let given_name =
        parse_name(given_name, MAX_PERSON_NAME).map_err(|e| anyhow::anyhow!("given name {e}"))?;
    let family_name =
        parse_name(family_name, MAX_PERSON_NAME).map_err(|e| anyhow::anyhow!("family name {e}"))?;
    let password = Password::parse(password).map_err(|e| anyhow::anyhow!("password {e}"))?;
    let pool = open(database).await?;
    let store = storage::open(&pool);
    let result = async {
        let now = Utc::now();
        if store.get_trust(&trust_id).await?.is_none() {
            anyhow::bail!("trust {trust_id} does not exist; create it first");
        }
        let account_id = ensure_account(
            store.as_ref(),
            &email,
            &given_name,
            &family_name,
            password,
            now,
        )
        .await?;
        // A fresh invitation id: the grant is skipped as ALREADY_HELD when the account is
        // already an owner, so repeating the command changes nothing.
        ensure_grant(
            store.as_ref(),
            &new_id(),
            &trust_id,
            &email,
            None,
            spec(OrgKind::Trust, &trust_id, PORTAL_PRODUCT, "account-owner"),
            now,
        )
        .await?;
        Ok(account_id)
    }
    .await;
    pool.close().await;
    result
}
