-- The catalogue is the same in every environment, so it ships as data with the schema.
INSERT INTO products (key, name, scope) VALUES
    ('portal', 'Portal', 'TRUST'),
    ('sonar-multi-school', 'Sonar Multi-School', 'TRUST'),
    ('trust-mis', 'Trust MIS', 'TRUST'),
    ('websites-cms', 'Websites CMS', 'SCHOOL'),
    ('comms-hub', 'Comms Hub', 'SCHOOL'),
    ('sonar', 'Sonar', 'SCHOOL'),
    ('mis', 'MIS', 'SCHOOL');

INSERT INTO roles (product_key, key, name, description, position) VALUES
    ('portal', 'account-owner', 'Account Owner', 'Owns the trust''s Portal account: manages users, invitations and every product setting.', 1),
    ('portal', 'account-admin', 'Account Admin', 'Administers the trust''s Portal account: invites staff and manages their access.', 2),
    ('portal', 'full-edit', 'Full edit', 'Creates, edits and publishes content across the trust''s products.', 3),
    ('portal', 'partial-edit', 'Partial edit', 'Edits content; publishing needs someone with full edit.', 4),
    ('sonar-multi-school', 'administrator', 'Administrator', 'Configures Sonar Multi-School and manages its users across the trust.', 1),
    ('sonar-multi-school', 'analyst', 'Analyst', 'Builds and reads cross-school assessment analyses.', 2),
    ('sonar-multi-school', 'viewer', 'Viewer', 'Reads the trust''s assessment dashboards.', 3),
    ('trust-mis', 'administrator', 'Administrator', 'Manages the trust MIS, its settings and its users.', 1),
    ('trust-mis', 'hr-officer', 'HR Officer', 'Maintains staff records in the trust MIS.', 2),
    ('trust-mis', 'viewer', 'Viewer', 'Reads the trust MIS.', 3),
    ('websites-cms', 'administrator', 'Administrator', 'Manages the school website, its settings and its users.', 1),
    ('websites-cms', 'writer', 'Writer', 'Writes and publishes pages and news on the school website.', 2),
    ('websites-cms', 'publisher', 'Publisher', 'Writes pages and news; another user publishes them.', 3),
    ('comms-hub', 'administrator', 'Administrator', 'Manages Comms Hub, its settings and its users at the school.', 1),
    ('comms-hub', 'writer', 'Writer', 'Writes and sends messages to parents and staff.', 2),
    ('comms-hub', 'viewer', 'Viewer', 'Reads messages and their delivery reports.', 3),
    ('sonar', 'administrator', 'Administrator', 'Configures Sonar and manages its users at the school.', 1),
    ('sonar', 'teacher', 'Teacher', 'Records and reviews assessments for their classes.', 2),
    ('sonar', 'viewer', 'Viewer', 'Reads the school''s assessment data.', 3),
    ('mis', 'administrator', 'Administrator', 'Manages the school MIS, its settings and its users.', 1),
    ('mis', 'office', 'Office', 'Maintains pupil, parent and staff records.', 2),
    ('mis', 'teacher', 'Teacher', 'Takes registers and records marks for their classes.', 3),
    ('mis', 'viewer', 'Viewer', 'Reads the school MIS.', 4);

INSERT INTO role_equivalences
    (left_product_key, left_role_key, right_product_key, right_role_key, description) VALUES
    ('websites-cms', 'administrator', 'portal', 'account-owner', 'Websites CMS Administrator is Portal Account Owner'),
    ('websites-cms', 'writer', 'portal', 'full-edit', 'Websites CMS Writer is Portal Full edit'),
    ('websites-cms', 'publisher', 'portal', 'partial-edit', 'Websites CMS Publisher is Portal Partial edit');
