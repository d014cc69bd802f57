//! How many invitation emails go out: resends per invitation, and every invitation email
//! (creates and resends) per trust, each within a sliding hour. Past either, the call is
//! refused with RESOURCE_EXHAUSTED and RetryInfo before anything is sent or stored, so a
//! script or a careless caller cannot flood an invitee's or a trust's inboxes.

use chrono::{DateTime, Duration, Utc};
use portal_runtime::attempts::Quota;
use portal_runtime::vocab::{InvitationId, TrustId};

use crate::error::{Error, Result};

/// Most invitations and trusts whose emails are counted.
const COUNTED: usize = 100_000;

/// Emails sent per invitation and per trust.
pub struct EmailQuotas {
    resends: Quota<InvitationId>,
    per_trust: Quota<TrustId>,
}

impl EmailQuotas {
    /// `resends` per invitation and `per_trust` emails per trust in any `window`.
    pub fn new(resends: u32, per_trust: u32, window: Duration) -> Self {
        Self {
            resends: Quota::new(resends, window, COUNTED),
            per_trust: Quota::new(per_trust, window, COUNTED),
        }
    }

    /// Refuses a resend of `id` past either quota.
    pub fn check_resend(
        &self,
        id: InvitationId,
        trust_id: TrustId,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if let Some(until) = self.resends.full_until(&id, now) {
            return Err(Error::TooManyEmails {
                reason: "TOO_MANY_RESENDS",
                retry_after: (until - now).to_std().unwrap_or_default(),
            });
        }
        self.check_trust(trust_id, now)
    }

    /// Refuses an invitation email of `trust_id` past the trust's quota.
    pub fn check_trust(&self, trust_id: TrustId, now: DateTime<Utc>) -> Result<()> {
        match self.per_trust.full_until(&trust_id, now) {
            Some(until) => Err(Error::TooManyEmails {
                reason: "TOO_MANY_TRUST_EMAILS",
                retry_after: (until - now).to_std().unwrap_or_default(),
            }),
            None => Ok(()),
        }
    }

    /// Counts a resend of `id` that went ahead.
    pub fn resent(&self, id: InvitationId, trust_id: TrustId, now: DateTime<Utc>) {
        self.resends.record(id, now);
        self.per_trust.record(trust_id, now);
    }

    /// Counts an invitation created (its email).
    pub fn created(&self, trust_id: TrustId, now: DateTime<Utc>) {
        self.per_trust.record(trust_id, now);
    }
}
