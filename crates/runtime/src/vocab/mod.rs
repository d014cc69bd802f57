//! The suite's shared vocabulary: typed ids and catalogue keys, emails, passwords, request ids
//! and organisation kinds, each parsed once at a service's edge and passed on as itself.

mod checked;
mod email;
mod id;
mod idmap;
mod key;
mod org;
mod password;
mod request;
mod text;

pub use checked::{Checked, Rule};
pub use email::Email;
pub use id::{
    AccountId, GrantId, Id, InvitationId, SchoolId, StaffId, StepId, SubscriptionId, TrustId,
    kind as id_kind,
};
pub use idmap::{IdMap, IdSet};
pub use key::{MAX_KEY_LEN, ProductKey, RoleKey};
pub use org::OrgKind;
pub use password::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, Password};
pub use request::{MAX_REQUEST_ID_LEN, RequestId};
pub use text::{parse_name, parse_optional_text, truncate};
