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

/// A member of the demo trust's MIS: (staff id, MIS id, given name, family name, email, job title).
pub type DemoStaff = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// The demo trust's MIS staff directory (all active). Ids are fixed so examples can name them.
pub const STAFF: [DemoStaff; 20] = [
    (
        "7f3c2a10-0000-4000-8000-000000001001",
        "MIS1001",
        "Amelia",
        "Hughes",
        "amelia.hughes@northfield.example.org",
        "Head of Trust Operations",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001002",
        "MIS1002",
        "Ben",
        "Carter",
        "ben.carter@northfield.example.org",
        "Data Manager",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001003",
        "MIS1003",
        "Chloe",
        "Patel",
        "chloe.patel@northfield.example.org",
        "Teacher",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001004",
        "MIS1004",
        "Daniel",
        "Okafor",
        "daniel.okafor@northfield.example.org",
        "Teacher",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001005",
        "MIS1005",
        "Ella",
        "Thompson",
        "ella.thompson@northfield.example.org",
        "School Business Manager",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001006",
        "MIS1006",
        "Finn",
        "Murphy",
        "finn.murphy@northfield.example.org",
        "IT Technician",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001007",
        "MIS1007",
        "Grace",
        "Liu",
        "grace.liu@northfield.example.org",
        "Deputy Head",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001008",
        "MIS1008",
        "Harry",
        "Evans",
        "harry.evans@northfield.example.org",
        "Teacher",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001009",
        "MIS1009",
        "Isla",
        "Walker",
        "isla.walker@northfield.example.org",
        "Office Manager",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001010",
        "MIS1010",
        "Jack",
        "Robinson",
        "jack.robinson@northfield.example.org",
        "Teaching Assistant",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001011",
        "MIS1011",
        "Keira",
        "Wright",
        "keira.wright@northfield.example.org",
        "SENCo",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001012",
        "MIS1012",
        "Leo",
        "Green",
        "leo.green@northfield.example.org",
        "Teacher",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001013",
        "MIS1013",
        "Maya",
        "Hall",
        "maya.hall@northfield.example.org",
        "Communications Officer",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001014",
        "MIS1014",
        "Noah",
        "Adams",
        "noah.adams@northfield.example.org",
        "Head Teacher",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001015",
        "MIS1015",
        "Olivia",
        "Baker",
        "olivia.baker@northfield.example.org",
        "Teacher",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001016",
        "MIS1016",
        "Priya",
        "Shah",
        "priya.shah@northfield.example.org",
        "Finance Officer",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001017",
        "MIS1017",
        "Quentin",
        "Moore",
        "quentin.moore@northfield.example.org",
        "Teacher",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001018",
        "MIS1018",
        "Rosie",
        "King",
        "rosie.king@northfield.example.org",
        "Admissions Officer",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001019",
        "MIS1019",
        "Sam",
        "Turner",
        "sam.turner@northfield.example.org",
        "Teacher",
    ),
    (
        "7f3c2a10-0000-4000-8000-000000001020",
        "MIS1020",
        "Tara",
        "Collins",
        "tara.collins@northfield.example.org",
        "Head of Year",
    ),
];

/// STAFF[1] already has an account (an existing user: new access is active at once), with
/// Websites CMS `writer` at the first school.
pub const EXISTING_USER_PASSWORD: &str = "portal-demo-user";
/// STAFF[6] is a school-level administrator only: Portal `account-admin` at the first school.
pub const SCHOOL_ADMIN_PASSWORD: &str = "portal-demo-school-admin";
/// The administrator of the other trust.
pub const OTHER_ADMIN_EMAIL: &str = "admin@southbank.example.org";
pub const OTHER_ADMIN_PASSWORD: &str = "portal-demo-other-admin";
