//! The services and tools that call the suite with service tokens, by the name their token
//! carries (`portal token issue --service NAME`).

/// The invitation service: grants, registration, staff and directory reads at identity;
/// catalogue, eligibility and subscription reads at subscription.
pub const INVITATION: &str = "invitation";
/// The subscription service: asks identity whether a signed-in user administers a trust.
pub const SUBSCRIPTION: &str = "subscription";
/// Billing: writes subscriptions.
pub const BILLING: &str = "billing";
/// The MIS sync job: staff snapshots.
pub const MIS_SYNC: &str = "mis-sync";
/// An operator's `portal` commands: directory writes and staff imports.
pub const OPERATOR: &str = "operator";

/// Every service name a token may carry.
pub const ALL: [&str; 5] = [INVITATION, SUBSCRIPTION, BILLING, MIS_SYNC, OPERATOR];

/// Which service tokens an RPC admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Services {
    /// Any caller, with or without a token (sign-in, links): left out of the README's table.
    Public,
    /// Any valid token (the catalogue).
    Any,
    /// Only these services' tokens; `&[]` for RPCs only users call.
    Only(&'static [&'static str]),
}

impl Services {
    pub fn admits(self, service: &str) -> bool {
        match self {
            Services::Public | Services::Any => true,
            Services::Only(names) => names.contains(&service),
        }
    }
}

const I: Services = Services::Only(&[INVITATION]);
/// What the invitation service reads, and an operator checking what was written or synced.
const IO: Services = Services::Only(&[INVITATION, OPERATOR]);
const USERS_ONLY: Services = Services::Only(&[]);

/// The service tokens each RPC of the suite admits, by full method path: the one statement
/// of who may call what with a service token. The README's caller table is made from it
/// ([`readme_table`]) and a cross-service test calls every RPC with every service token
/// against it.
pub const MATRIX: &[(&str, Services)] = &[
    (
        "/portal.identity.v1.AccessService/ListStaffAccess",
        USERS_ONLY,
    ),
    (
        "/portal.identity.v1.AccessService/WithdrawAccess",
        USERS_ONLY,
    ),
    ("/portal.identity.v1.AccountService/RegisterAccount", I),
    (
        "/portal.identity.v1.AccountService/SignIn",
        Services::Public,
    ),
    ("/portal.identity.v1.AccountService/LookupAccount", I),
    (
        "/portal.identity.v1.AccountService/GetCurrentAccount",
        USERS_ONLY,
    ),
    (
        "/portal.identity.v1.DirectoryService/CreateTrust",
        Services::Only(&[OPERATOR]),
    ),
    ("/portal.identity.v1.DirectoryService/GetTrust", IO),
    (
        "/portal.identity.v1.DirectoryService/CreateSchool",
        Services::Only(&[OPERATOR]),
    ),
    ("/portal.identity.v1.DirectoryService/GetSchool", IO),
    ("/portal.identity.v1.DirectoryService/ListSchools", IO),
    ("/portal.identity.v1.GrantService/BatchGrant", I),
    ("/portal.identity.v1.GrantService/ActivateGrants", I),
    ("/portal.identity.v1.GrantService/RevokeGrants", I),
    ("/portal.identity.v1.GrantService/ListAccess", I),
    (
        "/portal.identity.v1.GrantService/CheckAdministrator",
        Services::Only(&[INVITATION, SUBSCRIPTION]),
    ),
    (
        "/portal.identity.v1.StaffService/SyncStaff",
        Services::Only(&[MIS_SYNC, OPERATOR]),
    ),
    (
        "/portal.identity.v1.StaffService/StreamSyncStaff",
        Services::Only(&[MIS_SYNC, OPERATOR]),
    ),
    ("/portal.identity.v1.StaffService/ListStaffStatusChanges", I),
    ("/portal.identity.v1.StaffService/GetStaffMember", IO),
    ("/portal.identity.v1.StaffService/ListStaffMembers", IO),
    (
        "/portal.invitation.v1.InvitationService/CreateInvitation",
        USERS_ONLY,
    ),
    (
        "/portal.invitation.v1.InvitationService/GetInvitation",
        USERS_ONLY,
    ),
    (
        "/portal.invitation.v1.InvitationService/ListInvitations",
        USERS_ONLY,
    ),
    (
        "/portal.invitation.v1.InvitationService/ResendInvitation",
        USERS_ONLY,
    ),
    (
        "/portal.invitation.v1.InvitationService/RevokeInvitation",
        USERS_ONLY,
    ),
    (
        "/portal.invitation.v1.InvitationService/InspectInvitationLink",
        Services::Public,
    ),
    // Callable without a token (or with the invitee's user token); a service token is refused.
    (
        "/portal.invitation.v1.InvitationService/AcceptInvitation",
        USERS_ONLY,
    ),
    (
        "/portal.subscription.v1.CatalogService/ListProducts",
        Services::Any,
    ),
    (
        "/portal.subscription.v1.CatalogService/GetProduct",
        Services::Any,
    ),
    (
        "/portal.subscription.v1.CatalogService/ListRoleEquivalences",
        Services::Any,
    ),
    (
        "/portal.subscription.v1.EligibilityService/CheckEligibility",
        I,
    ),
    (
        "/portal.subscription.v1.EligibilityService/GetSchoolSubscriptions",
        I,
    ),
    (
        "/portal.subscription.v1.SubscriptionService/CreateSubscription",
        Services::Only(&[BILLING]),
    ),
    (
        "/portal.subscription.v1.SubscriptionService/UpdateSubscription",
        Services::Only(&[BILLING]),
    ),
    (
        "/portal.subscription.v1.SubscriptionService/CancelSubscription",
        Services::Only(&[BILLING]),
    ),
    (
        "/portal.subscription.v1.SubscriptionService/GetSubscription",
        Services::Only(&[INVITATION, BILLING]),
    ),
    (
        "/portal.subscription.v1.SubscriptionService/ListSubscriptions",
        Services::Only(&[INVITATION, BILLING]),
    ),
];

