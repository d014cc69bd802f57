//! The use cases of the invitation service (rules R1–R12), in domain types: each checks who
//! may do it first, then runs the rules against the store, identity and subscription. Create
//! ([`create`]), read ([`read`]), resend and revoke ([`change`]), inspect and accept a link
//! ([`link`]), and the outbox worker that carries out what follows a commit ([`outbox`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use portal_runtime::Principal;
use portal_runtime::clock::{SharedClock, from_micros, to_micros};
use portal_runtime::vocab::{AccountId, InvitationId};

use crate::clients::{Identity, Subscription};
use crate::domain::Invitation;
use crate::error::{Error, Result};
use crate::store::Store;

mod change;
mod create;
mod guessing;
mod link;
mod outbox;
mod quotas;
mod read;

pub use guessing::LinkGuesses;
pub use outbox::Outbox;
pub use quotas::EmailQuotas;

/// The invitation service's behaviour.
pub struct App {
    store: Arc<dyn Store>,
    identity: Identity,
    subscription: Subscription,
    outbox: Outbox,
    clock: SharedClock,
    /// How long a sign-up link lasts (R7).
    link_ttl: chrono::Duration,
    link_guesses: LinkGuesses,
    emails: EmailQuotas,
}

/// What callers may not do too often: guess links, send emails.
pub struct Guardrails {
    pub link_guesses: LinkGuesses,
    pub emails: EmailQuotas,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        identity: Identity,
        subscription: Subscription,
        outbox: Outbox,
        clock: SharedClock,
        link_ttl: chrono::Duration,
        guardrails: Guardrails,
    ) -> Self {
        Self {
            store,
            identity,
            subscription,
            outbox,
            clock,
            link_ttl,
            link_guesses: guardrails.link_guesses,
            emails: guardrails.emails,
        }
    }

    /// Now, at the precision instants are stored with, so every answer agrees with a re-read.
    fn now(&self) -> DateTime<Utc> {
        from_micros(to_micros(self.clock.now()))
    }

    /// `invitation` as the caller sees it now.
    fn seen(&self, invitation: Invitation) -> Invitation {
        invitation.seen_at(self.clock.now())
    }

    /// R1 for reads and changes of one invitation: only an administrator of its trust sees
    /// it; to anyone else it does not exist.
    async fn visible(&self, caller: &Principal, id: InvitationId) -> Result<Invitation> {
        let account_id = signed_in(caller)?;
        let not_found = || Error::NotFound { id };
        let invitation = self.store.get(id).await?.ok_or_else(not_found)?;
        match self
            .identity
            .require_administrator(invitation.trust_id, account_id)
            .await
        {
            Ok(()) => Ok(invitation),
            Err(error) if error.is_not_administrator() => Err(not_found()),
            Err(error) => Err(error),
        }
    }
}

/// R1: only a signed-in user can administer a trust.
impl App {
    /// The signed-in user's account; a service token is refused (PERMISSION_DENIED).
    pub fn require_user(&self, caller: &Principal) -> Result<AccountId> {
        signed_in(caller)
    }
}

fn signed_in(caller: &Principal) -> Result<AccountId> {
    caller.account_id().ok_or(Error::NotTrustAdministrator)
}
