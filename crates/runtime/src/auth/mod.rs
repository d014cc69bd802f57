//! Authentication and the callers' vocabulary: who may be calling ([`Principal`]), the bearer
//! tokens that say so ([`tokens`]), the keys that sign them ([`keys`]), the server layer that
//! checks them ([`layer`]), the client side that sends them ([`bearer`]), and the names the
//! authorisation rules use ([`callers`], [`admin`]).

pub mod admin;
pub mod bearer;
pub mod callers;
pub mod keys;
pub mod layer;
pub mod principal;
pub mod tokens;

pub use bearer::BearerToken;
pub use keys::{KeyPairPem, generate_keypair, load_or_create_keypair, write_private};
pub use layer::{AuthLayer, AuthService};
pub use principal::{Principal, principal_of};
pub use tokens::{IssuedToken, TokenIssuer, TokenVerifier};
