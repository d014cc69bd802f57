//! What every Portal service does the same way: configuration, telemetry, server bootstrap
//! (health, reflection, shutdown, protective layers), authentication, error mapping, storage
//! pools, time and pagination.

pub mod auth;
pub mod client;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod metrics;
pub mod paging;
pub mod propagation;
pub mod server;
pub mod telemetry;
pub mod testkit;
pub mod types;

// Every request decodes and builds many small strings (ids, keys); mimalloc's per-thread
// free lists serve them far cheaper than the system allocator, in every binary of the suite.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use auth::{Principal, TokenIssuer, TokenVerifier, principal_of};
pub use clock::{Clock, SharedClock};
pub use error::{ApiError, Violations};
