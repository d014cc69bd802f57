-- Revoke and accept are serialised on the invitation row: an accept first claims the
-- invitation until this instant (wall-clock microseconds; 0 when no accept holds it). While
-- the claim holds, a revoke, a resend or the expiry sweeper leaves the invitation alone.
ALTER TABLE invitations ADD COLUMN accept_until BIGINT NOT NULL DEFAULT 0;
