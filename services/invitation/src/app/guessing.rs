//! Link guessing: a link's token is 256 random bits, so presenting unknown tokens is guessing;
//! each address that does it is slowed and then refused (RESOURCE_EXHAUSTED with RetryInfo)
//! for a while that doubles with each further unknown token, up to a cap.

use std::net::{IpAddr, Ipv4Addr};

use chrono::Duration;
use portal_runtime::attempts::{Attempts, Policy};

use super::App;
use crate::error::{Error, Result};

/// Most addresses remembered.
const REMEMBERED: usize = 100_000;

/// The longest an address is closed for; its failures are forgotten this long after the last.
const MAX_DELAY: Duration = Duration::minutes(15);

/// Unknown link tokens per address.
pub struct LinkGuesses(Attempts<IpAddr>);

impl LinkGuesses {
    /// `free` unknown tokens per address before the first delay.
    pub fn new(free: u32) -> Self {
        Self(Attempts::new(
            Policy {
                free,
                first_delay: Duration::seconds(1),
                max_delay: MAX_DELAY,
                forget_after: MAX_DELAY,
            },
            REMEMBERED,
        ))
    }
}

fn source(address: Option<IpAddr>) -> IpAddr {
    address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

impl App {
    /// Refuses an address closed by unknown tokens, before its token is looked up.
    pub fn admit_link(&self, address: Option<IpAddr>) -> Result<()> {
        let now = self.clock.now();
        match self.link_guesses.0.closed_until(&source(address), now) {
            Some(until) => Err(Error::TooManyLinkGuesses {
                retry_after: (until - now).to_std().unwrap_or_default(),
            }),
            None => Ok(()),
        }
    }

    /// Counts an unknown token against its address.
    pub fn link_answered<T>(&self, address: Option<IpAddr>, answer: &Result<T>) {
        if let Err(Error::LinkNotFound) = answer {
            self.link_guesses
                .0
                .failed(source(address), self.clock.now());
        }
    }
}
