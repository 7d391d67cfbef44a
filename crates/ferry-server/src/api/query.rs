//! The query parameters of the repository, credential template and cluster requests, read as
//! grpc-gateway reads them for Argo CD: flags are `true` or `false`, keys may repeat.

use super::error::ApiError;

pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The value of `key`, the last one if it repeats (as grpc-gateway keeps a scalar's last).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `key`.
    pub fn values(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean parameter; absent or empty is false.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.value(key).unwrap_or_default() {
            "" | "false" => Ok(false),
            "true" => Ok(true),
            other => Err(ApiError::invalid_argument(format!(
                "{key} is {other:?}, not true or false"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_flags_and_repeated_keys() {
        let query = Query::parse(Some(
            "upsert=true&id.type=name&updatedFields=name&updatedFields=namespaces&id.type=server&x=",
        ));
        assert!(query.flag("upsert").unwrap());
        assert!(!query.flag("credsOnly").unwrap());
        assert_eq!(query.value("id.type"), Some("server"));
        assert_eq!(query.values("updatedFields"), ["name", "namespaces"]);
        assert!(query.values("x").is_empty());
        let err = Query::parse(Some("upsert=yes")).flag("upsert").unwrap_err();
        assert_eq!(err.message, "upsert is \"yes\", not true or false");
        assert_eq!(Query::parse(None).value("upsert"), None);
    }
}
