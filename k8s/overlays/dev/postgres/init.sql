-- Runs once, when the data directory is first initialised: one database per service,
-- each owned by the application role (POSTGRES_USER).
CREATE DATABASE portal_identity OWNER portal;
CREATE DATABASE portal_subscription OWNER portal;
CREATE DATABASE portal_invitation OWNER portal;
