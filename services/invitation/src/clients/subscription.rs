//! The subscription service as the invitation service uses it: the catalogue (R3/R4, kept a
//! while) and one eligibility question per create (R5).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use portal_proto::subscription::v1 as sub;
use portal_runtime::client::{AuthedChannel, ClientSettings, authed_channel};
use portal_runtime::clock::to_timestamp;
use portal_runtime::vocab::{IdSet, OrgKind, ProductKey, RoleKey, SchoolId, TrustId};

use super::{Cached, locked, remote};
use crate::domain::{Catalogue, Eligibility, Ineligibility, PairAnswer, Product};
use crate::error::{Error, Result};

type CatalogClient = sub::catalog_service_client::CatalogServiceClient<AuthedChannel>;
type EligibilityClient = sub::eligibility_service_client::EligibilityServiceClient<AuthedChannel>;

/// The subscription service, called with this service's token.
#[derive(Clone)]
pub struct Subscription {
    catalog: CatalogClient,
    eligibility: EligibilityClient,
    catalogue: Arc<Mutex<Option<Cached<Arc<Catalogue>>>>>,
}

impl Subscription {
    pub fn new(settings: &ClientSettings, token: &SecretString) -> anyhow::Result<Self> {
        let channel = authed_channel(settings, token.expose_secret())?;
        Ok(Self {
            catalog: CatalogClient::new(channel.clone()),
            // Room for a full-size answer (1,000 schools × 20 products) with every pair refused
            // by a subscription.
            eligibility: EligibilityClient::new(channel)
                .max_decoding_message_size(16 * 1024 * 1024),
            catalogue: Arc::default(),
        })
    }

    /// The catalogue, read in one call (kept a while).
    pub async fn catalogue(&self) -> Result<Arc<Catalogue>> {
        if let Some(catalogue) = Cached::fresh(locked(&self.catalogue).as_ref()) {
            return Ok(catalogue);
        }
        let mut products = Catalogue::new();
        let mut page_token = String::new();
        loop {
            let reply = self
                .catalog
                .clone()
                .list_products(sub::ListProductsRequest {
                    scope: sub::ProductScope::Unspecified as i32,
                    page_size: 500,
                    page_token: page_token.clone(),
                })
                .await
                .map_err(|s| remote("subscription", s))?
                .into_inner();
            for product in reply.products {
                let product = Product::from(product);
                products.insert(product.key.clone(), product);
            }
            if reply.next_page_token.is_empty() {
                break;
            }
            page_token = reply.next_page_token;
        }
        let catalogue = Arc::new(products);
        *locked(&self.catalogue) = Some(Cached::new(catalogue.clone()));
        Ok(catalogue)
    }

    /// R5: one eligibility question for the trust product and every (school, product) pair,
    /// in the COMPACT view (only the refused pairs, each with its reason and since when).
    pub async fn eligibility(
        &self,
        trust_id: TrustId,
        trust_product: &ProductKey,
        school_products: &[ProductKey],
        school_ids: &[SchoolId],
        at: DateTime<Utc>,
    ) -> Result<Eligibility> {
        let answer = self
            .eligibility
            .clone()
            .check_eligibility(sub::CheckEligibilityRequest {
                trust_id: trust_id.to_string(),
                trust_product_key: trust_product.to_string(),
                school_product_keys: school_products.iter().map(ToString::to_string).collect(),
                school_ids: school_ids.iter().map(ToString::to_string).collect(),
                at: Some(to_timestamp(at)),
                view: sub::EligibilityView::Compact as i32,
            })
            .await
            .map_err(|s| remote("subscription", s))?
            .into_inner();
        from_compact(answer, school_ids)
    }
}

/// The catalogue's own keys are read as they are.
impl From<sub::Product> for Product {
    fn from(product: sub::Product) -> Self {
        let scope = match sub::ProductScope::try_from(product.scope) {
            Ok(sub::ProductScope::Trust) => Some(OrgKind::Trust),
            Ok(sub::ProductScope::School) => Some(OrgKind::School),
            _ => None,
        };
        Product {
            key: ProductKey::from_known(&product.key),
            name: product.name,
            scope,
            roles: product
                .roles
                .iter()
                .map(|r| RoleKey::from_known(&r.key))
                .collect(),
        }
    }
}

/// A refusal's reason (a refused pair without one is still refused).
impl From<sub::IneligibilityReason> for Ineligibility {
    fn from(reason: sub::IneligibilityReason) -> Self {
        use sub::IneligibilityReason as R;
        match reason {
            R::NotStarted => Ineligibility::NotStarted,
            R::Ended => Ineligibility::Ended,
            R::Cancelled => Ineligibility::Cancelled,
            R::Expired => Ineligibility::Expired,
            R::ProductNotSchoolScoped | R::ProductNotTrustScoped => Ineligibility::WrongScope,
            R::NoSubscription | R::Unspecified => Ineligibility::NoSubscription,
        }
    }
}

