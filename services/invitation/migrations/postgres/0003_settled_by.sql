-- Registration settles every pending invitation of the same person: an invitation accepted
-- that way names the invitation whose accept registered the account (its link then tells
-- the invitee to sign in).
ALTER TABLE invitations ADD COLUMN settled_by TEXT;
