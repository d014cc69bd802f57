//! The outbox: steps carried out after a commit (grant, revoke, email), each stored with the
//! invitation's change that asked for it, run until done, and recorded once done.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use portal_runtime::vocab::{AccountId, InvitationId, StepId};

/// A kind of step, stored by name (`GRANT`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::Display,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum StepKind {
    /// BatchGrant of the invitation's grants.
    Grant,
    /// RevokeGrants of the invitation (withdrawn or expired).
    Revoke,
    /// The invitation email.
    Email,
    /// ActivateGrants of the invitation for the account its invitee now has (registered
    /// through another link, or found on a resend).
    Activate,
}

/// How a step ended, stored by name (`DONE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, strum::IntoStaticStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum StepOutcome {
    Done,
    /// Nothing left to do: the invitation had moved on (revoked, expired, accepted).
    Skipped,
    /// Given up after [`MAX_ATTEMPTS`].
    Failed,
}

/// What the email step needs beyond the invitation row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailDetails {
    pub trust_name: String,
    pub inviter_name: String,
    pub product_names: Vec<String>,
}

/// What a step does, with what its `payload` column says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    Grant,
    Revoke { pending_only: bool },
    Email(EmailDetails),
    Activate { account_id: AccountId },
}

/// The activate step's payload.
#[derive(Serialize, Deserialize)]
struct ActivatePayload {
    account_id: AccountId,
}

/// The revoke step's payload.
#[derive(Serialize, Deserialize)]
struct RevokePayload {
    pending_only: bool,
}

impl Work {
    /// Reads a stored step's work back.
    fn read(kind: StepKind, payload: &str) -> Result<Self, String> {
        match kind {
            StepKind::Grant => Ok(Work::Grant),
            StepKind::Revoke => serde_json::from_str::<RevokePayload>(payload)
                .map(|p| Work::Revoke {
                    pending_only: p.pending_only,
                })
                .map_err(|e| format!("revoke payload: {e}")),
            StepKind::Email => serde_json::from_str(payload)
                .map(Work::Email)
                .map_err(|e| format!("email payload: {e}")),
            StepKind::Activate => serde_json::from_str::<ActivatePayload>(payload)
                .map(|p| Work::Activate {
                    account_id: p.account_id,
                })
                .map_err(|e| format!("activate payload: {e}")),
        }
    }
}

/// A new outbox row.
#[derive(Debug, Clone)]
pub struct NewStep {
    pub id: StepId,
    pub invitation_id: InvitationId,
    pub kind: StepKind,
    pub payload: String,
    /// Wall-clock micros before which no worker may claim it: a step the caller runs itself
    /// right after the commit is inserted already leased to it.
    pub claimed_until: i64,
}

impl NewStep {
    /// A step any worker may claim at once; `payload` is JSON.
    fn of(invitation_id: InvitationId, kind: StepKind, payload: String) -> Self {
        Self {
            id: StepId::generate(),
            invitation_id,
            kind,
            payload,
            claimed_until: 0,
        }
    }

    /// BatchGrant of the invitation's grants.
    pub fn grant(invitation_id: InvitationId) -> Self {
        Self::of(invitation_id, StepKind::Grant, "{}".into())
    }

    /// The revoke queued when an invitation expires or is withdrawn: every grant it made
    /// goes, so none stays active under an invitation that was not accepted (an accept that
    /// registered the account but lost its claim cannot leave access behind).
    pub fn revoke_dropped(invitation_id: InvitationId) -> Self {
        let payload = RevokePayload {
            pending_only: false,
        };
        Self::of(invitation_id, StepKind::Revoke, to_json(&payload))
    }

    /// ActivateGrants of the invitation for `account_id`.
    pub fn activate(invitation_id: InvitationId, account_id: AccountId) -> Self {
        let payload = ActivatePayload { account_id };
        Self::of(invitation_id, StepKind::Activate, to_json(&payload))
    }

    /// The invitation's email.
    pub fn email(invitation_id: InvitationId, details: &EmailDetails) -> Self {
        Self::of(invitation_id, StepKind::Email, to_json(details))
    }

    /// The step, reserved to its maker until `until` (wall-clock micros).
    pub fn leased_until(self, until: i64) -> Self {
        Self {
            claimed_until: until,
            ..self
        }
    }
}

/// Serialising plain strings and booleans cannot fail.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

/// An outbox row claimed by a worker.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: StepId,
    pub invitation_id: InvitationId,
    pub kind: StepKind,
    /// As stored: read by [`Step::work`], so that a row that no longer reads fails alone.
    pub payload: String,
    /// Attempts including this one.
    pub attempts: i32,
}

impl Step {
    pub fn work(&self) -> Result<Work, String> {
        Work::read(self.kind, &self.payload)
    }
}

/// After this many failed attempts a step is given up (and logged).
pub const MAX_ATTEMPTS: i32 = 25;

/// Delay before attempt `attempts + 1`: 500 ms doubling, at most 5 minutes.
pub fn backoff(attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 20) as u32 - 1;
    Duration::from_millis(500u64.saturating_mul(1u64 << exp.min(10))).min(Duration::from_secs(300))
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

    #[test]
    fn each_step_reads_back_the_work_it_was_stored_with() {
        let details = EmailDetails {
            trust_name: "Northfield".into(),
            inviter_name: "Ada Admin".into(),
            product_names: vec!["Portal".into()],
        };
        let invitation = InvitationId::generate();
        let account = AccountId::generate();
        for (new, work) in [
            (NewStep::grant(invitation), Work::Grant),
            (
                NewStep::revoke_dropped(invitation),
                Work::Revoke {
                    pending_only: false,
                },
            ),
            (
                NewStep::email(invitation, &details),
                Work::Email(details.clone()),
            ),
            (
                NewStep::activate(invitation, account),
                Work::Activate {
                    account_id: account,
                },
            ),
        ] {
            let step = Step {
                id: new.id,
                invitation_id: new.invitation_id,
                kind: new.kind,
                payload: new.payload,
                attempts: 1,
            };
            assert_eq!(step.work(), Ok(work));
        }
        assert_eq!(
            NewStep::revoke_dropped(invitation).payload,
            r#"{"pending_only":false}"#
        );
    }

    #[test]
    fn a_payload_that_no_longer_reads_fails_only_its_own_step() {
        let step = Step {
            id: StepId::generate(),
            invitation_id: InvitationId::generate(),
            kind: StepKind::Email,
            payload: "{".into(),
            attempts: 1,
        };
        assert!(step.work().unwrap_err().starts_with("email payload"));
    }
}
