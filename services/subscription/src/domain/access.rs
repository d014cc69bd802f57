//! Who may call what: the services named by their tokens, and what identity says of a
//! signed-in user and a trust.

use portal_runtime::auth::callers::{BILLING, INVITATION};

/// The services that write subscriptions.
pub const WRITERS: &[&str] = &[BILLING];
/// The services that read subscriptions.
pub const READERS: &[&str] = &[INVITATION, BILLING];
/// The services that ask eligibility (the invitation flow).
pub const ELIGIBILITY_READERS: &[&str] = &[INVITATION];

/// What identity says of a signed-in user and a trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Administration {
    /// Administers the trust: may read its subscriptions.
    Administrator,
    /// Administers schools of the trust, not the trust itself.
    SchoolLevelOnly,
    /// Administers another trust.
    OtherTrust,
    /// Administers nothing of the trust (or identity does not know the trust).
    None,
}
