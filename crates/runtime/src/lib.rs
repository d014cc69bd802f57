//! What every Portal service does the same way: configuration, telemetry, server bootstrap
//! (health, reflection, shutdown, protective layers), authentication, error mapping, storage
//! pools, time and pagination.

pub mod alloc;
pub mod answers;
pub mod attempts;
pub mod auth;
pub mod client;
pub mod clock;
pub mod config;
pub mod db;
pub mod deadline;
pub mod demo;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod paging;
pub mod propagation;
pub mod server;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod vocab;

pub use auth::{Principal, TokenIssuer, TokenVerifier, principal_of};
pub use clock::{Clock, SharedClock};
pub use error::{ApiError, Violations};
