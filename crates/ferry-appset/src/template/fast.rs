//! fasttemplate substitution, as Argo CD's default (non-Go) templates do it: `{{ key }}` becomes
//! the string parameter `key` (spaces inside the braces trimmed); a tag naming no string
//! parameter is left as it is.

use serde_json::Value;

use super::TemplateError;
use crate::params::Params;

pub fn replace(text: &str, params: &Params) -> Result<String, TemplateError> {
    if !is_templated(text) {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(TemplateError::Invalid {
                template: text.to_string(),
                reason: format!("cannot find end tag \"}}}}\" after {:?}", &rest[start..]),
            });
        };
        let tag = &after[..end];
        match params.get(tag.trim()) {
            Some(Value::String(value)) if !tag.trim().is_empty() => out.push_str(value),
            _ => {
                out.push_str("{{");
                out.push_str(tag);
                out.push_str("}}");
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether some line holds `{{` followed by `}}` (Argo CD's `.*{{.*}}.*`): other strings are
/// returned untouched, even with an unterminated `{{`.
fn is_templated(text: &str) -> bool {
    text.lines().any(|line| {
        line.find("{{")
            .is_some_and(|i| line[i + 2..].contains("}}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params() -> Params {
        json!({"path": "apps/web", "path.basename": "web", "path[0]": "apps", "replicas": 3})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn substitutes_string_parameters() {
        let p = params();
        assert_eq!(replace("{{path.basename}}", &p).unwrap(), "web");
        assert_eq!(
            replace("{{ path }}/x-{{path[0]}}", &p).unwrap(),
            "apps/web/x-apps"
        );
        assert_eq!(replace("no tags", &p).unwrap(), "no tags");
    }

    #[test]
    fn unknown_and_non_string_tags_stay() {
        let p = params();
        assert_eq!(
            replace("{{missing}}-{{path.basename}}", &p).unwrap(),
            "{{missing}}-web"
        );
        assert_eq!(replace("{{replicas}}", &p).unwrap(), "{{replicas}}");
        assert_eq!(replace("{{}}", &p).unwrap(), "{{}}");
    }

    #[test]
    fn an_unterminated_tag_after_a_tag_is_an_error() {
        let err = replace("{{path}} {{oops", &params())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot find end tag"), "{err}");
        // Without any complete tag the string is left alone, as in Argo CD.
        assert_eq!(replace("{{oops", &params()).unwrap(), "{{oops");
    }
}
