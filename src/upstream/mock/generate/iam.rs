//! IAM's own value forms, for `google.iam.v1` messages: members and roles.

use fake::Fake;
use fake::faker::name::en::FirstName;
use fake::rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::Site;
use super::formats::{lower_word, pick};

/// IAM's own forms: a binding's `members` (`user:alice@example.com`,
/// `serviceAccount:…`, `group:…`, `domain:…`) and `role` (`roles/…`).
pub(super) fn iam_value(site: Site<'_>, rng: &mut ChaCha8Rng) -> Option<String> {
    let owner = site.owner?.full_name();
    if !owner.starts_with("google.iam.v1.") {
        return None;
    }
    match site.name {
        "member" | "exempted_member" => {
            let who = lower_word(rng);
            Some(match rng.random_range(0..4) {
                0 => format!(
                    "serviceAccount:{who}@{}.iam.gserviceaccount.com",
                    lower_word(rng)
                ),
                1 => format!("group:{who}-team@example.com"),
                2 => "domain:example.com".to_owned(),
                _ => {
                    let first: String = FirstName().fake_with_rng(rng);
                    format!("user:{}@example.com", first.to_ascii_lowercase())
                }
            })
        }
        "role" => Some(pick(IAM_ROLES, rng).to_owned()),
        _ => None,
    }
}

/// Predefined roles a generated IAM binding grants.
const IAM_ROLES: &[&str] = &[
    "roles/viewer",
    "roles/editor",
    "roles/owner",
    "roles/browser",
    "roles/iam.securityReviewer",
];
