//! The outbox worker: steps after a commit (grant, revoke, email) carried out from the
//! outbox. Each row is claimed by one worker at a time (a lease), retried with exponential
//! backoff, and recorded once done. Also the expiry sweeper (R7).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tracing::Instrument as _;

use portal_runtime::clock::SharedClock;
use portal_runtime::server::Shutdown;
use portal_runtime::vocab::{InvitationId, StaffId, StepId, TrustId};

use crate::clients::Identity;
use crate::clients::mail::{Letter, LetterContent, Mailer};
use crate::domain::outbox::{MAX_ATTEMPTS, backoff};
use crate::domain::{
    Delivery, EmailDetails, GrantedAccess, Invitation, LinkToken, Status, Step, StepKind,
    StepOutcome, Work,
};
use crate::error::{Error, Result};
use crate::store::Store;

/// How long a claimed step is reserved to its worker: longer than any step takes (calls to
/// identity time out after a few seconds, SMTP after 15 s).
const LEASE: Duration = Duration::from_secs(60);
/// Steps claimed per round.
const BATCH: i64 = 32;
/// Invitations expired per statement of the sweeper.
const EXPIRE_BATCH: i64 = 100;
/// Emails of new invitations sent at once, right after their create; more wait their turn.
const INLINE_EMAILS: usize = 16;
/// How long shutdown waits for emails being sent right after a create.
const INLINE_EMAILS_DRAIN: Duration = Duration::from_secs(10);
/// How long finished steps gather before they are recorded together.
const RECORD_DELAY: Duration = Duration::from_millis(20);
/// The feed of identity's staff status changes.
const STAFF_FEED: &str = "identity.staff_status";
/// How far before the newest change seen the feed is read again.
const FEED_OVERLAP: Duration = Duration::from_secs(60);
/// Most changes read per round.
const FEED_BATCH: usize = 5_000;
/// How many times a use case waits, 100 ms each, for a step another worker holds.
const HELD_STEP_WAITS: usize = 30;

/// Steps a use case runs itself rather than wait for the worker.
enum OpenSteps {
    /// The open revokes of a staff member's invitations.
    RevokesOfStaff(TrustId, StaffId),
    /// The open grant steps of an invitation.
    GrantsOf(InvitationId),
}

/// How running a set of steps now ended.
enum Settled {
    /// Every step ran; none is left.
    Done,
    /// Another worker still holds some.
    StillHeld,
    /// A step failed (it is scheduled for retry).
    StepFailed(Error),
}

/// Wall-clock microseconds: scheduling of retries and leases is operational timing, kept on
/// the real clock even when the business clock is a test's manual one.
pub fn wall_now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The end of a lease taken now.
pub fn lease_end() -> i64 {
    wall_now() + micros(LEASE)
}

/// Runs outbox steps. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    store: Arc<dyn Store>,
    identity: Identity,
    clock: SharedClock,
    mailer: Mailer,
    link_base_url: String,
    /// Wakes the worker for steps just queued.
    wake: Arc<Notify>,
    /// Completed steps not yet recorded: they are recorded together, one statement per
    /// outcome, shortly after. Until then their lease keeps them from running again; if the
    /// record is lost, the lease runs out and the step runs again, which every step allows
    /// (grants and revokes are idempotent in identity; an email is at worst sent twice, as
    /// after any crash between sending and recording it).
    finished: Arc<Mutex<Vec<(StepId, StepOutcome)>>>,
    /// Wakes [`Outbox::record_finished`].
    record: Arc<Notify>,
    /// Bounds the emails sent right after their create.
    inline_emails: Arc<Semaphore>,
}

impl Outbox {
    pub fn new(
        store: Arc<dyn Store>,
        identity: Identity,
        clock: SharedClock,
        mailer: Mailer,
        link_base_url: String,
    ) -> Self {
        Self {
            store,
            identity,
            clock,
            mailer,
            link_base_url,
            wake: Arc::new(Notify::new()),
            finished: Arc::default(),
            record: Arc::new(Notify::new()),
            inline_emails: Arc::new(Semaphore::new(INLINE_EMAILS)),
        }
    }

    /// Has the worker look for due steps now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Outbox steps not yet done.
    pub async fn backlog(&self) -> Result<i64> {
        self.store.outbox_backlog().await
    }

