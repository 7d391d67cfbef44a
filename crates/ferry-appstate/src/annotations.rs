//! Argo CD annotations a comparison reads on Applications and on managed resources.

use ferry_sync::Hook;
use serde_json::Value;

/// `argocd.argoproj.io/compare-options` (comma-separated `Name=value`, or bare names).
pub use ferry_types::annotations::COMPARE_OPTIONS_ANNOTATION as COMPARE_OPTIONS;

/// What `compare-options` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompareOptions {
    /// `IgnoreExtraneous`: the resource does not make its app OutOfSync when it is extra.
    pub ignore_extraneous: bool,
    /// `ServerSideDiff=true|false`; `None` leaves it to the controller's default.
    pub server_side_diff: Option<bool>,
}

impl CompareOptions {
    pub fn parse(value: &str) -> Self {
        let mut options = Self::default();
        for option in value.split(',').map(str::trim) {
            let (name, setting) = option.split_once('=').unwrap_or((option, "true"));
            let on = setting.trim().eq_ignore_ascii_case("true");
            match name.trim() {
                "IgnoreExtraneous" => options.ignore_extraneous = on,
                "ServerSideDiff" => options.server_side_diff = Some(on),
                _ => {}
            }
        }
        options
    }
}

fn annotation<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object.pointer("/metadata/annotations")?.get(name)?.as_str()
}

/// The compare options of an object (an Application's JSON or a resource).
pub fn compare_options(object: &Value) -> CompareOptions {
    annotation(object, COMPARE_OPTIONS)
        .map(CompareOptions::parse)
        .unwrap_or_default()
}

pub fn ignore_extraneous(object: &Value) -> bool {
    compare_options(object).ignore_extraneous
}

/// A hook (Argo CD's or Helm's annotation): run during syncs, not kept in sync.
pub fn is_hook(object: &Value) -> bool {
    Hook::of(object).is_hook()
}

/// `argocd.argoproj.io/hook: Skip`: never applied.
pub fn is_skipped_hook(object: &Value) -> bool {
    Hook::of(object).skipped()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compare_options_parse_names_and_values() {
        let o = CompareOptions::parse("IgnoreExtraneous, ServerSideDiff=false");
        assert!(o.ignore_extraneous);
        assert_eq!(o.server_side_diff, Some(false));
        assert_eq!(CompareOptions::parse("Bogus"), CompareOptions::default());
        let object = json!({"metadata": {"annotations": {COMPARE_OPTIONS: "ServerSideDiff=true"}}});
        assert_eq!(compare_options(&object).server_side_diff, Some(true));
        assert!(!ignore_extraneous(&object));
    }
}
