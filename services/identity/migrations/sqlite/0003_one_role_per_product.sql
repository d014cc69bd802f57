-- One role per product per organisation: a person holds a product at an organisation with
-- one role at a time. A grant made in place of another role names the role it replaced.
ALTER TABLE grants ADD COLUMN previous_role_key TEXT;

-- Roles that piled up before: the newest grant in force of each person, organisation and
-- product stays; the older ones are revoked.
UPDATE grants SET status = 'revoked'
WHERE status <> 'revoked' AND EXISTS (
    SELECT 1 FROM grants n
    WHERE n.email = grants.email AND n.organization_id = grants.organization_id
      AND n.product_key = grants.product_key AND n.status <> 'revoked'
      AND (n.create_time > grants.create_time
           OR (n.create_time = grants.create_time AND n.id > grants.id)));

-- The new index holds everything grants_held_once held (its key is a prefix of that one's),
-- so the previous release still finds access already held. What it cannot do is grant a
-- second role of a held product: its insert is refused, its outbox step fails and is
-- retried, and a pod of this release makes it as a role change. The deduplication and the
-- index are one transaction, so no second role slips in between (hence no CONCURRENTLY).
DROP INDEX grants_held_once;
CREATE UNIQUE INDEX grants_one_role
    ON grants (email, organization_id, product_key) WHERE status <> 'revoked';
