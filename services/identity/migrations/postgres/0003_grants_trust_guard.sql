-- Every invitation writes dozens of grants naming the same trust. The foreign key from
-- grants to trusts made PostgreSQL run one more query per grant row, share-locking the
-- trust's row, and concurrent invitations of one trust piled MultiXacts onto that one row:
-- about a seventh of the database's work in a create. Trusts are never deleted and their
-- ids never change, and each grant is written with its trust checked by the inserting
-- statement (or earlier in its transaction), so what the key still guarded is a trust
-- going away under its grants. These triggers refuse exactly that, and cost a grant
-- insert nothing.
CREATE FUNCTION refuse_trust_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'trusts are never deleted, truncated or given another id: grants name them'
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER trusts_never_deleted BEFORE DELETE ON trusts
    FOR EACH ROW EXECUTE FUNCTION refuse_trust_removal();
CREATE TRIGGER trusts_keep_their_id BEFORE UPDATE OF id ON trusts
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION refuse_trust_removal();
CREATE TRIGGER trusts_never_truncated BEFORE TRUNCATE ON trusts
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_trust_removal();

ALTER TABLE grants DROP CONSTRAINT grants_trust_id_fkey;
