//! The memory allocator of every Portal process (the `portal` binary and the benchmarks,
//! so they measure what runs in production).
//!
//! A request allocates and frees many small buffers on several runtime threads: headers,
//! protobuf messages, SQL rows. glibc's malloc spent a fifth of the services' CPU on that in
//! the create benchmark (arena locks, fastbin consolidation); jemalloc's per-thread caches
//! take about half as much, and it still hands idle memory back to the system.
//!
//! Each binary names it once: `#[global_allocator] static ALLOC: Allocator = Allocator;`

#[cfg(not(target_env = "msvc"))]
pub use tikv_jemallocator::Jemalloc as Allocator;

#[cfg(target_env = "msvc")]
pub use std::alloc::System as Allocator;
