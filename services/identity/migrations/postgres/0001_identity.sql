-- Identity: trusts and schools, the staff directory, accounts and grants.
-- Instants are microseconds since the Unix epoch; ids are UUID text.

CREATE TABLE trusts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    -- AIP-155 idempotency key of the create call; NULL when the call had none.
    request_id  TEXT UNIQUE,
    create_time BIGINT NOT NULL
);

CREATE TABLE schools (
    id          TEXT PRIMARY KEY,
    trust_id    TEXT NOT NULL REFERENCES trusts (id),
    name        TEXT NOT NULL,
    urn         TEXT UNIQUE,
    request_id  TEXT UNIQUE,
    create_time BIGINT NOT NULL
);
CREATE INDEX schools_by_trust ON schools (trust_id, id);

CREATE TABLE staff (
    id          TEXT PRIMARY KEY,
    trust_id    TEXT NOT NULL REFERENCES trusts (id),
    mis_id      TEXT NOT NULL,
    given_name  TEXT NOT NULL,
    family_name TEXT NOT NULL,
    email       TEXT NOT NULL,
    job_title   TEXT NOT NULL,
    -- 'active' or 'left'
    status      TEXT NOT NULL,
    -- lower(given_name) || U+001F || lower(family_name), lower-cased with Unicode rules by the
    -- service, so the name filter behaves the same on both databases.
    search_key  TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    UNIQUE (trust_id, mis_id)
);
CREATE INDEX staff_by_name ON staff (trust_id, family_name, given_name, id);
CREATE INDEX staff_by_email ON staff (trust_id, email);

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    given_name    TEXT NOT NULL,
    family_name   TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    invitation_id TEXT,
    create_time   BIGINT NOT NULL
);

CREATE TABLE grants (
    id                TEXT PRIMARY KEY,
    invitation_id     TEXT NOT NULL,
    trust_id          TEXT NOT NULL REFERENCES trusts (id),
    -- 'trust' or 'school'
    organization_kind TEXT NOT NULL,
    organization_id   TEXT NOT NULL,
    product_key       TEXT NOT NULL,
    role_key          TEXT NOT NULL,
    email             TEXT NOT NULL,
    staff_id          TEXT,
    account_id        TEXT REFERENCES accounts (id),
    -- 'pending', 'active' or 'revoked'
    status            TEXT NOT NULL,
    create_time       BIGINT NOT NULL,
    update_time       BIGINT NOT NULL
);
-- An invitation makes each grant once, even when two retries race.
CREATE UNIQUE INDEX grants_once_per_invitation
    ON grants (invitation_id, organization_id, product_key, role_key);
-- A person holds each access at most once while it is in force.
CREATE UNIQUE INDEX grants_held_once
    ON grants (email, organization_id, product_key, role_key) WHERE status <> 'revoked';
CREATE INDEX grants_by_account ON grants (account_id, status, trust_id);
