//! The demo trust that `portal up` seeds on first start. Every service seeds its own part from
//! these shared identifiers, so the services agree without talking to each other at start.

/// The demo multi-academy trust.
pub const TRUST_ID: &str = "7f3c2a10-0000-4000-8000-000000000001";
pub const TRUST_NAME: &str = "Northfield Learning Trust";

/// The demo trust's schools: (id, name, URN).
pub const SCHOOLS: [(&str, &str, &str); 5] = [
    (
        "7f3c2a10-0000-4000-8000-000000000101",
        "Northfield Primary School",
        "100101",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000000102",
        "Riverside Academy",
        "100102",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000000103",
        "Hill Top Junior School",
        "100103",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000000104",
        "St Anne's Infant School",
        "100104",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000000105",
        "Oakwood High School",
        "100105",
    ),
];

/// The administrator `portal up` creates (Portal Account Owner at trust level).
pub const ADMIN_EMAIL: &str = "admin@northfield.example.org";
pub const ADMIN_PASSWORD: &str = "portal-demo-admin";

/// A second trust, so tenant isolation can be tried by hand.
pub const OTHER_TRUST_ID: &str = "7f3c2a10-0000-4000-8000-000000000002";
pub const OTHER_TRUST_NAME: &str = "Southbank Schools Partnership";
pub const OTHER_SCHOOL: (&str, &str, &str) = (
    "7f3c2a10-0000-4000-8000-000000000201",
    "Southbank Primary School",
    "200201",
);
