//! Limits of the contracts between the services: what one request may name, so that what the
//! invitation service accepts always fits in one question to the subscription service.

/// Most schools one eligibility question, and so one invitation, may name.
pub const MAX_SCHOOLS_PER_REQUEST: usize = 1_000;
/// Most products one eligibility question, and an invitation's school access, may name.
pub const MAX_PRODUCTS_PER_REQUEST: usize = 20;
/// Most entries any repeated field of a request may carry, repeats included: checked before
/// one of them is parsed or hashed, so what a caller sends costs bounded work whatever its
/// content. The per-field limits on distinct entries are lower.
pub const MAX_LIST_ENTRIES: usize = 2 * MAX_SCHOOLS_PER_REQUEST;
