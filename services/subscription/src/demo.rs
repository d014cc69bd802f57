//! The demo trust's subscriptions (see `portal_runtime::demo`), with fixed ids so examples can
//! name them. Every period starts on 2020-09-01 and is open-ended, so the demo answers the
//! same whatever today's date; the cancelled one stopped on 2021-03-31.

use chrono::{DateTime, TimeZone, Utc};
use portal_runtime::demo::{OTHER_SCHOOL, OTHER_TRUST_ID, SCHOOLS, TRUST_ID};

use portal_runtime::vocab::{Id, ProductKey, SubscriptionId, TrustId};

use crate::domain::{CreateOutcome, OrgKind, OrganizationId, Status, Subscription};
use crate::store::Store;

/// The demo trust's Portal subscription.
pub const TRUST_PORTAL: &str = "7f3c2a10-0000-4000-8000-000000005001";
/// The demo trust's Sonar Multi-School subscription.
pub const TRUST_SONAR_MULTI_SCHOOL: &str = "7f3c2a10-0000-4000-8000-000000005002";
/// Websites CMS at `SCHOOLS[0..5]` (the one at `SCHOOLS[3]` is a trial).
pub const SCHOOL_WEBSITES_CMS: [&str; 5] = [
    "7f3c2a10-0000-4000-8000-000000005111",
    "7f3c2a10-0000-4000-8000-000000005121",
    "7f3c2a10-0000-4000-8000-000000005131",
    "7f3c2a10-0000-4000-8000-000000005141",
    "7f3c2a10-0000-4000-8000-000000005151",
];
/// Comms Hub at `SCHOOLS[0]`, `[1]`, `[3]` (active) and `[4]` (cancelled); `SCHOOLS[2]` has none.
pub const SCHOOL_COMMS_HUB: [(usize, &str); 4] = [
    (0, "7f3c2a10-0000-4000-8000-000000005112"),
    (1, "7f3c2a10-0000-4000-8000-000000005122"),
    (3, "7f3c2a10-0000-4000-8000-000000005142"),
    (4, "7f3c2a10-0000-4000-8000-000000005152"),
];
/// Sonar at `SCHOOLS[0]` and `[1]`.
pub const SCHOOL_SONAR: [(usize, &str); 2] = [
    (0, "7f3c2a10-0000-4000-8000-000000005113"),
    (1, "7f3c2a10-0000-4000-8000-000000005123"),
];
/// The other trust's Portal subscription.
pub const OTHER_TRUST_PORTAL: &str = "7f3c2a10-0000-4000-8000-000000005201";
/// Websites CMS at the other trust's school.
pub const OTHER_SCHOOL_WEBSITES_CMS: &str = "7f3c2a10-0000-4000-8000-000000005211";

/// When every demo period starts.
pub fn period_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 9, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// When the cancelled demo subscription stopped.
pub fn cancellation() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2021, 3, 31, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A demo id: the constants above and the runtime's demo trust and schools are UUIDs.
fn id<K>(text: &str) -> anyhow::Result<Id<K>> {
    Id::parse(text).map_err(|error| anyhow::anyhow!("demo id {text}: {error}"))
}

fn subscription(
    id: SubscriptionId,
    trust_id: TrustId,
    kind: OrgKind,
    organization_id: OrganizationId,
    product: &str,
    status: Status,
) -> Subscription {
    let start = period_start();
    Subscription {
        id,
        trust_id,
        organization_kind: kind,
        organization_id,
        product_key: ProductKey::from_known(product),
        status,
        start_time: start,
        end_time: None,
        cancel_time: (status == Status::Cancelled).then(cancellation),
        create_time: start,
        update_time: if status == Status::Cancelled {
            cancellation()
        } else {
            start
        },
        version: 1,
    }
}

/// Every demo subscription.
pub fn subscriptions() -> anyhow::Result<Vec<Subscription>> {
    let trust_id: TrustId = id(TRUST_ID)?;
    let trust = |subscription_id, product| -> anyhow::Result<Subscription> {
        Ok(subscription(
            id(subscription_id)?,
            trust_id,
            OrgKind::Trust,
            trust_id.cast(),
            product,
            Status::Active,
        ))
    };
    let school = |subscription_id, index: usize, product, status| -> anyhow::Result<Subscription> {
        Ok(subscription(
            id(subscription_id)?,
            trust_id,
            OrgKind::School,
            id(SCHOOLS[index].0)?,
            product,
            status,
        ))
    };
    let mut all = vec![
        trust(TRUST_PORTAL, "portal")?,
        trust(TRUST_SONAR_MULTI_SCHOOL, "sonar-multi-school")?,
    ];
    for (index, subscription_id) in SCHOOL_WEBSITES_CMS.iter().enumerate() {
        let status = if index == 3 {
            Status::Trial
        } else {
            Status::Active
        };
        all.push(school(subscription_id, index, "websites-cms", status)?);
    }
    for (index, subscription_id) in SCHOOL_COMMS_HUB {
        let status = if index == 4 {
            Status::Cancelled
        } else {
            Status::Active
        };
        all.push(school(subscription_id, index, "comms-hub", status)?);
    }
    for (index, subscription_id) in SCHOOL_SONAR {
        all.push(school(subscription_id, index, "sonar", Status::Active)?);
    }
    let other_trust: TrustId = id(OTHER_TRUST_ID)?;
    all.push(subscription(
        id(OTHER_TRUST_PORTAL)?,
        other_trust,
        OrgKind::Trust,
        other_trust.cast(),
        "portal",
        Status::Active,
    ));
    all.push(subscription(
        id(OTHER_SCHOOL_WEBSITES_CMS)?,
        other_trust,
        OrgKind::School,
        id(OTHER_SCHOOL.0)?,
        "websites-cms",
        Status::Active,
    ));
    Ok(all)
}

/// Creates the demo subscriptions that do not exist yet.
pub async fn seed(store: &dyn Store) -> anyhow::Result<()> {
    for subscription in subscriptions()? {
        if store.get_subscription(subscription.id).await?.is_some() {
            continue;
        }
        match store.create_subscription(&subscription, None).await? {
            CreateOutcome::Created(_) | CreateOutcome::Replayed(_) => {}
            other => anyhow::bail!(
                "demo subscription {} could not be created: {other:?}",
                subscription.id
            ),
        }
    }
    Ok(())
}
