//! The invitation rules (R1–R12) over parsed requests: create, read, resend, revoke, inspect
//! and accept.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use portal_proto::subscription::v1 as sub;
use portal_runtime::Principal;
use portal_runtime::clock::{SharedClock, from_micros, to_micros};
use portal_runtime::error::Violations;
use portal_runtime::types::{Email, new_id};

use crate::deps::{Catalogue, Deps, PairAnswer};
use crate::domain::{
    CreateRequest, Delivery, GrantState, GrantedAccess, Invitation, OrgKind, SkippedAccess, Status,
    check_link, hash_link_token, new_link_token,
};
use crate::error::{InvitationError, Result};
use crate::outbox::{EmailPayload, Outbox, REVOKE_PENDING_PAYLOAD};
use crate::store::{CreateOutcome, InvitationStore, ListFilter, PageKey, StepKind};

/// A parsed AcceptInvitation request.
#[derive(Debug, Clone)]
pub struct AcceptRequest {
    pub token: String,
    pub given_name: String,
    pub family_name: String,
    pub password: String,
    pub request_id: Option<String>,
}

/// The invitation service's behaviour.
#[derive(Clone)]
pub struct Invitations {
    pub store: std::sync::Arc<dyn InvitationStore>,
    pub deps: Deps,
    pub clock: SharedClock,
    pub outbox: Outbox,
    pub invitation_ttl: chrono::Duration,
}

fn user(caller: &Principal) -> Result<String> {
    caller
        .account_id()
        .map(|id| id.to_string())
        .ok_or(InvitationError::NotTrustAdministrator)
}

/// A human explanation of why a school is not eligible, for the skipped pair's detail.
fn ineligibility_detail(pair: &PairAnswer) -> String {
    let date = pair
        .since
        .map(|t| t.format("%-d %B %Y").to_string())
        .unwrap_or_else(|| "an earlier date".into());
    use sub::IneligibilityReason as R;
    match pair.reason {
        R::NoSubscription | R::Unspecified => {
            "the school has no subscription to this product".into()
        }
        R::NotStarted => format!("the school's subscription starts on {date}"),
        R::Ended => format!("the school's subscription ended on {date}"),
        R::Cancelled => format!("the school's subscription was cancelled with effect from {date}"),
        R::Expired => "the school's subscription has expired".into(),
        R::ProductNotSchoolScoped | R::ProductNotTrustScoped => {
            "the product is not a school product".into()
        }
    }
}

/// R3/R4: products, roles and schools against the catalogue and the trust's schools.
fn check_catalogue(
    request: &CreateRequest,
    catalogue: &Catalogue,
    schools: &[String],
) -> Result<()> {
    let mut violations = Violations::new();
    let trust = &request.trust_access;
    match catalogue.get(&trust.product_key) {
        None => violations.add(
            "trust_access.product_key",
            format!("`{}` is not a product of the catalogue", trust.product_key),
        ),
        Some(product) if !product.trust_scoped => violations.add(
            "trust_access.product_key",
            format!(
                "{} is a school product, not a trust product; offer it under school_access",
                product.name
            ),
        ),
        Some(product) if !product.roles.contains(&trust.role_key) => violations.add(
            "trust_access.role_key",
            format!(
                "`{}` is not a role of {} (its roles: {})",
                trust.role_key,
                product.name,
                product.roles.join(", ")
            ),
        ),
        Some(_) => {}
    }
    if let Some(school) = &request.school_access {
        let mut lacking_role = Vec::new();
        for (i, key) in school.product_keys.iter().enumerate() {
            let field = format!("school_access.product_keys[{i}]");
            match catalogue.get(key) {
                None => violations.add(field, format!("`{key}` is not a product of the catalogue")),
                Some(product) if !product.school_scoped => violations.add(
                    field,
                    format!(
                        "{} is a trust product, not a school product; offer it as the trust \
                         product of a separate invitation",
                        product.name
                    ),
                ),
                Some(product) if !product.roles.contains(&school.role_key) => {
                    lacking_role.push(product.name.clone());
                }
                Some(_) => {}
            }
        }
        if !lacking_role.is_empty() {
            violations.add(
                "school_access.role_key",
                format!(
                    "`{}` is not a role of {}; every selected school product must define the \
                     school role (invite separately for different roles)",
                    school.role_key,
                    lacking_role.join(", ")
                ),
            );
        }
        let known: HashSet<&str> = schools.iter().map(String::as_str).collect();
        for (i, school_id) in school.school_ids.iter().enumerate() {
            if !known.contains(school_id.as_str()) {
                violations.add(
                    format!("school_access.school_ids[{i}]"),
                    "is not a school of this trust",
                );
            }
        }
    }
    violations.finish().map_err(Into::into)
}

