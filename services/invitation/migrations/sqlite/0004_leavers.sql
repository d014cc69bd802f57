-- Why an invitation was revoked when it was not an administrator: STAFF_LEFT (a staff sync
-- marked the invitee LEFT). NULL otherwise.
ALTER TABLE invitations ADD COLUMN revoke_reason TEXT;

-- How far the service has followed a feed of another service (the staff status changes of
-- identity): the newest change seen, in microseconds.
CREATE TABLE feed_positions (
    name      TEXT PRIMARY KEY,
    position  BIGINT NOT NULL
);
