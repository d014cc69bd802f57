//! InspectInvitationLink and AcceptInvitation (R11): the link's token is the credential.

use portal_runtime::vocab::AccountId;

use super::App;
use super::outbox::{lease_end, wall_now};
use crate::domain::{
    AcceptInput, Accepted, Accepter, Invitation, LinkRefusal, LinkToken, NewAccountDetails,
};
use crate::error::{Error, Result};
use crate::store::CompleteAccept;

impl App {
    /// What a link grants and until when, without using it.
    pub async fn inspect(&self, token: &LinkToken) -> Result<Invitation> {
        let invitation = self.usable_link(token).await?;
        self.require_staff_active(&invitation).await?;
        Ok(self.seen(invitation))
    }

    /// R11: registers the invitee with the staff email (or, signed in, takes their account),
    /// activates the grants, and marks the invitation ACCEPTED; the person's other pending
    /// invitations are settled with it. A retried accept with the same request id answers as
    /// the first.
    pub async fn accept(&self, input: AcceptInput) -> Result<Accepted> {
        let hash = input.token.hash();
        if let Some(request_id) = &input.request_id
            && let Some(invitation) = self.store.find_link(&hash).await?
            && let Some(account_id) = self
                .store
                .find_accept_request(invitation.id, request_id)
                .await?
        {
            let invitation = self.seen(invitation);
            return Ok(Accepted {
                account_id,
                invitation,
            });
        }
        let invitation = self.usable_link(&input.token).await?;
        self.require_staff_active(&invitation).await?;
        // Signed in: the account must be the invitee's (the staff email's).
        if let Accepter::SignedIn { account_id, bearer } = &input.accepter {
            let email = self.identity.signed_in_email(*account_id, bearer).await?;
            if email.as_ref() != Some(&invitation.staff_email) {
                return Err(Error::LinkForAnotherAccount);
            }
        }
        // The grants must exist in identity before they can be activated.
        self.outbox.complete_grants(invitation.id).await?;
        // Revoke and accept are serialised on the invitation: the accept claims it before
        // registering anything, and a revoke, resend or expiry that committed first wins.
        if !self
            .store
            .claim_accept(invitation.id, &hash, self.now(), lease_end())
            .await?
        {
            return Err(self.refused_now(&input.token).await);
        }
        let account_id = match &input.accepter {
            Accepter::SignedIn { account_id, .. } => *account_id,
            Accepter::NewAccount(details) => match self.register(&invitation, details).await {
                Ok(account_id) => account_id,
                Err(error) => {
                    // Nothing was registered: a revoke may go ahead.
                    if let Err(release) = self.store.release_accept(invitation.id).await {
                        tracing::warn!(error = %release, "releasing an accept's claim failed");
                    }
                    return Err(error);
                }
            },
        };
        let withdrawn = self
            .identity
            .activate_grants(invitation.id, account_id)
            .await?;
        let now = self.now();
        let granted = invitation.accepted_grants(&withdrawn);
        let completed = self
            .store
            .complete_accept(CompleteAccept {
                id: invitation.id,
                account_id,
                request_id: input.request_id.as_ref(),
                granted: &granted,
                now,
                wall_now: wall_now(),
            })
            .await?;
        // The person's other pending invitations, settled with this one: activated now.
        if let Some(settled) = &completed {
            self.outbox.run_soon(settled).await;
        }
        let stored = self
            .store
            .get(invitation.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("accepted invitation vanished"))?;
        if completed.is_none() {
            // Another accept of the same link finished first.
            stored.check_link(&hash, now).map_err(Error::Link)?;
        }
        Ok(Accepted {
            account_id,
            invitation: self.seen(stored),
        })
    }

    /// A link is used only while the trust's MIS lists the invitee as ACTIVE: a leaver's
    /// invitations are revoked here if the feed of leavers has not done it yet.
    async fn require_staff_active(&self, invitation: &Invitation) -> Result<()> {
        let staff = self
            .identity
            .staff_member(invitation.trust_id, invitation.staff_id)
            .await?;
        if staff.is_some_and(|s| s.active) {
            return Ok(());
        }
        let steps = self
            .store
            .revoke_leaver(
                invitation.trust_id,
                invitation.staff_id,
                self.now(),
                wall_now(),
            )
            .await?;
        self.outbox.run_soon(&steps).await;
        Err(Error::Link(LinkRefusal::StaffLeft))
    }

    /// Why a link that was usable a moment ago is refused now.
    async fn refused_now(&self, token: &LinkToken) -> Error {
        match self.usable_link(token).await {
            Err(error) => error,
            // Checked against an instant later than the claim's.
            Ok(_) => Error::Link(crate::domain::LinkRefusal::Expired),
        }
    }

    /// The invitation a link belongs to, if the link is usable now.
    async fn usable_link(&self, token: &LinkToken) -> Result<Invitation> {
        let hash = token.hash();
        let invitation = self
            .store
            .find_link(&hash)
            .await?
            .ok_or(Error::LinkNotFound)?;
        invitation
            .check_link(&hash, self.now())
            .map_err(Error::Link)?;
        Ok(invitation)
    }

    /// The invitee's new account; a retried accept whose registration went through carries
    /// on with that account.
    async fn register(
        &self,
        invitation: &Invitation,
        details: &NewAccountDetails,
    ) -> Result<AccountId> {
        let email = &invitation.staff_email;
        match self
            .identity
            .register_account(email, details, invitation.id)
            .await?
        {
            Some(account_id) => Ok(account_id),
            None if invitation.accepting => Ok(self
                .identity
                .lookup_account(email)
                .await?
                .ok_or_else(|| anyhow::anyhow!("account vanished after registration"))?),
            None => Err(Error::AccountExists),
        }
    }
}
