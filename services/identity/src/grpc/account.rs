//! AccountService: registration, sign-in and "who am I".

use portal_proto::identity::v1 as pb;
use portal_proto::identity::v1::account_service_server::AccountService;
use portal_runtime::clock::to_timestamp;
use portal_runtime::error::Violations;
use portal_runtime::types::{Email, new_id, parse_id, parse_name};
use tonic::{Request, Response, Status};

use super::directory::unreachable_parse;
use super::{INVITATION, IdentityApi, access_pb, account_pb, answer, principal, require_service};
use crate::domain::{MAX_PERSON_NAME, NewAccount, group_access};
use crate::error::{IdentityError, Result};
use crate::password::{self, Password};

/// Sign-in only needs a password to be present: the policy applies when one is chosen.
fn parse_sign_in_password(raw: &str) -> std::result::Result<String, String> {
    if raw.is_empty() {
        Err("is required".into())
    } else if raw.chars().count() > 1024 {
        Err("is longer than 1024 characters".into())
    } else {
        Ok(raw.to_string())
    }
}

impl IdentityApi {
    async fn register_account_impl(
        &self,
        request: Request<pb::RegisterAccountRequest>,
    ) -> Result<pb::RegisterAccountResponse> {
        require_service(&principal(&request)?, &[INVITATION])?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let email = v.take("email", Email::parse(&request.email));
        let given_name = v.take(
            "given_name",
            parse_name(&request.given_name, MAX_PERSON_NAME),
        );
        let family_name = v.take(
            "family_name",
            parse_name(&request.family_name, MAX_PERSON_NAME),
        );
        let password = v.take("password", Password::parse(&request.password));
        let invitation_id = if request.invitation_id.trim().is_empty() {
            Some(None)
        } else {
            v.take("invitation_id", parse_id(&request.invitation_id).map(Some))
        };
        v.finish()?;
        let (Some(email), Some(given_name), Some(family_name), Some(password), Some(invitation_id)) =
            (email, given_name, family_name, password, invitation_id)
        else {
            return unreachable_parse();
        };
        // Hashing is slow on purpose: refuse a taken email before paying for it.
        if self.store().account_by_email(&email).await?.is_some() {
            return Err(IdentityError::AccountExists);
        }
        let password_hash = password::hash_blocking(password).await?;
        let account = self
            .store()
            .create_account(NewAccount {
                id: new_id(),
                email,
                given_name,
                family_name,
                password_hash,
                invitation_id,
                now: self.now(),
            })
            .await?;
        tracing::info!(account_id = %account.id, "account registered");
        Ok(pb::RegisterAccountResponse {
            account: Some(account_pb(account)),
        })
    }

    async fn sign_in_impl(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<pb::SignInResponse> {
        let request = request.into_inner();
        let mut v = Violations::new();
        let email = v.take("email", Email::parse(&request.email));
        let password = v.take("password", parse_sign_in_password(&request.password));
        v.finish()?;
        let (Some(email), Some(password)) = (email, password) else {
            return unreachable_parse();
        };
        let found = self.store().credentials(&email).await?;
        // An unknown email still pays for one verification, so timing tells nothing.
        let (account, hash) = match found {
            Some((account, hash)) => (Some(account), Some(hash)),
            None => (None, None),
        };
        let valid = password::verify_blocking(password, hash).await?;
        let account = match (valid, account) {
            (true, Some(account)) => account,
            _ => return Err(IdentityError::InvalidCredentials),
        };
        let token = self.inner.issuer.issue_user(
            portal_runtime::vocab::AccountId::parse(&account.id).map_err(anyhow::Error::msg)?,
            self.now(),
            self.inner.user_token_ttl,
        )?;
        tracing::info!(account_id = %account.id, "signed in");
        Ok(pb::SignInResponse {
            access_token: token.token,
            expire_time: Some(to_timestamp(token.expires_at)),
            account: Some(account_pb(account)),
        })
    }

    async fn lookup_account_impl(
        &self,
        request: Request<pb::LookupAccountRequest>,
    ) -> Result<pb::LookupAccountResponse> {
        require_service(&principal(&request)?, &[INVITATION])?;
        let mut v = Violations::new();
        let email = v.take("email", Email::parse(&request.get_ref().email));
        v.finish()?;
        let Some(email) = email else {
            return unreachable_parse();
        };
        let account = self.store().account_by_email(&email).await?;
        Ok(pb::LookupAccountResponse {
            found: account.is_some(),
            account: account.map(account_pb),
        })
    }

    async fn get_current_account_impl(
        &self,
        request: Request<pb::GetCurrentAccountRequest>,
    ) -> Result<pb::GetCurrentAccountResponse> {
        let caller = principal(&request)?;
        let account_id = caller.require_user()?;
        let account = self
            .store()
            .get_account(&account_id.to_string())
            .await?
            .ok_or_else(|| IdentityError::AccountNotFound(account_id.to_string()))?;
        let grants = self.store().access_grants(&account).await?;
        Ok(pb::GetCurrentAccountResponse {
            account: Some(account_pb(account)),
            access: group_access(&grants).into_iter().map(access_pb).collect(),
        })
    }
}

#[tonic::async_trait]
impl AccountService for IdentityApi {
    async fn register_account(
        &self,
        request: Request<pb::RegisterAccountRequest>,
    ) -> Result<Response<pb::RegisterAccountResponse>, Status> {
        answer(self.register_account_impl(request).await)
    }

    async fn sign_in(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::SignInResponse>, Status> {
        answer(self.sign_in_impl(request).await)
    }

    async fn lookup_account(
        &self,
        request: Request<pb::LookupAccountRequest>,
    ) -> Result<Response<pb::LookupAccountResponse>, Status> {
        answer(self.lookup_account_impl(request).await)
    }

    async fn get_current_account(
        &self,
        request: Request<pb::GetCurrentAccountRequest>,
    ) -> Result<Response<pb::GetCurrentAccountResponse>, Status> {
        answer(self.get_current_account_impl(request).await)
    }
}