impl Invitations {
    /// Now, at the precision instants are stored with, so every answer agrees with a re-read.
    fn now(&self) -> DateTime<Utc> {
        from_micros(to_micros(self.clock.now()))
    }

    /// R1 for reads and changes of one invitation: another trust's invitation is NOT_FOUND.
    async fn visible(&self, caller: &Principal, id: &str) -> Result<Invitation> {
        let account_id = user(caller)?;
        let account_id = account_id.as_str();
        let not_found = || InvitationError::NotFound { id: id.to_string() };
        let invitation = self.store.get(id).await?.ok_or_else(not_found)?;
        match self
            .deps
            .check_administrator(&invitation.trust_id, account_id)
            .await?
            .require()
        {
            Ok(()) => Ok(invitation),
            Err(_) => Err(not_found()),
        }
    }

    /// CreateInvitation: R1–R8 and the create flow.
    pub async fn create(
        &self,
        caller: &Principal,
        bearer: Option<&str>,
        request: CreateRequest,
    ) -> Result<Invitation> {
        let account_id = user(caller)?;
        let account_id = account_id.as_str();
        if let (Some(request_id), false) = (&request.request_id, request.validate_only)
            && let Some(id) = self
                .store
                .find_create_request(account_id, request_id)
                .await?
        {
            return self.replay(id).await;
        }
        let now = self.now();
        let trust_id = request.trust_id.as_str();
        let (school_products, school_ids) = match &request.school_access {
            Some(s) => (s.product_keys.clone(), s.school_ids.clone()),
            None => (Vec::new(), Vec::new()),
        };
        let started = std::time::Instant::now();
        // Independent reads in one wave; their answers are judged in the documented order.
        let (admin, staff, catalogue, schools, eligibility, pending) = tokio::join!(
            self.deps.check_administrator(trust_id, account_id),
            self.deps.staff_member(trust_id, &request.staff_id),
            self.deps.catalogue(),
            async {
                if school_ids.is_empty() {
                    Ok(Default::default())
                } else {
                    self.deps.schools(trust_id).await
                }
            },
            self.deps.eligibility(
                trust_id,
                &request.trust_access.product_key,
                &school_products,
                &school_ids,
                now,
            ),
            // A real create learns this in its transaction; only a dry run asks here.
            async {
                if request.validate_only {
                    self.store
                        .find_pending(
                            trust_id,
                            &request.staff_id,
                            &request.trust_access.product_key,
                        )
                        .await
                } else {
                    Ok(None)
                }
            },
        );
        let checked = started.elapsed();
        admin?.require()?;
        let staff = match staff? {
            Some(staff) if staff.active => staff,
            _ => return Err(InvitationError::StaffNotInTrustMis),
        };
        let catalogue = catalogue?;
        check_catalogue(&request, &catalogue, &schools?)?;
        let eligibility = eligibility?;
        let product_name = |key: &str| {
            catalogue
                .get(key)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| key.to_string())
        };
        if !eligibility.trust_subscribed {
            return Err(InvitationError::TrustNotSubscribed {
                product_name: product_name(&request.trust_access.product_key),
            });
        }
        if let Some(pending) = pending?
            && pending.status_at(now) == Status::Pending
        {
            return Err(InvitationError::PendingInvitationExists {
                invitation_id: pending.id,
            });
        }
        let email = Email::parse(&staff.email)
            .map_err(|_| anyhow::anyhow!("identity returned a staff email that does not parse"))?;
        let validated = started.elapsed();
        let (trust_name, inviter_name) = tokio::join!(
            self.deps.trust_name(trust_id),
            self.deps.caller_name(account_id, bearer),
        );
        let delivery = match staff.account_id {
            Some(_) => Delivery::NewProductNotice,
            None => Delivery::SignUpLink,
        };
        let trust_name = trust_name?;
        let state = match delivery {
            Delivery::SignUpLink => GrantState::Pending,
            Delivery::NewProductNotice => GrantState::Active,
        };

