-- Leavers: when a sync marks a staff record LEFT, the person's grants at the trust and its
-- schools are suspended (not in force) and remember what they were, to be restored if a
-- later sync lists the person again.
ALTER TABLE grants ADD COLUMN suspended_from TEXT;

-- When a record last became LEFT or ACTIVE again (0: never changed since it was added): the
-- feed the invitation service follows to withdraw a leaver's pending invitations.
ALTER TABLE staff ADD COLUMN status_time BIGINT NOT NULL DEFAULT 0;
CREATE INDEX staff_status_changes ON staff (status_time, id) WHERE status_time > 0;
