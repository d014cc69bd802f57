//! The other services this one calls: identity, asked whether a signed-in user administers a
//! trust.

use portal_proto::identity::v1::CheckAdministratorRequest;
use portal_proto::identity::v1::grant_service_client::GrantServiceClient;
use portal_runtime::auth::admin::AdminDecision;
use portal_runtime::client::{AuthedChannel, ClientSettings, authed_channel, is_unavailable};
use portal_runtime::vocab::{AccountId, TrustId};
use secrecy::{ExposeSecret as _, SecretString};
use tonic::Code;

use crate::error::{Error, Result};

/// Identity's GrantService, called with this service's own token.
#[derive(Debug, Clone)]
pub struct Identity {
    grants: GrantServiceClient<AuthedChannel>,
}

impl Identity {
    /// A client of the identity service at `url`, calling with `token`; connects on first
    /// use.
    pub fn new(url: &str, token: &SecretString) -> anyhow::Result<Self> {
        let channel = authed_channel(&ClientSettings::new(url), token.expose_secret())?;
        Ok(Self {
            grants: GrantServiceClient::new(channel),
        })
    }

    /// Whether `account` administers `trust`. A trust identity does not know has no
    /// administrators; an identity that cannot answer is [`Error::IdentityUnavailable`].
    pub async fn administration(
        &self,
        trust: TrustId,
        account: AccountId,
    ) -> Result<AdminDecision> {
        let answer = self
            .grants
            .clone()
            .check_administrator(CheckAdministratorRequest {
                trust_id: trust.to_string(),
                account_id: account.to_string(),
            })
            .await;
        match answer {
            Ok(response) => Ok(AdminDecision::from(response.into_inner().decision())),
            // Identity does not know the trust: nobody administers it.
            Err(status) if status.code() == Code::NotFound => Ok(AdminDecision::NotAdministrator),
            Err(status) => {
                let detail = format!("{:?}: {}", status.code(), status.message());
                Err(if is_unavailable(&status) {
                    Error::IdentityUnavailable(detail)
                } else {
                    Error::IdentityFailed(detail)
                })
            }
        }
    }
}