        // R5/R6: the trust product, then every eligible pair; the others are skipped.
        let mut granted = vec![GrantedAccess {
            org_kind: OrgKind::Trust,
            org_id: trust_id.to_string(),
            product_key: request.trust_access.product_key.clone(),
            role_key: request.trust_access.role_key.clone(),
            state,
        }];
        let mut skipped = Vec::new();
        if let Some(school) = &request.school_access {
            for pair in &eligibility.pairs {
                if pair.eligible() {
                    granted.push(GrantedAccess {
                        org_kind: OrgKind::School,
                        org_id: pair.school_id.clone(),
                        product_key: pair.product_key.clone(),
                        role_key: school.role_key.clone(),
                        state,
                    });
                } else {
                    skipped.push(SkippedAccess {
                        school_id: pair.school_id.clone(),
                        product_key: pair.product_key.clone(),
                        reason: "NO_ACTIVE_SUBSCRIPTION".into(),
                        detail: ineligibility_detail(pair),
                    });
                }
            }
        }
        let mut invitation = Invitation {
            id: if request.validate_only {
                String::new()
            } else {
                new_id()
            },
            trust_id: trust_id.to_string(),
            trust_name: trust_name.clone(),
            staff_id: request.staff_id.clone(),
            staff_email: email,
            staff_given_name: staff.given_name.clone(),
            inviter_account_id: account_id.to_string(),
            trust_access: request.trust_access.clone(),
            school_access: request.school_access.clone(),
            status: match delivery {
                Delivery::SignUpLink => Status::Pending,
                Delivery::NewProductNotice => Status::Granted,
            },
            delivery,
            granted,
            skipped,
            expire_time: (delivery == Delivery::SignUpLink).then(|| now + self.invitation_ttl),
            current_link_hash: None,
            accepting: false,
            account_id: None,
            create_time: now,
            update_time: now,
        };
        if request.validate_only {
            return Ok(invitation);
        }