/// The README's table of what each service token may call, made from [`MATRIX`]: per
/// service, per Portal service, the RPCs it admits (those any token may call included, those
/// callable without a token left out).
pub fn readme_table() -> String {
    let mut table = String::from("| caller | may call |\n| --- | --- |\n");
    for service in ALL {
        let mut parts: Vec<String> = Vec::new();
        let mut current: Option<(&str, Vec<&str>)> = None;
        for (path, services) in MATRIX {
            if *services == Services::Public || !services.admits(service) {
                continue;
            }
            let Some((full, method)) = path.trim_start_matches('/').split_once('/') else {
                continue;
            };
            let package = full.split('.').nth(1).unwrap_or(full);
            match &mut current {
                Some((name, methods)) if *name == package => methods.push(method),
                _ => {
                    if let Some((name, methods)) = current.take() {
                        parts.push(format!("{name}: {}", methods.join(", ")));
                    }
                    current = Some((package, vec![method]));
                }
            }
        }
        if let Some((name, methods)) = current {
            parts.push(format!("{name}: {}", methods.join(", ")));
        }
        table.push_str(&format!("| `{service}` | {} |\n", parts.join("; ")));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_caller_table_is_the_one_made_from_the_matrix() {
        let readme = include_str!("../../../../README.md");
        let table = readme_table();
        assert!(
            readme.contains(&table),
            "README.md's caller table drifted from auth::callers::MATRIX; it should read:\n{table}"
        );
    }

    #[test]
    fn the_matrix_names_every_rpc_of_the_suite_once() {
        let served: std::collections::BTreeSet<String> = crate::metrics::known_methods()
            .filter(|path| path.starts_with("/portal."))
            .map(str::to_string)
            .collect();
        let listed: std::collections::BTreeSet<String> =
            MATRIX.iter().map(|(path, _)| path.to_string()).collect();
        assert_eq!(listed.len(), MATRIX.len(), "an RPC is listed twice");
        assert_eq!(listed, served);
    }
}
