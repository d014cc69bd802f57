//! The services and tools that call the suite with service tokens, by the name their token
//! carries (`portal token issue --service NAME`).

/// The invitation service: grants, registration, staff and directory reads at identity;
/// catalogue, eligibility and subscription reads at subscription.
pub const INVITATION: &str = "invitation";
/// The subscription service: asks identity whether a signed-in user administers a trust.
pub const SUBSCRIPTION: &str = "subscription";
/// Billing: writes subscriptions.
pub const BILLING: &str = "billing";
/// The MIS sync job: staff snapshots.
pub const MIS_SYNC: &str = "mis-sync";
/// An operator's `portal` commands: directory writes and staff imports.
pub const OPERATOR: &str = "operator";
