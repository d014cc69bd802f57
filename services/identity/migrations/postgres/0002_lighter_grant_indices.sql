-- Each grant row is written with every index it has, dozens per invitation: keep only the
-- ones a query or a rule needs.

-- The natural key is the primary key: an invitation makes each grant once. `id` stays the
-- grant's name (a UUID v7 made by the service); nothing looks a grant up by it alone.
ALTER TABLE grants DROP CONSTRAINT grants_pkey;
ALTER TABLE grants ADD CONSTRAINT grants_pkey PRIMARY KEY USING INDEX grants_once_per_invitation;

-- Reads by account never ask for NULL: the pending grants of people without an account
-- stay out of this index.
DROP INDEX grants_by_account;
CREATE INDEX grants_by_account ON grants (account_id, status, trust_id)
    WHERE account_id IS NOT NULL;
