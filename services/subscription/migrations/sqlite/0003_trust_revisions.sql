-- One counter per trust, incremented by every write to one of its subscriptions in the same
-- transaction: a server keeping a trust's subscriptions in memory compares counters to know,
-- cheaply, whether its copy is still current.
CREATE TABLE trust_revisions (
    trust_id TEXT PRIMARY KEY NOT NULL,
    revision BIGINT NOT NULL
);

INSERT INTO trust_revisions (trust_id, revision)
SELECT trust_id, count(*) FROM subscriptions GROUP BY trust_id;
