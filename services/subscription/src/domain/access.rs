//! Who may call what: the services named by their tokens.

use portal_runtime::auth::callers::{BILLING, INVITATION};

/// The services that write subscriptions.
pub const WRITERS: &[&str] = &[BILLING];
/// The services that read subscriptions.
pub const READERS: &[&str] = &[INVITATION, BILLING];
/// The services that ask eligibility (the invitation flow).
pub const ELIGIBILITY_READERS: &[&str] = &[INVITATION];
