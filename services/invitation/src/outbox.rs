//! Steps after the commit — grant, revoke, email — carried out from the outbox: each row is
//! claimed by one worker at a time (a lease), retried with exponential backoff, and done once.
//! Also the expiry sweeper (R7).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};

use portal_proto::identity::v1 as id;
use portal_runtime::clock::SharedClock;
use portal_runtime::server::Shutdown;

use crate::deps::Deps;
use crate::domain::{
    Delivery, GrantState, GrantedAccess, Invitation, OrgKind, Status, hash_link_token,
    new_link_token,
};
use crate::error::{InvitationError, Result};
use crate::mail::{Letter, LetterContent, Mailer};
use crate::store::{InvitationStore, NewStep, Step, StepKind};

/// Payload of the revoke step queued when an invitation expires or is withdrawn.
pub const REVOKE_PENDING_PAYLOAD: &str = r#"{"pending_only":true}"#;

/// How long a claimed step is reserved to its worker: longer than any step takes (calls to
/// identity time out after a few seconds, SMTP after 15 s).
pub const LEASE: Duration = Duration::from_secs(60);
/// After this many failed attempts a step is given up (and logged).
const MAX_ATTEMPTS: i32 = 25;
/// Steps claimed per round.
const BATCH: i64 = 32;
/// Emails of new invitations sent at once, right after their create; more wait their turn.
pub const INLINE_EMAILS: usize = 16;
/// How long shutdown waits for emails being sent right after a create.
const INLINE_EMAILS_DRAIN: Duration = Duration::from_secs(10);
/// How long finished steps gather before they are recorded together.
const RECORD_DELAY: Duration = Duration::from_millis(20);

#[derive(Debug, Serialize, Deserialize)]
pub struct RevokePayload {
    pub pending_only: bool,
}

/// What the email step needs beyond the invitation row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailPayload {
    pub trust_name: String,
    pub inviter_name: String,
    pub product_names: Vec<String>,
}

/// Wall-clock microseconds: scheduling of retries and leases is operational timing, kept on
/// the real clock even when the business clock is a test's manual one.
pub fn wall_now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Delay before attempt `attempts + 1`: 500 ms doubling, at most 5 minutes.
pub fn backoff(attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 20) as u32 - 1;
    Duration::from_millis(500u64.saturating_mul(1u64 << exp.min(10))).min(Duration::from_secs(300))
}

/// Runs outbox steps.
#[derive(Clone)]
pub struct Outbox {
    pub store: Arc<dyn InvitationStore>,
    pub deps: Deps,
    pub clock: SharedClock,
    pub mailer: Mailer,
    pub link_base_url: String,
    pub wake: Arc<Notify>,
    /// Completed steps not yet recorded: they are recorded together, one statement per
    /// outcome, by the worker's next round. Until then their lease keeps them from running
    /// again; if the record is lost, the lease runs out and the step runs again, which every
    /// step allows (grants and revokes are idempotent in identity; an email is at worst sent
    /// twice, as after any crash between sending and recording it).
    pub finished: Arc<Mutex<Vec<(String, &'static str)>>>,
    /// Wakes [`Outbox::record_finished`].
    pub record: Arc<Notify>,
    /// Bounds the emails sent right after their create.
    pub inline_emails: Arc<Semaphore>,
}

impl Outbox {
    pub fn new(
        store: Arc<dyn InvitationStore>,
        deps: Deps,
        clock: SharedClock,
        mailer: Mailer,
        link_base_url: String,
    ) -> Self {
        Self {
            store,
            deps,
            clock,
            mailer,
            link_base_url,
            wake: Arc::new(Notify::new()),
            finished: Arc::default(),
            record: Arc::new(Notify::new()),
            inline_emails: Arc::new(Semaphore::new(INLINE_EMAILS)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Done,
    Skipped,
}

impl Done {
    fn outcome(self) -> &'static str {
        match self {
            Done::Done => "DONE",
            Done::Skipped => "SKIPPED",
        }
    }
}

impl Outbox {
    pub fn new_step(&self, invitation_id: &str, kind: StepKind, payload: String) -> NewStep {
        NewStep {
            id: portal_runtime::types::new_id(),
            invitation_id: invitation_id.to_string(),
            kind,
            payload,
            claimed_until: 0,
        }
    }

    /// A step inserted already leased to the caller, who runs it right after the commit.
    pub fn leased_step(&self, invitation_id: &str, kind: StepKind, payload: String) -> NewStep {
        NewStep {
            claimed_until: wall_now() + micros(LEASE),
            ..self.new_step(invitation_id, kind, payload)
        }
    }

    /// Claims and runs one step now (inline after a commit). Ok(true) when it completed.
    pub async fn run_now(&self, step_id: &str) -> Result<bool> {
        let now = wall_now();
        match self
            .store
            .claim_step(step_id, now, now + micros(LEASE))
            .await?
        {
            Some(step) => {
                let ran = self.run(step).await;
                self.flush_finished().await?;
                ran
            }
            None => Ok(false),
        }
    }

    /// Notes a completed step, to be recorded with the others by [`Outbox::flush_finished`].
    fn finish_later(&self, id: String, outcome: &'static str) {
        self.finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, outcome));
        self.record.notify_one();
    }

