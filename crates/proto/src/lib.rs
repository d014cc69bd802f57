//! Generated gRPC code for the Portal suite's contracts (`proto/portal/**`).
//!
//! Each package is a module: [`identity::v1`], [`subscription::v1`] and
//! [`invitation::v1`], each with the messages, a `<name>_server` module per service (the
//! server trait and its tower service) and a `<name>_client` module (the client).
//! The code is generated at build time by protox and tonic-prost-build; no system `protoc`
//! is needed.

/// `portal.identity.v1`: trusts and schools, the staff directory, accounts and grants.
pub mod identity {
    /// Version 1 of the identity contracts.
    pub mod v1 {
        #![allow(clippy::all, clippy::pedantic, clippy::nursery, clippy::unwrap_used)]
        tonic::include_proto!("portal.identity.v1");
    }
}

/// `portal.subscription.v1`: product catalogue, subscriptions and the eligibility query.
pub mod subscription {
    /// Version 1 of the subscription contracts.
    pub mod v1 {
        #![allow(clippy::all, clippy::pedantic, clippy::nursery, clippy::unwrap_used)]
        tonic::include_proto!("portal.subscription.v1");
    }
}

/// `portal.invitation.v1`: invitations, sign-up links and their acceptance.
pub mod invitation {
    /// Version 1 of the invitation contracts.
    pub mod v1 {
        #![allow(clippy::all, clippy::pedantic, clippy::nursery, clippy::unwrap_used)]
        tonic::include_proto!("portal.invitation.v1");
    }
}

/// The encoded `google.protobuf.FileDescriptorSet` of every Portal proto file, its imports
/// (the google/protobuf well-known types) included, with source info (comments).
///
/// Register it with server reflection (e.g.
/// `tonic_reflection::server::Builder::configure().register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)`)
/// so that `grpcurl` can list and describe the services without local proto files.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/portal_descriptor.bin"));
