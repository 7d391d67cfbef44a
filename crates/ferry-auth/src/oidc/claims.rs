//! Who a verified ID token names, the way Argo CD reads it: the user is `federated_claims.user_id`
//! (Dex puts the upstream user id there) or else `sub`, and the claims that `argocd-rbac-cm`'s
//! `scopes` names (`[groups]` by default; `email` works too) are the user's RBAC groups.

use serde_json::{Map, Value};

/// A user of the OIDC provider, from the claims of a token that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoUser {
    /// The RBAC subject and the name operations are initiated by.
    pub subject: String,
    /// The values of the claims `scopes` names, in that order.
    pub groups: Vec<String>,
    pub issuer: String,
}

impl SsoUser {
    pub fn from_claims(claims: &Map<String, Value>, scopes: &[String]) -> Self {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
        let federated = claims
            .get("federated_claims")
            .and_then(|federated| federated.get("user_id"))
            .and_then(Value::as_str)
            .filter(|user_id| !user_id.is_empty());
        let groups = scopes
            .iter()
            .filter_map(|scope| claims.get(scope))
            .flat_map(|value| match value {
                Value::String(one) => vec![one.clone()],
                Value::Array(many) => many
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        Self {
            subject: federated
                .map(str::to_string)
                .or_else(|| text("sub"))
                .unwrap_or_default(),
            groups,
            issuer: text("iss").unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn dex_tokens_name_the_upstream_user() {
        let user = SsoUser::from_claims(
            &claims(json!({
                "iss": "https://cd.example.com/api/dex", "sub": "CgNib2ISBG1vY2s",
                "email": "bob@example.com", "groups": ["org:team-a", "org:team-b"],
                "federated_claims": {"connector_id": "github", "user_id": "bob"},
            })),
            &["groups".to_string()],
        );
        assert_eq!(user.subject, "bob");
        assert_eq!(user.groups, ["org:team-a", "org:team-b"]);
        assert_eq!(user.issuer, "https://cd.example.com/api/dex");
    }

    #[test]
    fn scopes_choose_the_claims_that_count_as_groups() {
        let token = claims(json!({
            "sub": "00u1", "email": "alice@example.com", "groups": "admins",
            "roles": ["a", 7, "b"], "federated_claims": {"user_id": ""},
        }));
        let user = SsoUser::from_claims(
            &token,
            &[
                "groups".into(),
                "email".into(),
                "roles".into(),
                "missing".into(),
            ],
        );
        assert_eq!(user.subject, "00u1");
        assert_eq!(user.groups, ["admins", "alice@example.com", "a", "b"]);
        assert!(SsoUser::from_claims(&token, &[]).groups.is_empty());
    }
}
