//! What the invitation service speaks of, and its rules that need no I/O: an invitation and
//! its lifecycle ([`invitation`]), the catalogue and eligibility answers it is checked
//! against ([`catalogue`], [`eligibility`]), the plan of a create ([`create`]), sign-up links
//! ([`link`]) and the outbox's steps ([`outbox`]).

pub mod catalogue;
pub mod create;
pub mod eligibility;
pub mod invitation;
pub mod link;
pub mod outbox;

pub use catalogue::{Catalogue, Product};
pub use create::{Answers, CreateInput, CreateRefusal, Draft, Plan, StaffMember};
pub use eligibility::{Eligibility, Ineligibility, PairAnswer};
pub use invitation::{
    Accepted, Created, Delivery, GrantState, GrantedAccess, Invitation, ListFilter, ListQuery, Org,
    Page, PageKey, RevokeReason, SchoolAccess, SkipReason, SkippedAccess, Status, TrustAccess,
};
pub use link::{AcceptInput, Accepter, LinkHash, LinkRefusal, LinkToken, NewAccountDetails};
pub use outbox::{EmailDetails, NewStep, Step, StepKind, StepOutcome, Work};