        // Each product once, in the order first granted (the trust product first).
        let mut seen = std::collections::HashSet::new();
        let product_names: Vec<String> = invitation
            .granted
            .iter()
            .filter(|g| seen.insert(g.product_key.clone()))
            .map(|g| product_name(&g.product_key))
            .collect();
        let email_payload = EmailPayload {
            trust_name,
            inviter_name,
            product_names,
        };
        // The first link is minted with the invitation and stored (as its hash) in the same
        // transaction; the token itself is only handed to the email sent after the commit.
        let link_token = (delivery == Delivery::SignUpLink).then(new_link_token);
        invitation.current_link_hash = link_token.as_deref().map(hash_link_token);
        let grant_step = self
            .outbox
            .leased_step(&invitation.id, StepKind::Grant, "{}".into());
        let email_step = self.outbox.leased_step(
            &invitation.id,
            StepKind::Email,
            serde_json::to_string(&email_payload).map_err(anyhow::Error::from)?,
        );
        let request_key = request.request_id.as_deref().map(|r| (account_id, r));
        let looked_up = started.elapsed();
        let outcome = self
            .store
            .create(
                &invitation,
                request_key,
                &[grant_step.clone(), email_step.clone()],
                now,
                crate::outbox::wall_now(),
            )
            .await?;
        let committed = started.elapsed();
        let revokes_open = match outcome {
            // Revoke steps queued by this create are settled below with the others.
            CreateOutcome::Created {
                revoke_steps,
                earlier_revokes_open,
            } => earlier_revokes_open || !revoke_steps.is_empty(),
            CreateOutcome::Replayed { invitation_id } => return self.replay(invitation_id).await,
            CreateOutcome::PendingExists { invitation_id } => {
                return Err(InvitationError::PendingInvitationExists { invitation_id });
            }
        };
        // After the commit: grant inline so the reply shows what identity did. A failure
        // leaves the step to the worker; the outcome still says what will be granted. Earlier
        // invitations of the person still being revoked go first.
        let ready = !revokes_open || self.settle_revokes(trust_id, &request.staff_id).await;
        if ready {
            if let Ok(granted) = self.outbox.run_leased_grant(&grant_step, &invitation).await {
                invitation.granted = granted;
            }
        } else {
            // Let the worker do it once the earlier invitation's grants are revoked.
            let _ = self
                .store
                .retry_step(&grant_step.id, crate::outbox::wall_now(), "deferred")
                .await;
            self.outbox.wake.notify_one();
        }
        // Both steps are leased to this server: the worker need not be woken for them.
        self.outbox
            .send_inline(email_step, invitation.clone(), email_payload, link_token);
        tracing::debug!(
            reads_ms = checked.as_secs_f64() * 1e3,
            validated_ms = validated.as_secs_f64() * 1e3,
            lookup_ms = looked_up.as_secs_f64() * 1e3,
            commit_ms = committed.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "invitation created"
        );
        Ok(invitation)
    }

    /// Runs the open revoke steps of a staff member's invitations (those this create just
    /// queued included), waiting a moment for any another worker holds. True when none is
    /// left.
    async fn settle_revokes(&self, trust_id: &str, staff_id: &str) -> bool {
        for _ in 0..30 {
            let Ok(open) = self.store.open_revokes_of_staff(trust_id, staff_id).await else {
                return false;
            };
            if open.is_empty() {
                return true;
            }
            let mut held = false;
            for step in open {
                match self.outbox.run_now(&step).await {
                    Ok(true) => {}
                    Ok(false) => held = true,
                    Err(_) => return false,
                }
            }
            if held {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        false
    }

    async fn replay(&self, id: String) -> Result<Invitation> {
        self.store
            .get(&id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("request id names a missing invitation").into())
    }

    pub async fn get(&self, caller: &Principal, id: &str) -> Result<Invitation> {
        self.visible(caller, id).await
    }

    /// ListInvitations: newest first. Returns the rows and the next page key.
    pub async fn list(
        &self,
        caller: &Principal,
        filter: &ListFilter,
        after: Option<&PageKey>,
        limit: i64,
    ) -> Result<Vec<Invitation>> {
        let account_id = user(caller)?;
        let account_id = account_id.as_str();
        self.deps
            .check_administrator(&filter.trust_id, account_id)
            .await?
            .require()?;
        Ok(self.store.list(filter, after, limit).await?)
    }

    /// R9: a new link and window; earlier links stop working.
    pub async fn resend(
        &self,
        caller: &Principal,
        bearer: Option<&str>,
        id: &str,
    ) -> Result<Invitation> {
        let invitation = self.visible(caller, id).await?;
        let now = self.now();
        let payload = EmailPayload {
            trust_name: invitation.trust_name.clone(),
            inviter_name: self
                .deps
                .caller_name(
                    &caller
                        .account_id()
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                    bearer,
                )
                .await,
            product_names: self.product_names(&invitation).await,
        };
        let step = self.outbox.new_step(
            id,
            StepKind::Email,
            serde_json::to_string(&payload).map_err(anyhow::Error::from)?,
        );
        let updated = self
            .store
            .resend(
                id,
                now,
                now + self.invitation_ttl,
                &step,
                crate::outbox::wall_now(),
            )
            .await?
            .ok_or_else(|| InvitationError::NotFound { id: id.to_string() })?
            .map_err(|status| InvitationError::NotPending { status })?;
        self.outbox.wake.notify_one();
        Ok(updated)
    }

    async fn product_names(&self, invitation: &Invitation) -> Vec<String> {
        let catalogue = self.deps.catalogue().await.ok();
        let mut names: Vec<String> = invitation
            .granted
            .iter()
            .map(|g| {
                catalogue
                    .as_ref()
                    .and_then(|c| c.get(&g.product_key))
                    .map(|p| p.name.clone())
                    .unwrap_or_else(|| g.product_key.clone())
            })
            .collect();
        names.dedup();
        names
    }

    /// R10: withdraws a pending invitation and its pending grants.
    pub async fn revoke(&self, caller: &Principal, id: &str) -> Result<Invitation> {
        self.visible(caller, id).await?;
        let now = self.now();
        let step = self
            .outbox
            .new_step(id, StepKind::Revoke, REVOKE_PENDING_PAYLOAD.to_string());
        let updated = self
            .store
            .revoke(id, now, &step, crate::outbox::wall_now())
            .await?
            .ok_or_else(|| InvitationError::NotFound { id: id.to_string() })?
            .map_err(|status| InvitationError::NotPending { status })?;
        // Revoke in identity now when the grants are made; otherwise the worker does it after.
        if self.store.open_steps(id, StepKind::Grant).await?.is_empty() {
            let _ = self.outbox.run_now(&step.id).await;
        }
        self.outbox.wake.notify_one();
        Ok(updated)
    }

    /// The invitation a link token belongs to, if the link is usable now.
    async fn usable_link(&self, token: &str) -> Result<(Invitation, DateTime<Utc>)> {
        let hash = hash_link_token(token);
        let invitation = self
            .store
            .find_link(&hash)
            .await?
            .ok_or(InvitationError::LinkNotFound)?;
        let now = self.now();
        check_link(&invitation, &hash, now).map_err(InvitationError::Link)?;
        Ok((invitation, now))
    }

    pub async fn inspect(&self, token: &str) -> Result<Invitation> {
        Ok(self.usable_link(token).await?.0)
    }

    /// R11: registers the invitee, activates the grants, marks the invitation ACCEPTED.
    pub async fn accept(&self, request: AcceptRequest) -> Result<(String, Invitation)> {
        let hash = hash_link_token(&request.token);
        if let Some(request_id) = &request.request_id
            && let Some(invitation) = self.store.find_link(&hash).await?
            && let Some(account_id) = self
                .store
                .find_accept_request(&invitation.id, request_id)
                .await?
        {
            return Ok((account_id, invitation));
        }
        let (invitation, _) = self.usable_link(&request.token).await?;
        // The grants must exist in identity before they can be activated. A step another
        // worker holds is given a moment to finish.
        let mut waits = 0;
        loop {
            let open = self
                .store
                .open_steps(&invitation.id, StepKind::Grant)
                .await?;
            if open.is_empty() {
                break;
            }
            let mut held_elsewhere = false;
            for step in open {
                match self.outbox.run_now(&step).await {
                    Ok(true) => {}
                    Ok(false) => held_elsewhere = true,
                    Err(error) => {
                        tracing::warn!(error = %error, "grant step failed during accept");
                        return Err(InvitationError::Unavailable(
                            "the invitation's access could not be set up yet; retry shortly".into(),
                        ));
                    }
                }
            }
            if !held_elsewhere {
                continue;
            }
            waits += 1;
            if waits > 30 {
                return Err(InvitationError::Unavailable(
                    "the invitation's access is still being set up; retry shortly".into(),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.store.mark_accepting(&invitation.id).await?;
        let registered = self
            .deps
            .register_account(portal_proto::identity::v1::RegisterAccountRequest {
                email: invitation.staff_email.as_str().to_string(),
                given_name: request.given_name.clone(),
                family_name: request.family_name.clone(),
                password: request.password.clone(),
                invitation_id: invitation.id.clone(),
            })
            .await?;
        let account_id = match registered {
            Some(account_id) => account_id,
            // A retried accept whose registration went through: carry on with that account.
            None if invitation.accepting => self
                .deps
                .lookup_account(invitation.staff_email.as_str())
                .await?
                .ok_or_else(|| anyhow::anyhow!("account vanished after registration"))?,
            None => return Err(InvitationError::AccountExists),
        };
        self.deps
            .activate_grants(&invitation.id, &account_id)
            .await?;
        let granted: Vec<GrantedAccess> = invitation
            .granted
            .iter()
            .map(|g| GrantedAccess {
                state: match g.state {
                    GrantState::AlreadyHeld => GrantState::AlreadyHeld,
                    _ => GrantState::Active,
                },
                ..g.clone()
            })
            .collect();
        let now = self.now();
        let completed = self
            .store
            .complete_accept(
                &invitation.id,
                &account_id,
                request.request_id.as_deref(),
                &granted,
                now,
            )
            .await?;
        let stored = self
            .store
            .get(&invitation.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("accepted invitation vanished"))?;
        if !completed {
            // Another accept finished first, or the invitation was withdrawn meanwhile.
            let hash = hash_link_token(&request.token);
            check_link(&stored, &hash, now).map_err(InvitationError::Link)?;
        }
        Ok((account_id, stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sub::IneligibilityReason as R;

    fn pair(reason: sub::IneligibilityReason, since: Option<DateTime<Utc>>) -> PairAnswer {
        PairAnswer {
            school_id: "school".into(),
            product_key: "sonar".into(),
            reason,
            since,
        }
    }

    #[test]
    fn a_skipped_pair_says_when_its_subscription_ended_starts_or_was_cancelled() {
        let day = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 8, 31, 0, 0, 0).unwrap();
        assert_eq!(
            ineligibility_detail(&pair(R::Ended, Some(day))),
            "the school's subscription ended on 31 August 2026"
        );
        assert_eq!(
            ineligibility_detail(&pair(R::NotStarted, Some(day))),
            "the school's subscription starts on 31 August 2026"
        );
        assert_eq!(
            ineligibility_detail(&pair(R::Cancelled, Some(day))),
            "the school's subscription was cancelled with effect from 31 August 2026"
        );
        assert_eq!(
            ineligibility_detail(&pair(R::NoSubscription, None)),
            "the school has no subscription to this product"
        );
    }
}
