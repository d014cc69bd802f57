//! GetInvitation and ListInvitations (R1: only the trust's administrators see them).

use portal_runtime::Principal;
use portal_runtime::vocab::InvitationId;

use super::{App, signed_in};
use crate::domain::{Invitation, ListQuery, Page, PageKey};
use crate::error::Result;

impl App {
    pub async fn get(&self, caller: &Principal, id: InvitationId) -> Result<Invitation> {
        Ok(self.seen(self.visible(caller, id).await?))
    }

    /// One page of the trust's invitations, newest first.
    pub async fn list(&self, caller: &Principal, query: ListQuery) -> Result<Page> {
        let account_id = signed_in(caller)?;
        self.identity
            .require_administrator(query.filter.trust_id, account_id)
            .await?;
        let mut rows = self
            .store
            .list(
                &query.filter,
                query.after.as_ref(),
                query.page.fetch_limit(),
            )
            .await?;
        let next_page_token = query
            .page
            .finish(&mut rows, &query.fingerprint, |i| PageKey::of(i).encode());
        Ok(Page {
            invitations: rows.into_iter().map(|i| self.seen(i)).collect(),
            next_page_token,
        })
    }
}
