//! Accounts: registration (through an invitation), sign-in, and "who am I".

use portal_runtime::auth::Principal;
use portal_runtime::vocab::{AccountId, Email};

use std::net::IpAddr;

use super::{Accounts, Admitted, App, guessing};
use crate::domain::{
    Account, CurrentAccount, NewAccount, Registration, SignIn, SignedIn, group_access,
};
use crate::error::{Error, Result};

impl App {
    /// Registers an account.
    pub async fn register_account(
        &self,
        _: &Admitted<Accounts>,
        registration: Registration,
    ) -> Result<Account> {
        // Hashing is slow on purpose: refuse a taken email before paying for it.
        if self
            .store
            .account_by_email(&registration.email)
            .await?
            .is_some()
        {
            return Err(Error::AccountExists);
        }
        let Registration {
            email,
            given_name,
            family_name,
            password,
            invitation_id,
        } = registration;
        let password_hash = self.hasher.hash_password(password).await?;
        let new = NewAccount {
            email,
            given_name,
            family_name,
            password_hash,
            invitation_id,
        };
        let account = self
            .store
            .create_account(AccountId::generate(), new, self.now())
            .await?;
        tracing::info!(account_id = %account.id, "account registered");
        Ok(account)
    }

    /// Checks the password and issues a user token. An unknown email and a wrong password
    /// are answered alike, and take as long.
    /// Repeated failures close the account, the address or both for a while (see
    /// [`super::Guessing`]); a closed sign-in is refused before its password is checked.
    pub async fn sign_in(&self, sign_in: SignIn, address: Option<IpAddr>) -> Result<SignedIn> {
        let SignIn { email, password } = sign_in;
        let source = guessing::source(address);
        let now = self.now();
        if let Err(until) = self.guessing.admit(&email, source, now) {
            return Err(Error::TooManyFailedSignIns {
                retry_after: (until - now).to_std().unwrap_or_default(),
            });
        }
        let (account, hash) = match self.store.credentials(&email).await? {
            Some((account, hash)) => (Some(account), Some(hash)),
            None => (None, None),
        };
        let valid = self.hasher.verify_password(password, hash).await?;
        let account = match (valid, account) {
            (true, Some(account)) => account,
            _ => {
                self.guessing.failed(&email, source, now);
                return Err(Error::InvalidCredentials);
            }
        };
        self.guessing.succeeded(&email, source);
        let token = self
            .issuer
            .issue_user(account.id, self.now(), self.user_token_ttl)?;
        tracing::info!(account_id = %account.id, "signed in");
        Ok(SignedIn { account, token })
    }

    /// The account of an email, if any.
    pub async fn lookup_account(
        &self,
        _: &Admitted<Accounts>,
        email: &Email,
    ) -> Result<Option<Account>> {
        self.store.account_by_email(email).await
    }

    /// The signed-in user's account and access.
    pub async fn current_account(&self, caller: &Principal) -> Result<CurrentAccount> {
        let account_id = caller.require_user()?;
        let account = self
            .store
            .get_account(account_id)
            .await?
            .ok_or(Error::AccountNotFound(account_id))?;
        let grants = self.store.access_grants(&account).await?;
        Ok(CurrentAccount {
            access: group_access(&grants),
            account,
        })
    }
}