/// Reads a COMPACT answer: pairs are numbered school-major over the distinct schools asked
/// about (in the order first given) and the answer's product keys; those not refused are
/// eligible.
fn from_compact(
    answer: sub::CheckEligibilityResponse,
    school_ids: &[SchoolId],
) -> Result<Eligibility> {
    let mut seen = IdSet::default();
    let schools: Vec<SchoolId> = school_ids
        .iter()
        .copied()
        .filter(|s| seen.insert(s.as_u128()))
        .collect();
    let keys: Vec<ProductKey> = answer
        .school_product_keys
        .iter()
        .map(|k| ProductKey::from_known(k))
        .collect();
    let mut pairs: Vec<PairAnswer> = schools
        .iter()
        .flat_map(|&school_id| {
            keys.iter().map(move |key| PairAnswer {
                school_id,
                product_key: key.clone(),
                refusal: None,
                since: None,
            })
        })
        .collect();
    let refused = answer.refused.unwrap_or_default();
    let malformed = |what: &str| -> Error {
        anyhow::anyhow!(
            "subscription answered {what} for {} schools x {} products",
            schools.len(),
            keys.len()
        )
        .into()
    };
    if refused.reasons.len() != refused.pairs.len()
        || refused.effective_unix_micros.len() != refused.pairs.len()
    {
        return Err(malformed("refusal lists of different lengths"));
    }
    for ((pair, reason), micros) in refused
        .pairs
        .iter()
        .zip(&refused.reasons)
        .zip(&refused.effective_unix_micros)
    {
        let answer = usize::try_from(*pair)
            .ok()
            .and_then(|pair| pairs.get_mut(pair))
            .ok_or_else(|| malformed(&format!("pair number {pair}")))?;
        // A reason a newer server added still refuses the pair.
        answer.refusal = Some(
            sub::IneligibilityReason::try_from(*reason)
                .map_or(Ineligibility::NoSubscription, Ineligibility::from),
        );
        answer.since = (*micros != 0)
            .then(|| DateTime::<Utc>::from_timestamp_micros(*micros))
            .flatten();
    }
    Ok(Eligibility {
        trust_subscribed: answer.trust_product.is_some_and(|t| t.eligible),
        pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sub::IneligibilityReason as R;

    fn at(day: u32) -> DateTime<Utc> {
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 9, day, 0, 0, 0).unwrap()
    }

    fn refused(refusals: &[(u32, R, Option<DateTime<Utc>>)]) -> Option<sub::Refused> {
        Some(sub::Refused {
            pairs: refusals.iter().map(|r| r.0).collect(),
            reasons: refusals.iter().map(|r| r.1 as i32).collect(),
            effective_unix_micros: refusals
                .iter()
                .map(|r| r.2.map_or(0, |t| t.timestamp_micros()))
                .collect(),
        })
    }

    #[test]
    fn a_compact_answer_becomes_one_pair_per_school_and_product_with_refusal_dates() {
        let answer = sub::CheckEligibilityResponse {
            trust_product: Some(sub::TrustProductEligibility {
                product_key: "portal".into(),
                eligible: true,
                ..Default::default()
            }),
            school_product_keys: vec!["sonar".into(), "mis".into()],
            refused: refused(&[
                (1, R::Ended, Some(at(1))),
                (2, R::NoSubscription, None),
                (3, R::NotStarted, Some(at(20))),
            ]),
            ..Default::default()
        };
        let (a, b) = (SchoolId::generate(), SchoolId::generate());
        // The second `a` is a duplicate the subscription service ignored.
        let eligibility = from_compact(answer, &[a, b, a]).unwrap();
        assert!(eligibility.trust_subscribed);
        let pair = |school_id, product: &str, refusal, since| PairAnswer {
            school_id,
            product_key: ProductKey::from_known(product),
            refusal,
            since,
        };
        assert_eq!(
            eligibility.pairs,
            vec![
                pair(a, "sonar", None, None),
                pair(a, "mis", Some(Ineligibility::Ended), Some(at(1))),
                pair(b, "sonar", Some(Ineligibility::NoSubscription), None),
                pair(b, "mis", Some(Ineligibility::NotStarted), Some(at(20))),
            ]
        );
        assert!(eligibility.pairs[0].eligible());
        assert!(!eligibility.pairs[1].eligible());
    }

    #[test]
    fn a_compact_answer_without_refusals_makes_every_pair_eligible() {
        let answer = sub::CheckEligibilityResponse {
            school_product_keys: vec!["sonar".into()],
            ..Default::default()
        };
        let eligibility =
            from_compact(answer, &[SchoolId::generate(), SchoolId::generate()]).unwrap();
        assert_eq!(eligibility.pairs.len(), 2);
        assert!(eligibility.pairs.iter().all(PairAnswer::eligible));
        assert!(!eligibility.trust_subscribed);
    }

    #[test]
    fn a_compact_answer_naming_a_pair_out_of_range_is_an_error_not_a_misread() {
        let answer = sub::CheckEligibilityResponse {
            school_product_keys: vec!["sonar".into(), "mis".into()],
            refused: refused(&[(4, R::Ended, None)]),
            ..Default::default()
        };
        assert!(from_compact(answer, &[SchoolId::generate(), SchoolId::generate()]).is_err());
    }

    #[test]
    fn a_compact_answer_with_lists_of_different_lengths_is_an_error_not_a_misread() {
        let mut lists = refused(&[(0, R::Ended, None), (1, R::Cancelled, None)]).unwrap();
        lists.effective_unix_micros.pop();
        let answer = sub::CheckEligibilityResponse {
            school_product_keys: vec!["sonar".into(), "mis".into()],
            refused: Some(lists),
            ..Default::default()
        };
        assert!(from_compact(answer, &[SchoolId::generate()]).is_err());
    }
}
