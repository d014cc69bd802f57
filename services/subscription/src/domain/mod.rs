//! The subscription domain: the catalogue, subscriptions and when one is in force, the
//! eligibility rules of R5 and who may call. Everything here is pure: no storage, no clock,
//! no gRPC.

pub mod access;
pub mod catalogue;
pub mod eligibility;
pub mod subscriptions;
pub mod trust_view;

pub use catalogue::{
    Catalog, Product, ProductPage, Role, RoleEquivalence, RoleRef, RoleSelection, Scope,
};
pub use eligibility::{
    Answers, Evaluation, Layout, Misplaced, Query, Reason, Refusal, SchoolQuery, SchoolRef,
    SchoolSubscriptions, Verdict, decide, evaluate,
};
pub use portal_runtime::vocab::OrgKind;
pub use subscriptions::{
    AlreadyExpired, Cancellation, Cancelled, Changes, CreateOutcome, Creation, EmptyPeriod,
    InitialStatus, ListFilter, NewSubscription, Organization, OrganizationId, RequestKey, Standing,
    Status, Subscription, SubscriptionPage, TrustSnapshot, UpdatableStatus, Update,
};
pub use trust_view::TrustView;
