//! The list generator: `elements` (and `elementsYaml`) are the parameter sets.

use ferry_types::application_set::ListGenerator;
use serde_json::Value;

use super::GeneratorError;
use crate::params::Params;

pub fn generate(list: &ListGenerator, go_template: bool) -> Result<Vec<Params>, GeneratorError> {
    let mut out = Vec::with_capacity(list.elements.len());
    for (i, element) in list.elements.iter().enumerate() {
        let Value::Object(element) = element else {
            return Err(GeneratorError::new(format!(
                "list element {i} is not a map: {element}"
            )));
        };
        if go_template {
            out.push(element.clone());
        } else {
            out.push(flat_element(i, element)?);
        }
    }
    if !list.elements_yaml.is_empty() {
        let more: Vec<Params> = serde_yaml::from_str(&list.elements_yaml).map_err(|e| {
            GeneratorError::new(format!("error unmarshling decoded ElementsYaml {e}"))
        })?;
        out.extend(more);
    }
    Ok(out)
}

/// fasttemplate elements hold strings, and a `values` map of strings (`values.key`).
fn flat_element(i: usize, element: &Params) -> Result<Params, GeneratorError> {
    let not_string =
        |key: &str| GeneratorError::new(format!("list element {i}: {key} is not a string"));
    let mut params = Params::new();
    for (key, value) in element {
        if key == "values" {
            let Value::Object(values) = value else {
                return Err(GeneratorError::new(format!(
                    "list element {i}: error parsing values map"
                )));
            };
            for (k, v) in values {
                let v = v
                    .as_str()
                    .ok_or_else(|| not_string(&format!("values.{k}")))?;
                params.insert(format!("values.{k}"), Value::String(v.to_string()));
            }
        } else {
            let v = value.as_str().ok_or_else(|| not_string(key))?;
            params.insert(key.clone(), Value::String(v.to_string()));
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(yaml: &str) -> ListGenerator {
        serde_yaml::from_str(yaml).unwrap()
    }

    /// Upstream's list example and its elementsYaml example.
    #[test]
    fn elements_and_elements_yaml() {
        let generator = list(
            "elements:
- cluster: engineering-dev
  url: https://1.2.3.4
  values: {project: default}
elementsYaml: |
  - cluster: engineering-prod
    url: https://2.4.6.8
",
        );
        let flat = generate(&generator, false).unwrap();
        assert_eq!(
            serde_json::to_value(&flat).unwrap(),
            json!([
                {"cluster": "engineering-dev", "url": "https://1.2.3.4", "values.project": "default"},
                {"cluster": "engineering-prod", "url": "https://2.4.6.8"},
            ])
        );
        let nested = generate(&generator, true).unwrap();
        assert_eq!(nested[0]["values"]["project"], "default");
    }

    #[test]
    fn fasttemplate_elements_must_be_strings() {
        let err = generate(&list("elements: [{replicas: 3}]"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("replicas is not a string"), "{err}");
        // Go templates take any value.
        let params = generate(&list("elements: [{replicas: 3}]"), true).unwrap();
        assert_eq!(params[0]["replicas"], 3);
    }
}
