//! Password guessing: failed sign-ins are remembered per account from one address, per
//! account and per address, each slowing and then refusing further tries (RESOURCE_EXHAUSTED
//! with RetryInfo) for a while that doubles with each failure, up to a cap.
//!
//! A real user cannot be locked out for long by someone guessing their password: an account
//! closed by failures from other addresses still lets one try a minute through from an address
//! that has not failed for it (the user's own, typically), and every closure ends after at most
//! the cap, while the guesser gets at most that one try a minute between them.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use portal_runtime::attempts::{Attempts, Policy};
use portal_runtime::vocab::Email;

use crate::SignInArgs;

/// Most keys each table remembers.
const REMEMBERED: usize = 100_000;

/// Where a sign-in came from; calls whose address is unknown share one.
pub fn source(address: Option<IpAddr>) -> IpAddr {
    address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Failed sign-ins, by account and address.
pub struct Guessing {
    pairs: Attempts<(Email, IpAddr)>,
    accounts: Attempts<Email>,
    sources: Attempts<IpAddr>,
    /// When an account closed by failures last let a try through from a fresh address.
    fresh_passes: Attempts<Email>,
}

fn policy(free: u32, args: &SignInArgs) -> Policy {
    Policy {
        free,
        first_delay: Duration::seconds(1),
        max_delay: to_chrono(args.sign_in_max_delay),
        forget_after: to_chrono(args.sign_in_max_delay),
    }
}

fn to_chrono(duration: StdDuration) -> Duration {
    Duration::from_std(duration).unwrap_or(Duration::MAX)
}

impl Guessing {
    pub fn new(args: &SignInArgs) -> Self {
        let every = to_chrono(args.sign_in_fresh_address_every);
        Self {
            pairs: Attempts::new(policy(args.sign_in_free_failures, args), REMEMBERED),
            accounts: Attempts::new(policy(args.sign_in_account_free_failures, args), REMEMBERED),
            sources: Attempts::new(policy(args.sign_in_source_free_failures, args), REMEMBERED),
            fresh_passes: Attempts::new(
                Policy {
                    free: 0,
                    first_delay: every,
                    max_delay: every,
                    forget_after: every,
                },
                REMEMBERED,
            ),
        }
    }

    /// `Err(until)` when a sign-in to `email` from `source` must wait until then; the password
    /// is not checked.
    pub fn admit(
        &self,
        email: &Email,
        source: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<(), DateTime<Utc>> {
        let pair = (email.clone(), source);
        if let Some(until) = self.pairs.closed_until(&pair, now) {
            return Err(until);
        }
        if let Some(until) = self.sources.closed_until(&source, now) {
            return Err(until);
        }
        let Some(until) = self.accounts.closed_until(email, now) else {
            return Ok(());
        };
        if self.pairs.has_failed(&pair, now) {
            return Err(until);
        }
        match self.fresh_passes.closed_until(email, now) {
            Some(next) => Err(next.min(until)),
            None => {
                self.fresh_passes.failed(email.clone(), now);
                Ok(())
            }
        }
    }

    pub fn failed(&self, email: &Email, source: IpAddr, now: DateTime<Utc>) {
        self.pairs.failed((email.clone(), source), now);
        self.accounts.failed(email.clone(), now);
        self.sources.failed(source, now);
    }

    /// The password was right: the account and this address start afresh for it (the
    /// address's failures on other accounts stay).
    pub fn succeeded(&self, email: &Email, source: IpAddr) {
        self.pairs.succeeded(&(email.clone(), source));
        self.accounts.succeeded(email);
    }
}
