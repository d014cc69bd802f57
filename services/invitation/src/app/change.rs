//! ResendInvitation (R9) and RevokeInvitation (R10).

use secrecy::SecretString;

use portal_runtime::Principal;
use portal_runtime::vocab::InvitationId;

use super::outbox::wall_now;
use super::{App, signed_in};
use crate::domain::catalogue::product_names;
use crate::domain::{EmailDetails, Invitation, NewStep};
use crate::error::{Error, Result};
use crate::store::{Refusal, Transition};

impl App {
    /// R9: a new link and a new window; every earlier link stops working. `bearer` is the
    /// caller's own token, to ask for their name for the email.
    pub async fn resend(
        &self,
        caller: &Principal,
        bearer: Option<&SecretString>,
        id: InvitationId,
    ) -> Result<Invitation> {
        let invitation = self.visible(caller, id).await?;
        let now = self.now();
        let inviter_name = self.identity.caller_name(signed_in(caller)?, bearer).await;
        // Without the catalogue, the email names products by key.
        let catalogue = self.subscription.catalogue().await.unwrap_or_default();
        let details = EmailDetails {
            product_names: product_names(&invitation.granted, &catalogue),
            trust_name: invitation.trust_name,
            inviter_name,
        };
        let email = NewStep::email(id, &details);
        let resent = self
            .store
            .resend(id, now, now + self.link_ttl, &email, wall_now())
            .await?;
        let invitation = changed(id, resent)?;
        self.outbox.wake();
        Ok(self.seen(invitation))
    }

    /// R10: withdraws a pending invitation and its grants; its link stops working. An accept
    /// that claimed the invitation first wins (the revoke is refused).
    pub async fn revoke(&self, caller: &Principal, id: InvitationId) -> Result<Invitation> {
        self.visible(caller, id).await?;
        let now = self.now();
        let revoke = NewStep::revoke_dropped(id);
        let revoked = self.store.revoke(id, now, &revoke, wall_now()).await?;
        let invitation = changed(id, revoked)?;
        self.outbox.revoke_soon(id, revoke.id).await?;
        Ok(self.seen(invitation))
    }
}

/// The invitation a change left, or why it could not be changed.
fn changed(id: InvitationId, transition: Option<Transition>) -> Result<Invitation> {
    transition
        .ok_or(Error::NotFound { id })?
        .map_err(|refusal| match refusal {
            Refusal::NotPending(status) => Error::NotPending { status },
            Refusal::BeingAccepted => Error::BeingAccepted,
        })
}
