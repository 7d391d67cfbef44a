//! The few operations the editors need on `yaml-edit`'s lossless trees: parse, read a scalar,
//! and set a scalar in the style the file already uses for it.

use std::str::FromStr;

use yaml_edit::{Mapping, ScalarStyle, ScalarValue, YamlFile, YamlNode};

use crate::edit::EditError;

pub(crate) fn parse(text: &str) -> Result<YamlFile, EditError> {
    YamlFile::from_str(text).map_err(|e| EditError::InvalidYaml(e.to_string()))
}

/// The string value of a scalar node; `None` for collections, aliases, tagged nodes and nulls.
pub(crate) fn scalar_string(node: &YamlNode) -> Option<String> {
    let scalar = node.as_scalar()?;
    if scalar.is_null() && !scalar.is_quoted() {
        return None;
    }
    Some(scalar.as_string())
}

/// The string at `key` of `mapping` (see [`scalar_string`]).
pub(crate) fn get_string(mapping: &Mapping, key: &str) -> Option<String> {
    mapping.get(key).as_ref().and_then(scalar_string)
}

/// Set `key` of `mapping` to the string `value`, unless it holds it already. An existing
/// quoted scalar keeps its quotes; a plain one stays plain unless `value` would then read as
/// another type (`1.2`, `true`), which is quoted as yq would. Returns the old value when it
/// changed something (`Some(None)`: the key was added).
pub(crate) fn set_string(mapping: &Mapping, key: &str, value: &str) -> Option<Option<String>> {
    let existing = mapping.get(key);
    let old = existing.as_ref().and_then(scalar_string);
    if old.as_deref() == Some(value) {
        return None;
    }
    let style = existing
        .as_ref()
        .and_then(|node| node.as_scalar())
        .map(|scalar| ScalarValue::from_scalar(scalar).style());
    let scalar = match style {
        Some(ScalarStyle::DoubleQuoted) => ScalarValue::double_quoted(value),
        Some(ScalarStyle::SingleQuoted) => ScalarValue::single_quoted(value),
        _ => ScalarValue::string(value),
    };
    mapping.set(key, scalar);
    Some(old)
}

/// Remove `key` from `mapping`; returns the old value if there was one.
pub(crate) fn remove(mapping: &Mapping, key: &str) -> Option<Option<String>> {
    let entry = mapping.remove(key)?;
    Some(entry.value_node().as_ref().and_then(scalar_string))
}