    /// Claims and runs one step now (inline after a commit). Ok(true) when it completed;
    /// Ok(false) when another worker holds it.
    async fn run_now(&self, step_id: StepId) -> Result<bool> {
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

    /// The ids of the open steps of `steps`.
    async fn open(&self, steps: &OpenSteps) -> Result<Vec<StepId>> {
        match *steps {
            OpenSteps::RevokesOfStaff(trust_id, staff_id) => {
                self.store.open_revokes_of_staff(trust_id, staff_id).await
            }
            OpenSteps::GrantsOf(invitation_id) => {
                self.store.open_steps(invitation_id, StepKind::Grant).await
            }
        }
    }

    /// Runs the open steps of `steps` until none is left, giving a step another worker holds
    /// a moment to finish (up to [`HELD_STEP_WAITS`] waits).
    async fn run_until_none(&self, steps: OpenSteps) -> Result<Settled> {
        let mut waits = 0;
        loop {
            let steps = self.open(&steps).await?;
            if steps.is_empty() {
                return Ok(Settled::Done);
            }
            let mut held = false;
            for step in steps {
                match self.run_now(step).await {
                    Ok(ran) => held |= !ran,
                    Err(error) => return Ok(Settled::StepFailed(error)),
                }
            }
            if held {
                if waits == HELD_STEP_WAITS {
                    return Ok(Settled::StillHeld);
                }
                waits += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// After a create's commit: grants inline so the reply shows what identity did (the
    /// `grant` step was inserted leased to this server). Revokes of the person's earlier
    /// invitations still open go first; when they cannot be settled now, the grant is left to
    /// the worker. Returns the grants as they stand.
    pub async fn grant_created(
        &self,
        invitation: &Invitation,
        grant: StepId,
        revokes_open: bool,
    ) -> Vec<GrantedAccess> {
        let ready = !revokes_open
            || self
                .settle_revokes(invitation.trust_id, invitation.staff_id)
                .await;
        if !ready {
            // Let the worker do it once the earlier invitation's grants are revoked.
            let _ = self.store.retry_step(grant, wall_now(), "deferred").await;
            self.wake();
            return invitation.granted.clone();
        }
        match self.grant(invitation).await {
            Ok((_, granted)) => {
                // Recorded off the reply's path, with other steps.
                self.finish_later(grant, StepOutcome::Done);
                granted
            }
            Err(error) => {
                // The outcome still says what will be granted; the worker retries.
                tracing::warn!(
                    step = %grant, error = %error,
                    "granting after the commit failed; the outbox will retry"
                );
                let next = wall_now() + micros(backoff(1));
                let _ = self.store.retry_step(grant, next, &error.to_string()).await;
                invitation.granted.clone()
            }
        }
    }

    /// Runs the open revoke steps of a staff member's invitations (those a create just queued
    /// included). True when none is left.
    async fn settle_revokes(&self, trust_id: TrustId, staff_id: StaffId) -> bool {
        let revokes = OpenSteps::RevokesOfStaff(trust_id, staff_id);
        matches!(self.run_until_none(revokes).await, Ok(Settled::Done))
    }

    /// R11: makes the invitation's grants in identity now if the outbox has not yet, so they
    /// can be activated.
    pub async fn complete_grants(&self, invitation_id: InvitationId) -> Result<()> {
        match self
            .run_until_none(OpenSteps::GrantsOf(invitation_id))
            .await?
        {
            Settled::Done => Ok(()),
            Settled::StillHeld => Err(Error::Unavailable(
                "the invitation's access is still being set up; retry shortly".into(),
            )),
            Settled::StepFailed(error) => {
                tracing::warn!(error = %error, "grant step failed during accept");
                Err(Error::Unavailable(
                    "the invitation's access could not be set up yet; retry shortly".into(),
                ))
            }
        }
    }

    /// R10: revokes in identity now when the invitation's grants are made; otherwise the
    /// worker does it after them.
    pub async fn revoke_soon(&self, invitation_id: InvitationId, revoke: StepId) -> Result<()> {
        if self
            .store
            .open_steps(invitation_id, StepKind::Grant)
            .await?
            .is_empty()
        {
            let _ = self.run_now(revoke).await;
        }
        self.wake();
        Ok(())
    }

    /// Runs steps just queued now, so a reply shows their effect; what cannot run now (a
    /// grant still open, a failure) is left to the worker.
    pub async fn run_soon(&self, steps: &[StepId]) {
        for &step in steps {
            if let Err(error) = self.run_now(step).await {
                tracing::warn!(step = %step, error = %error, "step failed; the outbox will retry");
            }
        }
        self.wake();
    }

    /// Sends the email of an invitation just created, off the reply's path: `step` was
    /// inserted leased to this server and `token` is the link minted with the invitation
    /// (the database holds only its hash). A failure leaves the step to the worker.
    pub fn send_inline(
        &self,
        step: StepId,
        invitation: Invitation,
        details: EmailDetails,
        token: Option<LinkToken>,
    ) {
        let outbox = self.clone();
        tokio::spawn(async move {
            let Ok(_permit) = outbox.inline_emails.clone().acquire_owned().await else {
                return;
            };
            match outbox.email(&invitation, details, step, token).await {
                Ok(outcome) => outbox.finish_later(step, outcome),
                Err(error) => {
                    let (kept, final_answer) = kept_failure(&error);
                    let recorded = if final_answer {
                        tracing::error!(step = %step, error = %error,
                            "the invitation email was refused for good");
                        outbox.store.fail_step(step, &kept, wall_now()).await
                    } else {
                        tracing::warn!(
                            step = %step, error = %error,
                            "sending the invitation email failed; the outbox will retry"
                        );
                        let next = wall_now() + micros(backoff(1));
                        outbox.store.retry_step(step, next, &kept).await
                    };
                    if let Err(error) = recorded {
                        tracing::warn!(step = %step, error = %error,
                            "releasing the email step failed; it runs when its lease ends");
                    }
                }
            }
        });
    }

    /// Notes a completed step, to be recorded with the others by [`Outbox::flush_finished`].
    fn finish_later(&self, id: StepId, outcome: StepOutcome) {
        self.finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, outcome));
        self.record.notify_one();
    }

    /// Records every completed step noted so far: one statement per outcome. On failure the
    /// steps stay noted for the next round.
    async fn flush_finished(&self) -> Result<()> {
        let noted = std::mem::take(&mut *self.finished.lock().unwrap_or_else(|e| e.into_inner()));
        if noted.is_empty() {
            return Ok(());
        }
        let mut outcomes: Vec<StepOutcome> = noted.iter().map(|(_, o)| *o).collect();
        outcomes.sort_unstable();
        outcomes.dedup();
        let now = wall_now();
        for outcome in outcomes {
            let ids: Vec<StepId> = noted
                .iter()
                .filter(|(_, o)| *o == outcome)
                .map(|(id, _)| *id)
                .collect();
            if let Err(error) = self.store.finish_steps(&ids, outcome, now).await {
                self.finished
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(noted);
                return Err(error);
            }
        }
        Ok(())
    }

    /// Runs a claimed step and notes its result. Ok(true) when it completed; a failure is
    /// scheduled for retry and returned.
    async fn run(&self, step: Step) -> Result<bool> {
        match self.execute(&step).await {
            Ok(outcome) => {
                self.finish_later(step.id, outcome);
                Ok(true)
            }
            Err(error) => {
                let (kept, final_answer) = kept_failure(&error);
                if final_answer || step.attempts >= MAX_ATTEMPTS {
                    tracing::error!(
                        step = %step.id, kind = %step.kind, attempts = step.attempts,
                        error = %error, "outbox step failed for good"
                    );
                    self.store.fail_step(step.id, &kept, wall_now()).await?;
                } else {
                    tracing::warn!(
                        step = %step.id, kind = %step.kind, attempts = step.attempts,
                        error = %error, "outbox step failed; will retry"
                    );
                    let next = wall_now() + micros(backoff(step.attempts));
                    self.store.retry_step(step.id, next, &kept).await?;
                }
                Err(error)
            }
        }
    }

    async fn execute(&self, step: &Step) -> Result<StepOutcome> {
        let invitation = self
            .store
            .get(step.invitation_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("outbox step of an unknown invitation"))?;
        match step.work().map_err(|e| anyhow::anyhow!(e))? {
            Work::Grant => Ok(self.grant(&invitation).await?.0),
            Work::Revoke { pending_only } => {
                self.identity
                    .revoke_grants(invitation.id, pending_only)
                    .await?;
                Ok(StepOutcome::Done)
            }
            Work::Email(details) => self.email(&invitation, details, step.id, None).await,
            Work::Activate { account_id } => {
                let withdrawn = self
                    .identity
                    .activate_grants(invitation.id, account_id)
                    .await?;
                let granted = invitation.accepted_grants(&withdrawn);
                if granted != invitation.granted {
                    self.store.update_granted(invitation.id, &granted).await?;
                }
                Ok(StepOutcome::Done)
            }
        }
    }

    /// BatchGrant of the invitation's grants; their states as identity made them are
    /// recorded. Nothing to do for a withdrawn or expired invitation.
    async fn grant(&self, invitation: &Invitation) -> Result<(StepOutcome, Vec<GrantedAccess>)> {
        if matches!(invitation.status, Status::Revoked | Status::Expired) {
            return Ok((StepOutcome::Skipped, invitation.granted.clone()));
        }
        let granted = self.identity.batch_grant(invitation).await?;
        if granted != invitation.granted {
            self.store.update_granted(invitation.id, &granted).await?;
        }
        Ok((StepOutcome::Done, granted))
    }

    /// Sends an invitation's email. A sign-up link uses `token` when the invitation was
    /// stored with it; otherwise a new link is minted and replaces the current one.
    async fn email(
        &self,
        invitation: &Invitation,
        details: EmailDetails,
        step: StepId,
        token: Option<LinkToken>,
    ) -> Result<StepOutcome> {
        let content = match invitation.delivery {
            Delivery::NewProductNotice => LetterContent::NewProductNotice,
            Delivery::SignUpLink => {
                let now = self.clock.now();
                let Some(expire_time) = invitation.expire_time else {
                    return Ok(StepOutcome::Skipped);
                };
                if invitation.status_at(now) != Status::Pending {
                    return Ok(StepOutcome::Skipped);
                }
                // The token exists only in memory and in the email: the database keeps its hash.
                let token = match token {
                    Some(token) => token,
                    None => {
                        let token = LinkToken::generate();
                        if !self
                            .store
                            .install_link(invitation.id, &token.hash(), now)
                            .await?
                        {
                            return Ok(StepOutcome::Skipped);
                        }
                        token
                    }
                };
                LetterContent::SignUp {
                    link: format!("{}?token={}", self.link_base_url, token.expose()).into(),
                    code: token.expose().into(),
                    expire_time,
                }
            }
        };
        let letter = Letter {
            given_name: invitation.staff_given_name.clone(),
            trust_name: details.trust_name,
            inviter_name: details.inviter_name,
            product_names: details.product_names,
            content,
        };
        self.mailer
            .send(&invitation.staff_email, &letter, step)
            .await?;
        Ok(StepOutcome::Done)
    }

    /// One round: expire what is due, withdraw leavers' invitations, then run due steps until
    /// none is left.
    async fn tick(&self) -> Result<usize> {
        self.sweep().await?;
        if let Err(error) = self.follow_leavers().await {
            tracing::warn!(error = %error, "following staff status changes failed; next round");
        }
        self.drain().await
    }

    /// Follows identity's staff status changes: every PENDING invitation of a staff member
    /// marked LEFT is revoked with reason STAFF_LEFT. Changes are read again from a while
    /// before the newest one seen, so one committed late is not missed (revoking twice
    /// changes nothing).
    async fn follow_leavers(&self) -> Result<()> {
        let since = self
            .store
            .feed_position(STAFF_FEED)
            .await?
            .map(|position| position - micros(FEED_OVERLAP));
        let changes = self
            .identity
            .staff_status_changes(since, FEED_BATCH)
            .await?;
        let now = self.clock.now();
        let mut newest = None;
        let mut revoked = 0;
        for (trust_id, staff_id, left, at) in changes {
            if left {
                let steps = self
                    .store
                    .revoke_leaver(trust_id, staff_id, now, wall_now())
                    .await?;
                revoked += steps.len();
            }
            newest = Some(at);
        }
        if revoked > 0 {
            tracing::info!(count = revoked, "leavers' invitations revoked");
            self.wake();
        }
        if let Some(newest) = newest {
            self.store.set_feed_position(STAFF_FEED, newest).await?;
        }
        Ok(())
    }

    /// R7: marks PENDING invitations past their expiry EXPIRED, queueing their revokes.
    async fn sweep(&self) -> Result<usize> {
        let now = self.clock.now();
        let mut total = 0;
        loop {
            let expired = self.store.expire_due(now, EXPIRE_BATCH, wall_now()).await?;
            total += expired.len();
            if (expired.len() as i64) < EXPIRE_BATCH {
                break;
            }
        }
        if total > 0 {
            tracing::info!(count = total, "invitations expired");
        }
        Ok(total)
    }

    /// Runs due steps until none is left.
    async fn drain(&self) -> Result<usize> {
        let mut ran = 0;
        loop {
            let now = wall_now();
            let steps = self
                .store
                .claim_due(now, now + micros(LEASE), BATCH)
                .await?;
            let claimed = steps.len();
            ran += claimed;
            if claimed > 0 {
                // A trace per round that found work; an idle poll traces nothing.
                let span = tracing::info_span!("outbox.round", steps = claimed);
                futures::future::join_all(steps.into_iter().map(|step| async move {
                    let _ = self.run(step).await;
                }))
                .instrument(span)
                .await;
            }
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

/// What a failed step keeps (a relay's reply is kept with the step and not logged: it may
/// name the recipient), and whether the failure is final (a relay's 5xx reply: retrying
/// cannot change it).
fn kept_failure(error: &Error) -> (String, bool) {
    match error {
        Error::Mail(mail) => (mail.reply(), mail.is_permanent()),
        other => (other.to_string(), false),
    }
}
