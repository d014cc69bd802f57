-- Invitations, their sign-up links, idempotency keys and the outbox of post-commit steps.
-- Instants are BIGINT microseconds since the Unix epoch (UTC).

CREATE TABLE invitations (
    id                  TEXT PRIMARY KEY,
    trust_id            TEXT NOT NULL,
    trust_name          TEXT NOT NULL,
    staff_id            TEXT NOT NULL,
    staff_email         TEXT NOT NULL,
    staff_given_name    TEXT NOT NULL,
    inviter_account_id  TEXT NOT NULL,
    trust_product_key   TEXT NOT NULL,
    trust_role_key      TEXT NOT NULL,
    -- JSON: {"product_keys": [...], "role_key": "...", "school_ids": [...]} or null.
    school_access       TEXT,
    status              TEXT NOT NULL,
    delivery            TEXT NOT NULL,
    -- JSON arrays of the outcome: granted access and skipped pairs.
    granted             TEXT NOT NULL,
    skipped             TEXT NOT NULL,
    expire_time         BIGINT,
    -- SHA-256 (hex) of the link most recently sent; older links of the invitation are superseded.
    current_link_hash   TEXT,
    -- Set when an accept has started registering the account (a retried accept may continue).
    accepting           BOOLEAN NOT NULL DEFAULT FALSE,
    account_id          TEXT,
    create_time         BIGINT NOT NULL,
    update_time         BIGINT NOT NULL
);

-- Newest first per trust (ListInvitations), with the status and staff filters.
CREATE INDEX invitations_trust_newest ON invitations (trust_id, create_time DESC, id DESC);
CREATE INDEX invitations_trust_status ON invitations (trust_id, status, create_time DESC, id DESC);
CREATE INDEX invitations_trust_staff ON invitations (trust_id, staff_id, create_time DESC, id DESC);
-- At most one PENDING invitation per staff member and trust product.
CREATE UNIQUE INDEX invitations_one_pending
    ON invitations (trust_id, staff_id, trust_product_key) WHERE status = 'PENDING';
-- The expiry sweeper.
CREATE INDEX invitations_pending_expiry ON invitations (expire_time) WHERE status = 'PENDING';

-- Every product an invitation offers (trust product and school products): the product filter.
CREATE TABLE invitation_products (
    invitation_id  TEXT NOT NULL REFERENCES invitations (id),
    trust_id       TEXT NOT NULL,
    product_key    TEXT NOT NULL,
    PRIMARY KEY (invitation_id, product_key)
);
CREATE INDEX invitation_products_by_product ON invitation_products (trust_id, product_key);

-- Sign-up links, stored only as SHA-256 hashes of the token.
CREATE TABLE invitation_links (
    token_hash     TEXT PRIMARY KEY,
    invitation_id  TEXT NOT NULL REFERENCES invitations (id),
    create_time    BIGINT NOT NULL
);
CREATE INDEX invitation_links_by_invitation ON invitation_links (invitation_id);

-- AIP-155 request ids of CreateInvitation, unique per caller.
CREATE TABLE create_requests (
    caller         TEXT NOT NULL,
    request_id     TEXT NOT NULL,
    invitation_id  TEXT NOT NULL REFERENCES invitations (id),
    PRIMARY KEY (caller, request_id)
);

-- AIP-155 request ids of AcceptInvitation, unique per invitation.
CREATE TABLE accept_requests (
    invitation_id  TEXT NOT NULL REFERENCES invitations (id),
    request_id     TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    PRIMARY KEY (invitation_id, request_id)
);

-- Steps carried out after a commit (grant, revoke, email), each done once, retried with
-- backoff. Scheduling instants are wall-clock microseconds.
CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    invitation_id    TEXT NOT NULL REFERENCES invitations (id),
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    claimed_until    BIGINT NOT NULL,
    done_at          BIGINT,
    outcome          TEXT,
    last_error       TEXT,
    create_time      BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE done_at IS NULL;
CREATE INDEX outbox_by_invitation ON outbox (invitation_id, kind);
