//! The identity domain: organisations, the staff directory, accounts and grants, with the
//! rules that need no database (the snapshot diff, grant classification, the administrator
//! decision, access grouping), each tested next to it.

mod accounts;
mod grants;
mod organisations;
mod staff;

pub use accounts::*;
pub use grants::*;
pub use organisations::*;
pub use staff::*;

/// Longest given or family name, of a staff member or an account holder.
pub const MAX_PERSON_NAME: usize = 100;
