//! CreateInvitation (R1–R8): the create flow of DESIGN §3.

use std::time::Instant;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use portal_runtime::Principal;
use portal_runtime::vocab::{AccountId, InvitationId};

use super::outbox::{lease_end, wall_now};
use super::{App, signed_in};
use crate::domain::{
    self, Answers, CreateInput, CreateRefusal, Created, Delivery, Draft, EmailDetails, Invitation,
    LinkToken, NewStep, Plan,
};
use crate::error::{Error, Result};
use crate::store::{CreateOutcome, NewInvitation};

/// What storing a new invitation came to.
enum Commit {
    /// Stored; revokes of the person's earlier invitations, to run before granting again,
    /// may still be open.
    Stored { revokes_open: bool },
    /// The caller's request id made an invitation before: that one is the answer.
    Replayed(Invitation),
}

impl App {
    /// Checks the caller and the request against identity and subscription, stores the
    /// invitation with its outbox steps and its first link in one transaction, grants, and
    /// sends the email off the reply's path. `bearer` is the caller's own token, to ask for
    /// their name for the email.
    pub async fn create(
        &self,
        caller: &Principal,
        bearer: Option<&SecretString>,
        input: CreateInput,
    ) -> Result<Created> {
        let started = Instant::now();
        let inviter = signed_in(caller)?;
        if let Some(id) = self.created_before(inviter, &input).await? {
            return Ok(Created::Stored(self.replay(id, &input).await?));
        }
        let now = self.now();
        let plan = self.plan(inviter, &input, now).await?;
        if !input.validate_only {
            self.emails.check_trust(input.trust_id, now)?;
        }
        let validated = started.elapsed();
        let (mut invitation, email) = self.draft(plan, inviter, bearer, &input, now).await?;
        if input.validate_only {
            return Ok(Created::Validated(self.seen(invitation)));
        }
        let looked_up = started.elapsed();
        // The first link is minted with the invitation and stored (as its hash) in the same
        // transaction; the token itself is only handed to the email sent after the commit.
        let link = (invitation.delivery == Delivery::SignUpLink).then(LinkToken::generate);
        invitation.current_link_hash = link.as_ref().map(LinkToken::hash);
        // Both steps are leased to this server, which runs them right after the commit.
        let lease = lease_end();
        let steps = [
            NewStep::grant(invitation.id).leased_until(lease),
            NewStep::email(invitation.id, &email).leased_until(lease),
        ];
        let revokes_open = match self
            .commit(&invitation, &steps, inviter, &input, now)
            .await?
        {
            Commit::Stored { revokes_open } => revokes_open,
            Commit::Replayed(earlier) => return Ok(Created::Stored(earlier)),
        };
        self.emails.created(invitation.trust_id, now);
        let committed = started.elapsed();
        invitation.granted = self
            .outbox
            .grant_created(&invitation, steps[0].id, revokes_open)
            .await;
        self.outbox
            .send_inline(steps[1].id, invitation.clone(), email, link);
        tracing::debug!(
            validated_ms = validated.as_secs_f64() * 1e3,
            lookup_ms = looked_up.as_secs_f64() * 1e3,
            commit_ms = committed.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "invitation created"
        );
        Ok(Created::Stored(self.seen(invitation)))
    }

    /// Stores the invitation with its steps (and the caller's request id) in one transaction.
    async fn commit(
        &self,
        invitation: &Invitation,
        steps: &[NewStep],
        inviter: AccountId,
        input: &CreateInput,
        now: DateTime<Utc>,
    ) -> Result<Commit> {
        let stored = self
            .store
            .create(NewInvitation {
                invitation,
                request: input.request_id.as_ref().map(|r| (inviter, r)),
                steps,
                now,
                wall_now: wall_now(),
            })
            .await?;
        match stored {
            CreateOutcome::Created {
                revoke_steps,
                earlier_revokes_open,
            } => Ok(Commit::Stored {
                revokes_open: earlier_revokes_open || !revoke_steps.is_empty(),
            }),
            CreateOutcome::Replayed { invitation_id } => {
                Ok(Commit::Replayed(self.replay(invitation_id, input).await?))
            }
            CreateOutcome::PendingExists { invitation_id } => {
                Err(CreateRefusal::PendingInvitationExists { invitation_id }.into())
            }
        }
    }

    /// AIP-155: the invitation an earlier create with the same request id made.
    async fn created_before(
        &self,
        inviter: AccountId,
        input: &CreateInput,
    ) -> Result<Option<InvitationId>> {
        match &input.request_id {
            Some(request_id) if !input.validate_only => {
                self.store.find_create_request(inviter, request_id).await
            }
            _ => Ok(None),
        }
    }

    /// The invitation an earlier create with the request's id made, when that create asked
    /// for the same; a different request under a used id is refused, never answered with
    /// someone else's invitation.
    async fn replay(&self, id: InvitationId, input: &CreateInput) -> Result<Invitation> {
        let invitation = self
            .store
            .get(id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("request id names a missing invitation"))?;
        if !input.asked_for(&invitation) {
            return Err(Error::RequestIdReused);
        }
        Ok(self.seen(invitation))
    }

    /// R1 first (a refused caller costs one question to identity, or none while a positive
    /// answer is remembered), then the plan (R2–R8) from the reads it needs, made at once and
    /// judged in order.
    async fn plan(
        &self,
        inviter: AccountId,
        input: &CreateInput,
        now: DateTime<Utc>,
    ) -> Result<Plan> {
        let trust_id = input.trust_id;
        let trust_product = &input.trust_access.product_key;
        let (school_products, school_ids) = match &input.school_access {
            Some(school) => (&school.product_keys[..], &school.school_ids[..]),
            None => (&[][..], &[][..]),
        };
        self.identity
            .require_administrator(trust_id, inviter)
            .await?;
        let (staff, catalogue, schools, eligibility, pending) = tokio::join!(
            self.identity.staff_member(trust_id, input.staff_id),
            self.subscription.catalogue(),
            async {
                if school_ids.is_empty() {
                    Ok(Default::default())
                } else {
                    self.identity.schools(trust_id).await
                }
            },
            self.subscription.eligibility(
                trust_id,
                trust_product,
                school_products,
                school_ids,
                now
            ),
            // A real create learns this in its transaction; only a dry run asks here.
            async {
                if input.validate_only {
                    let staff_id = input.staff_id;
                    self.store
                        .find_pending(trust_id, staff_id, trust_product)
                        .await
                } else {
                    Ok(None)
                }
            },
        );
        let answers = Answers {
            staff,
            catalogue,
            schools,
            eligibility,
            pending,
        };
        domain::create::plan::<Error>(input, answers, now)
    }

    /// The invitation `plan` makes, with the names its email uses.
    async fn draft(
        &self,
        plan: Plan,
        inviter: AccountId,
        bearer: Option<&SecretString>,
        input: &CreateInput,
        now: DateTime<Utc>,
    ) -> Result<(Invitation, EmailDetails)> {
        let (trust_name, inviter_name) = tokio::join!(
            self.identity.trust_name(input.trust_id),
            self.identity.caller_name(inviter, bearer),
        );
        let draft = Draft {
            id: InvitationId::generate(),
            inviter,
            inviter_name,
            trust_name: trust_name?,
            now,
            link_ttl: self.link_ttl,
        };
        Ok(plan.into_invitation(input, draft))
    }
}
