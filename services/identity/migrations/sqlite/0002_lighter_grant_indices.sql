-- Reads by account never ask for NULL: the pending grants of people without an account
-- stay out of this index.
DROP INDEX grants_by_account;
CREATE INDEX grants_by_account ON grants (account_id, status, trust_id)
    WHERE account_id IS NOT NULL;