    /// Records every completed step noted so far: one statement per outcome. On failure the
    /// steps stay noted for the next round.
    pub async fn flush_finished(&self) -> Result<()> {
        let noted = std::mem::take(&mut *self.finished.lock().unwrap_or_else(|e| e.into_inner()));
        if noted.is_empty() {
            return Ok(());
        }
        let mut outcomes: Vec<&'static str> = noted.iter().map(|(_, o)| *o).collect();
        outcomes.sort_unstable();
        outcomes.dedup();
        let now = wall_now();
        for outcome in outcomes {
            let ids: Vec<String> = noted
                .iter()
                .filter(|(_, o)| *o == outcome)
                .map(|(id, _)| id.clone())
                .collect();
            if let Err(error) = self.store.finish_steps(&ids, outcome, now).await {
                self.finished
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(noted);
                return Err(error.into());
            }
        }
        Ok(())
    }

    /// Sends the email of an invitation just created, off the reply's path: `step` was
    /// inserted leased to this server and `token` is the link minted with the invitation
    /// (the database holds only its hash). A failure leaves the step to the worker.
    pub fn send_inline(
        &self,
        step: NewStep,
        invitation: Invitation,
        payload: EmailPayload,
        token: Option<String>,
    ) {
        let outbox = self.clone();
        tokio::spawn(async move {
            let Ok(_permit) = outbox.inline_emails.clone().acquire_owned().await else {
                return;
            };
            match outbox.email(&invitation, payload, &step.id, token).await {
                Ok(done) => outbox.finish_later(step.id, done.outcome()),
                Err(error) => {
                    tracing::warn!(
                        step = %step.id, error = %error,
                        "sending the invitation email failed; the outbox will retry"
                    );
                    let next = wall_now() + micros(backoff(1));
                    if let Err(error) = outbox
                        .store
                        .retry_step(&step.id, next, &error.to_string())
                        .await
                    {
                        tracing::warn!(step = %step.id, error = %error,
                            "releasing the email step failed; it runs when its lease ends");
                    }
                }
            }
        });
    }

    /// Runs the grant step leased to the caller by [`Outbox::leased_step`] for the invitation
    /// just stored (its first attempt). Returns the grants as identity made them.
    pub async fn run_leased_grant(
        &self,
        step: &NewStep,
        invitation: &Invitation,
    ) -> Result<Vec<GrantedAccess>> {
        match self.grant(invitation).await {
            Ok((_, granted)) => {
                // Recorded off the reply's path, with other steps, by the worker.
                self.finish_later(step.id.clone(), "DONE");
                Ok(granted)
            }
            Err(error) => {
                tracing::warn!(
                    step = %step.id, error = %error,
                    "granting after the commit failed; the outbox will retry"
                );
                let next = wall_now() + micros(backoff(1));
                self.store
                    .retry_step(&step.id, next, &error.to_string())
                    .await?;
                Err(error)
            }
        }
    }

