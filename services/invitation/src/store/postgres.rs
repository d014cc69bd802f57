//! What PostgreSQL does its own way: the create in one statement.

use portal_runtime::clock::to_micros;
use portal_runtime::db::{AsExecutor as _, Db};
use portal_runtime::vocab::{AccountId, InvitationId, RequestId, StepId};

use super::rows::bind_invitation;
use super::{Backend, CreateOutcome, NewInvitation};
use crate::error::{Error, Result};

/// The request id and pending checks, and every insert of a create conditional on both:
/// $1..$20 the invitation's row, $21/$22 the caller and request id, $23 the products, $24..$27
/// the outbox steps (ids, kinds, payloads, leases), $28 the wall clock.
/// What the create statement answers: the pending invitation (id, expiry), the invitation
/// the request id made, whether the person's earlier revokes are open.
type CreateAnswer = (
    Option<InvitationId>,
    Option<i64>,
    Option<InvitationId>,
    bool,
);

const CREATE: &str = "WITH pending AS (SELECT id, expire_time FROM invitations \
     WHERE trust_id = $2 AND staff_id = $4 AND trust_product_key = $8 \
     AND status = 'PENDING'), \
     seen AS (SELECT invitation_id FROM create_requests \
     WHERE caller = $21 AND request_id = $22), \
     inv AS (INSERT INTO invitations (id, trust_id, trust_name, staff_id, staff_email, \
     staff_given_name, inviter_account_id, trust_product_key, trust_role_key, \
     school_access, status, delivery, granted, skipped, expire_time, \
     current_link_hash, accepting, account_id, create_time, update_time) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
     $17, $18, $19, $20 \
     WHERE NOT EXISTS (SELECT 1 FROM pending) AND NOT EXISTS (SELECT 1 FROM seen) \
     RETURNING id), \
     products AS (INSERT INTO invitation_products (invitation_id, trust_id, product_key) \
     SELECT inv.id, $2, k FROM inv, unnest($23::text[]) AS k), \
     link AS (INSERT INTO invitation_links (token_hash, invitation_id, create_time) \
     SELECT $16, inv.id, $19 FROM inv WHERE $16::text IS NOT NULL), \
     request AS (INSERT INTO create_requests (caller, request_id, invitation_id) \
     SELECT $21, $22, inv.id FROM inv WHERE $21::text IS NOT NULL), \
     steps AS (INSERT INTO outbox (id, invitation_id, kind, payload, attempts, \
     next_attempt_at, claimed_until, create_time) \
     SELECT s.id, inv.id, s.kind, s.payload, 0, $28, s.claimed_until, $28 \
     FROM inv, unnest($24::text[], $25::text[], $26::text[], $27::int8[]) \
     AS s (id, kind, payload, claimed_until)) \
     SELECT (SELECT id FROM pending LIMIT 1), \
     (SELECT expire_time FROM pending LIMIT 1), \
     (SELECT invitation_id FROM seen), \
     EXISTS (SELECT 1 FROM outbox o JOIN invitations i ON i.id = o.invitation_id \
     WHERE i.trust_id = $2 AND i.staff_id = $4 AND o.kind = 'REVOKE' \
     AND o.done_at IS NULL)";

impl Backend for sqlx::Postgres {
    /// One round trip and one commit for the usual create. `None` when a PENDING invitation
    /// of the person and product has passed its expiry but is not yet swept: the transaction
    /// expires it first.
    async fn create_in_one_statement(
        db: &Db<Self>,
        new: NewInvitation<'_>,
    ) -> Result<Option<CreateOutcome>> {
        let invitation = new.invitation;
        debug_assert!(new.steps.iter().all(|s| s.invitation_id == invitation.id));
        let (caller, request_id): (Option<AccountId>, Option<&RequestId>) = new.request.unzip();
        let steps = new.steps;
        let (pending_id, pending_expire, replayed, earlier_revokes_open) = db
            .run("create", async |conn| {
                let row = bind_invitation(sqlx::query(CREATE), invitation)
                    .bind(caller)
                    .bind(request_id)
                    .bind(invitation.product_keys())
                    .bind(steps.iter().map(|s| s.id).collect::<Vec<StepId>>())
                    .bind(
                        steps
                            .iter()
                            .map(|s| <&str>::from(s.kind))
                            .collect::<Vec<_>>(),
                    )
                    .bind(steps.iter().map(|s| s.payload.clone()).collect::<Vec<_>>())
                    .bind(steps.iter().map(|s| s.claimed_until).collect::<Vec<_>>())
                    .bind(new.wall_now)
                    .fetch_one(conn.exec())
                    .await?;
                let answer: CreateAnswer = sqlx::FromRow::from_row(&row)?;
                Ok::<_, Error>(answer)
            })
            .await?;
        if let Some(invitation_id) = replayed {
            return Ok(Some(CreateOutcome::Replayed { invitation_id }));
        }
        match pending_id {
            None => Ok(Some(CreateOutcome::Created {
                revoke_steps: Vec::new(),
                earlier_revokes_open,
            })),
            Some(id) if pending_expire.is_none_or(|e| e > to_micros(new.now)) => {
                Ok(Some(CreateOutcome::PendingExists { invitation_id: id }))
            }
            Some(_) => Ok(None),
        }
    }
}
