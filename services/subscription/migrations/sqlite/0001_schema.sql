-- The product catalogue: products, their roles and role equivalences.
CREATE TABLE products (
    key TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('TRUST', 'SCHOOL'))
);

CREATE TABLE roles (
    product_key TEXT NOT NULL REFERENCES products (key),
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    -- Display order within the product.
    position INTEGER NOT NULL,
    PRIMARY KEY (product_key, key)
);

CREATE TABLE role_equivalences (
    left_product_key TEXT NOT NULL,
    left_role_key TEXT NOT NULL,
    right_product_key TEXT NOT NULL,
    right_role_key TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (left_product_key, left_role_key, right_product_key, right_role_key),
    FOREIGN KEY (left_product_key, left_role_key) REFERENCES roles (product_key, key),
    FOREIGN KEY (right_product_key, right_role_key) REFERENCES roles (product_key, key)
);

-- Every organisation billing has subscribed, with the trust it belongs to: an id belongs to
-- exactly one trust, whatever the number of its subscriptions.
CREATE TABLE organizations (
    id TEXT PRIMARY KEY NOT NULL,
    trust_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('TRUST', 'SCHOOL')),
    create_time BIGINT NOT NULL,
    CHECK ((kind = 'TRUST') = (id = trust_id)),
    UNIQUE (id, trust_id, kind)
);

-- Instants are microseconds since the Unix epoch (UTC); periods are [start_time, end_time).
CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY NOT NULL,
    trust_id TEXT NOT NULL,
    organization_kind TEXT NOT NULL CHECK (organization_kind IN ('TRUST', 'SCHOOL')),
    organization_id TEXT NOT NULL,
    product_key TEXT NOT NULL REFERENCES products (key),
    status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'TRIAL', 'CANCELLED', 'EXPIRED')),
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    cancel_time BIGINT,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    -- Optimistic concurrency: every change increments it.
    version BIGINT NOT NULL DEFAULT 1,
    CHECK (end_time IS NULL OR end_time > start_time),
    CHECK (status <> 'CANCELLED' OR cancel_time IS NOT NULL),
    -- A subscription's trust and kind are those of its organisation.
    FOREIGN KEY (organization_id, trust_id, organization_kind)
        REFERENCES organizations (id, trust_id, kind)
);

-- The eligibility query: (organisations in a set) x (products in a set).
CREATE INDEX subscriptions_by_organization_product ON subscriptions (organization_id, product_key);
-- ListSubscriptions: a trust's subscriptions in id order.
CREATE INDEX subscriptions_by_trust ON subscriptions (trust_id, id);

-- AIP-155 request ids of CreateSubscription, per calling service.
CREATE TABLE create_requests (
    caller TEXT NOT NULL,
    request_id TEXT NOT NULL,
    -- Digest of the request, so a reused id with a different request is refused.
    fingerprint TEXT NOT NULL,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    create_time BIGINT NOT NULL,
    PRIMARY KEY (caller, request_id)
);