    /// Runs a claimed step and records its result. Ok(true) when it completed; a failure is
    /// scheduled for retry and returned.
    async fn run(&self, step: Step) -> Result<bool> {
        match self.execute(&step).await {
            Ok(done) => {
                self.finish_later(step.id, done.outcome());
                Ok(true)
            }
            Err(error) => {
                let text = error.to_string();
                if step.attempts >= MAX_ATTEMPTS {
                    tracing::error!(
                        step = %step.id, kind = step.kind.as_str(), attempts = step.attempts,
                        error = %text, "outbox step failed for good"
                    );
                    self.finish_later(step.id.clone(), "FAILED");
                } else {
                    tracing::warn!(
                        step = %step.id, kind = step.kind.as_str(), attempts = step.attempts,
                        error = %text, "outbox step failed; will retry"
                    );
                    let next = wall_now() + micros(backoff(step.attempts));
                    self.store.retry_step(&step.id, next, &text).await?;
                }
                Err(error)
            }
        }
    }

    async fn execute(&self, step: &Step) -> Result<Done> {
        let invitation = self
            .store
            .get(&step.invitation_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("outbox step of an unknown invitation"))?;
        match step.kind {
            StepKind::Grant => Ok(self.grant(&invitation).await?.0),
            StepKind::Revoke => {
                let payload: RevokePayload = serde_json::from_str(&step.payload)
                    .map_err(|e| anyhow::anyhow!("revoke payload: {e}"))?;
                self.deps
                    .revoke_grants(&invitation.id, payload.pending_only)
                    .await?;
                Ok(Done::Done)
            }
            StepKind::Email => {
                let payload: EmailPayload = serde_json::from_str(&step.payload)
                    .map_err(|e| anyhow::anyhow!("email payload: {e}"))?;
                self.email(&invitation, payload, &step.id, None).await
            }
        }
    }

    /// BatchGrant of the invitation's grants (idempotent per invitation id in identity).
    async fn grant(&self, invitation: &Invitation) -> Result<(Done, Vec<GrantedAccess>)> {
        if matches!(invitation.status, Status::Revoked | Status::Expired) {
            return Ok((Done::Skipped, invitation.granted.clone()));
        }
        let activate = invitation.delivery == Delivery::NewProductNotice;
        let request = id::BatchGrantRequest {
            invitation_id: invitation.id.clone(),
            trust_id: invitation.trust_id.clone(),
            email: invitation.staff_email.as_str().to_string(),
            staff_id: invitation.staff_id.clone(),
            grants: invitation
                .granted
                .iter()
                .map(|g| id::GrantSpec {
                    organization_kind: match g.org_kind {
                        OrgKind::Trust => id::OrganizationKind::Trust,
                        OrgKind::School => id::OrganizationKind::School,
                    } as i32,
                    organization_id: g.org_id.clone(),
                    product_key: g.product_key.clone(),
                    role_key: g.role_key.clone(),
                })
                .collect(),
            activate,
        };
        let reply = self.deps.batch_grant(request).await?;
        let granted = apply_results(&invitation.granted, &reply.results, activate);
        if granted != invitation.granted {
            self.store.update_granted(&invitation.id, &granted).await?;
        }
        Ok((Done::Done, granted))
    }

    /// Sends an invitation's email. A sign-up link uses `token` when the invitation was
    /// stored with it; otherwise a new link is minted and replaces the current one.
    async fn email(
        &self,
        invitation: &Invitation,
        payload: EmailPayload,
        step_id: &str,
        token: Option<String>,
    ) -> Result<Done> {
        let content = match invitation.delivery {
            Delivery::NewProductNotice => LetterContent::NewProductNotice,
            Delivery::SignUpLink => {
                let now = self.clock.now();
                let Some(expire_time) = invitation.expire_time else {
                    return Ok(Done::Skipped);
                };
                if invitation.status_at(now) != Status::Pending {
                    return Ok(Done::Skipped);
                }
                // The token exists only in memory and in the email: the database keeps its hash.
                let token = match token {
                    Some(token) => token,
                    None => {
                        let token = new_link_token();
                        if !self
                            .store
                            .install_link(&invitation.id, &hash_link_token(&token), now)
                            .await?
                        {
                            return Ok(Done::Skipped);
                        }
                        token
                    }
                };
                LetterContent::SignUp {
                    link: format!("{}?token={token}", self.link_base_url),
                    code: token,
                    expire_time,
                }
            }
        };
        let letter = Letter {
            given_name: invitation.staff_given_name.clone(),
            trust_name: payload.trust_name,
            inviter_name: payload.inviter_name,
            product_names: payload.product_names,
            content,
        };
        self.mailer
            .send(invitation.staff_email.as_str(), &letter, step_id)
            .await
            .map_err(|e| InvitationError::Unavailable(format!("sending the email: {e:#}")))?;
        Ok(Done::Done)
    }

