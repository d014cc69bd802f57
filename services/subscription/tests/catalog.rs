//! CatalogService through the real server.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use portal_proto::subscription::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn any_signed_in_caller_pages_through_the_catalogue() {
    let h = Harness::start().await;
    // A user who administers nothing may still read the catalogue.
    let mut catalog = h.catalog(h.user(NOBODY));
    let mut keys = Vec::new();
    let mut token = String::new();
    loop {
        let page = catalog
            .list_products(pb::ListProductsRequest {
                scope: 0,
                page_size: 3,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.products.len() <= 3);
        keys.extend(page.products.into_iter().map(|p| p.key));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        keys,
        [
            "comms-hub",
            "mis",
            "portal",
            "sonar",
            "sonar-multi-school",
            "trust-mis",
            "websites-cms"
        ]
    );
}

#[tokio::test]
async fn products_are_filtered_by_scope() {
    let h = Harness::start().await;
    let trust = h
        .catalog(h.service("invitation"))
        .list_products(pb::ListProductsRequest {
            scope: pb::ProductScope::Trust as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<_> = trust.products.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["portal", "sonar-multi-school", "trust-mis"]);
    assert!(trust.next_page_token.is_empty());
    assert!(
        trust
            .products
            .iter()
            .all(|p| p.scope == pb::ProductScope::Trust as i32)
    );
}

#[tokio::test]
async fn a_page_token_works_only_with_the_scope_it_was_issued_for() {
    let h = Harness::start().await;
    let mut catalog = h.catalog(h.user(NOBODY));
    let first = catalog
        .list_products(pb::ListProductsRequest {
            scope: 0,
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let other_scope = catalog
        .list_products(pb::ListProductsRequest {
            scope: pb::ProductScope::School as i32,
            page_size: 2,
            page_token: first.next_page_token,
        })
        .await;
    assert_invalid(other_scope, &["page_token"]);
    let negative = catalog
        .list_products(pb::ListProductsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await;
    assert_invalid(negative, &["page_size"]);
}

#[tokio::test]
async fn a_product_comes_with_its_roles_in_order() {
    let h = Harness::start().await;
    let product = h
        .catalog(h.user(NOBODY))
        .get_product(pb::GetProductRequest {
            product_key: "portal".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert_eq!(product.name, "Portal");
    assert_eq!(product.scope, pb::ProductScope::Trust as i32);
    let roles: Vec<_> = product
        .roles
        .iter()
        .map(|r| (r.key.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(
        roles,
        [
            ("account-owner", "Account Owner"),
            ("account-admin", "Account Admin"),
            ("full-edit", "Full edit"),
            ("partial-edit", "Partial edit")
        ]
    );
    assert!(product.roles.iter().all(|r| !r.description.is_empty()));
}

#[tokio::test]
async fn an_unknown_product_is_not_found_and_an_empty_key_is_invalid() {
    let h = Harness::start().await;
    let mut catalog = h.catalog(h.user(NOBODY));
    let unknown = catalog
        .get_product(pb::GetProductRequest {
            product_key: "websites".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let empty = catalog
        .get_product(pb::GetProductRequest {
            product_key: String::new(),
        })
        .await;
    assert_invalid(empty, &["product_key"]);
}

#[tokio::test]
async fn a_role_equivalence_is_found_from_either_side() {
    let h = Harness::start().await;
    let mut catalog = h.catalog(h.user(NOBODY));
    let ask = |product: &str, role: &str| pb::ListRoleEquivalencesRequest {
        product_key: product.into(),
        role_key: role.into(),
    };
    let from_cms = catalog
        .list_role_equivalences(ask("websites-cms", "administrator"))
        .await
        .unwrap()
        .into_inner()
        .role_equivalences;
    let from_portal = catalog
        .list_role_equivalences(ask("portal", "account-owner"))
        .await
        .unwrap()
        .into_inner()
        .role_equivalences;
    assert_eq!(from_cms.len(), 1);
    assert_eq!(from_cms, from_portal);
    let sides = [
        from_cms[0].left.clone().unwrap(),
        from_cms[0].right.clone().unwrap(),
    ];
    assert!(sides.contains(&pb::RoleRef {
        product_key: "portal".into(),
        role_key: "account-owner".into()
    }));
    assert!(sides.contains(&pb::RoleRef {
        product_key: "websites-cms".into(),
        role_key: "administrator".into()
    }));
    let all_cms = catalog
        .list_role_equivalences(ask("websites-cms", ""))
        .await
        .unwrap()
        .into_inner()
        .role_equivalences;
    assert_eq!(all_cms.len(), 3);
    let none = catalog
        .list_role_equivalences(ask("portal", "account-admin"))
        .await
        .unwrap()
        .into_inner()
        .role_equivalences;
    assert!(none.is_empty());
}

#[tokio::test]
async fn equivalences_of_an_undefined_role_or_unknown_product_are_refused() {
    let h = Harness::start().await;
    let mut catalog = h.catalog(h.user(NOBODY));
    let role = catalog
        .list_role_equivalences(pb::ListRoleEquivalencesRequest {
            product_key: "portal".into(),
            role_key: "writer".into(),
        })
        .await;
    assert_invalid(role, &["role_key"]);
    let product = catalog
        .list_role_equivalences(pb::ListRoleEquivalencesRequest {
            product_key: "nope".into(),
            role_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(product.code(), Code::NotFound);
}

#[tokio::test]
async fn the_catalogue_needs_a_token() {
    let h = Harness::start().await;
    let status = h
        .catalog(None)
        .list_products(pb::ListProductsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}
