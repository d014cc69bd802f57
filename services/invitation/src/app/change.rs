//! ResendInvitation (R9) and RevokeInvitation (R10).

use secrecy::SecretString;

use portal_runtime::Principal;
use portal_runtime::vocab::InvitationId;

use super::outbox::wall_now;
use super::{App, signed_in};
use crate::domain::catalogue::product_names;
use crate::domain::{Delivery, EmailDetails, Invitation, NewStep, Status};
use crate::error::{Error, Result};
use crate::store::{Refusal, Transition};

impl App {
    /// R9: a new link and a new window; every earlier link stops working. An invitee who has
    /// an account by now gets the access at once and a new-product notice instead. `bearer` is
    /// the caller's own token, to ask for their name for the email.
    pub async fn resend(
        &self,
        caller: &Principal,
        bearer: Option<&SecretString>,
        id: InvitationId,
    ) -> Result<Invitation> {
        let invitation = self.visible(caller, id).await?;
        let now = self.now();
        self.emails.check_resend(id, invitation.trust_id, now)?;
        let inviter_name = self.identity.caller_name(signed_in(caller)?, bearer).await;
        // Without the catalogue, the email names products by key.
        let catalogue = self.subscription.catalogue().await.unwrap_or_default();
        let details = EmailDetails {
            product_names: product_names(&invitation.granted, &catalogue),
            trust_name: invitation.trust_name.clone(),
            inviter_name,
        };
        let email = NewStep::email(id, &details);
        // An invitee who has an account by now (registered elsewhere) gets the access at once
        // and the new-product notice, not another sign-up link.
        let account = match invitation.delivery {
            Delivery::SignUpLink if invitation.status_at(now) == Status::Pending => {
                self.identity
                    .lookup_account(&invitation.staff_email)
                    .await?
            }
            _ => None,
        };
        if let Some(account_id) = account {
            let activate = NewStep::activate(id, account_id);
            let steps = [activate.clone(), email];
            let granted = self
                .store
                .grant_to_account(id, account_id, now, &steps, wall_now())
                .await?;
            changed(id, granted)?;
            self.emails.resent(id, invitation.trust_id, now);
            self.outbox.run_soon(&[activate.id]).await;
            let invitation = self.store.get(id).await?.ok_or(Error::NotFound { id })?;
            return Ok(self.seen(invitation));
        }
        let resent = self
            .store
            .resend(id, now, now + self.link_ttl, &email, wall_now())
            .await?;
        let invitation = changed(id, resent)?;
        self.emails.resent(id, invitation.trust_id, now);
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