    /// One round: expire what is due, then run due steps until none is left.
    pub async fn tick(&self) -> Result<usize> {
        self.sweep().await?;
        self.drain().await
    }

    /// R7: marks PENDING invitations past their expiry EXPIRED, queueing their revokes.
    pub async fn sweep(&self) -> Result<usize> {
        let now = self.clock.now();
        let mut total = 0;
        loop {
            let expired = self
                .store
                .expire_due(now, 100, REVOKE_PENDING_PAYLOAD, wall_now())
                .await?;
            total += expired.len();
            if expired.len() < 100 {
                break;
            }
        }
        if total > 0 {
            tracing::info!(count = total, "invitations expired");
        }
        Ok(total)
    }

    /// Runs due steps until none is left.
    pub async fn drain(&self) -> Result<usize> {
        let mut ran = 0;
        loop {
            let now = wall_now();
            let steps = self
                .store
                .claim_due(now, now + micros(LEASE), BATCH)
                .await?;
            let claimed = steps.len();
            ran += claimed;
            futures::future::join_all(steps.into_iter().map(|step| async move {
                let _ = self.run(step).await;
            }))
            .await;
            self.flush_finished().await?;
            if (claimed as i64) < BATCH {
                break;
            }
        }
        Ok(ran)
    }

    /// The background worker: a round every `interval`, or at once when woken.
    pub async fn work(self, interval: Duration, shutdown: Shutdown) {
        let mut started = false;
        // The sweeper runs once per interval; a wake-up (new steps) only drains the outbox.
        let mut last_sweep: Option<std::time::Instant> = None;
        loop {
            if let Err(error) = self.flush_finished().await
                && started
            {
                tracing::warn!(error = %error, "recording finished outbox steps failed");
            }
            let round = if last_sweep.is_none_or(|at| at.elapsed() >= interval) {
                last_sweep = Some(std::time::Instant::now());
                self.tick().await
            } else {
                self.drain().await
            };
            match round {
                Ok(_) => started = true,
                // Until the first round succeeds the schema may still be migrating.
                Err(error) if !started => {
                    tracing::debug!(error = %error, "outbox not ready yet");
                }
                Err(error) => tracing::warn!(error = %error, "outbox round failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.wait() => return,
            }
        }
    }
}

impl Outbox {
    /// Records finished steps shortly after they finish, many at a time, until `shutdown`;
    /// then lets the emails being sent right after a create finish and records the rest.
    pub async fn record_finished(self, shutdown: Shutdown) {
        loop {
            tokio::select! {
                _ = self.record.notified() => {}
                _ = shutdown.wait() => {
                    self.finish_inline_emails().await;
                    return;
                }
            }
            tokio::time::sleep(RECORD_DELAY).await;
            if let Err(error) = self.flush_finished().await {
                tracing::warn!(error = %error, "recording finished outbox steps failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                self.record.notify_one();
            }
        }
    }

    /// At shutdown: lets the emails being sent right after a create finish (for a while),
    /// then records what completed.
    async fn finish_inline_emails(&self) {
        let all = u32::try_from(INLINE_EMAILS).unwrap_or(u32::MAX);
        let _ =
            tokio::time::timeout(INLINE_EMAILS_DRAIN, self.inline_emails.acquire_many(all)).await;
        if let Err(error) = self.flush_finished().await {
            tracing::warn!(error = %error, "recording finished outbox steps at shutdown failed");
        }
    }
}

/// The grants' states after BatchGrant: what identity made, and what the person already held.
pub fn apply_results(
    granted: &[GrantedAccess],
    results: &[id::GrantResult],
    activate: bool,
) -> Vec<GrantedAccess> {
    granted
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let state = match results.get(i) {
                Some(r) if r.outcome == id::GrantOutcome::AlreadyHeld as i32 => {
                    GrantState::AlreadyHeld
                }
                Some(r)
                    if r.grant.as_ref().map(|g| g.status)
                        == Some(id::GrantStatus::Active as i32) =>
                {
                    GrantState::Active
                }
                Some(_) => GrantState::Pending,
                None if activate => GrantState::Active,
                None => GrantState::Pending,
            };
            GrantedAccess { state, ..g.clone() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_a_ceiling() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(30), Duration::from_secs(300));
    }
}
