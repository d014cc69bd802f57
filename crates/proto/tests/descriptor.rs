//! The embedded descriptor set is complete: every Portal service and the well-known imports.

use prost::Message;
use prost_types::FileDescriptorSet;

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(portal_proto::FILE_DESCRIPTOR_SET).expect("descriptor set decodes")
}

#[test]
fn contains_every_portal_service() {
    let set = descriptor_set();
    let services: Vec<String> = set
        .file
        .iter()
        .flat_map(|file| {
            file.service
                .iter()
                .map(move |service| format!("{}.{}", file.package(), service.name()))
        })
        .collect();
    for expected in [
        "portal.identity.v1.DirectoryService",
        "portal.identity.v1.StaffService",
        "portal.identity.v1.AccountService",
        "portal.identity.v1.GrantService",
        "portal.subscription.v1.CatalogService",
        "portal.subscription.v1.SubscriptionService",
        "portal.subscription.v1.EligibilityService",
        "portal.invitation.v1.InvitationService",
    ] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} missing from {services:?}"
        );
    }
}

#[test]
fn includes_well_known_imports() {
    let set = descriptor_set();
    let names: Vec<&str> = set.file.iter().map(|file| file.name()).collect();
    for expected in [
        "google/protobuf/timestamp.proto",
        "google/protobuf/field_mask.proto",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[test]
fn generated_paths_exist() {
    // Compile-time check of the module paths other crates rely on.
    use portal_proto::identity::v1 as identity;
    use portal_proto::invitation::v1 as invitation;
    use portal_proto::subscription::v1 as subscription;

    let _ = std::any::type_name::<
        identity::staff_service_client::StaffServiceClient<tonic::transport::Channel>,
    >();
    let _ = identity::OrganizationKind::School;
    let _ = subscription::ProductScope::Trust;
    let _ = invitation::InvitationStatus::Pending;
    let request = invitation::CreateInvitationRequest::default();
    assert!(request.school_access.is_none());
}
