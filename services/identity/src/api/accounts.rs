//! AccountService: registration, sign-in and "who am I".

use portal_proto::identity::v1 as pb;
use portal_proto::identity::v1::account_service_server::AccountService;
use portal_runtime::auth::principal_of;
use tonic::{Request, Response, Status};

use super::convert::Parsed;
use super::{Api, answer};
use crate::app::Accounts;
use crate::domain::{Registration, SignIn};

#[tonic::async_trait]
impl AccountService for Api {
    async fn register_account(
        &self,
        request: Request<pb::RegisterAccountRequest>,
    ) -> Result<Response<pb::RegisterAccountResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let admitted = self.app.admit::<Accounts>(&caller)?;
                let registration = Registration::try_from(request.into_inner())?;
                let account = self.app.register_account(&admitted, registration).await?;
                Ok(pb::RegisterAccountResponse {
                    account: Some(account.into()),
                })
            }
            .await,
        )
    }

    /// The one call without a token: anyone may try to sign in.
    async fn sign_in(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::SignInResponse>, Status> {
        answer(
            async {
                let address = request.remote_addr().map(|a| a.ip());
                let sign_in = SignIn::try_from(request.into_inner())?;
                let signed_in = self.app.sign_in(sign_in, address).await?;
                Ok(signed_in.into())
            }
            .await,
        )
    }

    async fn lookup_account(
        &self,
        request: Request<pb::LookupAccountRequest>,
    ) -> Result<Response<pb::LookupAccountResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let admitted = self.app.admit::<Accounts>(&caller)?;
                let Parsed(email) = request.into_inner().try_into()?;
                let account = self.app.lookup_account(&admitted, &email).await?;
                Ok(pb::LookupAccountResponse {
                    found: account.is_some(),
                    account: account.map(Into::into),
                })
            }
            .await,
        )
    }

    async fn get_current_account(
        &self,
        request: Request<pb::GetCurrentAccountRequest>,
    ) -> Result<Response<pb::GetCurrentAccountResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let current = self.app.current_account(&caller).await?;
                Ok(current.into())
            }
            .await,
        )
    }
}
