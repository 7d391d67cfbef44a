//! Sync options, as Argo CD spells them: application-level (`spec.syncPolicy.syncOptions`, or
//! the CLI) and per resource (annotation `argocd.argoproj.io/sync-options`, comma-separated).

use serde_json::Value;

pub use ferry_types::annotations::SYNC_OPTIONS_ANNOTATION;

/// How deletions propagate to dependents (`PrunePropagationPolicy=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    #[default]
    Foreground,
    Background,
    Orphan,
}

impl Propagation {
    pub fn to_kube(self) -> kube::api::PropagationPolicy {
        match self {
            Propagation::Foreground => kube::api::PropagationPolicy::Foreground,
            Propagation::Background => kube::api::PropagationPolicy::Background,
            Propagation::Orphan => kube::api::PropagationPolicy::Orphan,
        }
    }
}

/// Options that apply to a whole sync, or (the per-resource subset) to one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOptionSet {
    /// `ServerSideApply=false` asks for client-side apply with the last-applied annotation.
    pub server_side_apply: bool,
    pub replace: bool,
    pub force: bool,
    pub validate: bool,
    pub create_namespace: bool,
    pub apply_out_of_sync_only: bool,
    pub prune_last: bool,
    /// `Prune=false`: never prune this resource.
    pub prune: bool,
    /// `Prune=confirm`: prune it only once the prune is approved (the sync waits until then).
    pub prune_confirm: bool,
    /// `Delete=false`: keep the resource when its application is deleted.
    pub delete: bool,
    /// `Delete=confirm`: delete it with its application only once the deletion is approved
    /// (the Application's `argocd.argoproj.io/deletion-approved`).
    pub delete_confirm: bool,
    pub propagation: Propagation,
    pub fail_on_shared_resource: bool,
    pub respect_ignore_differences: bool,
    pub skip_dry_run_on_missing_resource: bool,
}

impl Default for SyncOptionSet {
    fn default() -> Self {
        Self {
            server_side_apply: true,
            replace: false,
            force: false,
            validate: true,
            create_namespace: false,
            apply_out_of_sync_only: false,
            prune_last: false,
            prune: true,
            prune_confirm: false,
            delete: true,
            delete_confirm: false,
            propagation: Propagation::Foreground,
            fail_on_shared_resource: false,
            respect_ignore_differences: false,
            skip_dry_run_on_missing_resource: false,
        }
    }
}

/// An option that ferry does not know, reported rather than silently ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownOption(pub String);

impl SyncOptionSet {
    /// Parses `Name=value` options on top of `self`; returns the options it did not understand.
    pub fn apply<'a>(&mut self, options: impl IntoIterator<Item = &'a str>) -> Vec<UnknownOption> {
        let mut unknown = Vec::new();
        for option in options {
            let option = option.trim();
            if option.is_empty() {
                continue;
            }
            let (name, value) = option.split_once('=').unwrap_or((option, "true"));
            let flag = value.trim().eq_ignore_ascii_case("true");
            match name.trim() {
                "ServerSideApply" => self.server_side_apply = flag,
                "Replace" => self.replace = flag,
                "Force" => self.force = flag,
                "Validate" => self.validate = flag,
                "CreateNamespace" => self.create_namespace = flag,
                "ApplyOutOfSyncOnly" => self.apply_out_of_sync_only = flag,
                "PruneLast" => self.prune_last = flag,
                "Prune" => {
                    self.prune_confirm = value.trim() == "confirm";
                    self.prune = flag || self.prune_confirm;
                }
                "Delete" => {
                    self.delete_confirm = value.trim() == "confirm";
                    self.delete = flag || self.delete_confirm;
                }
                "FailOnSharedResource" => self.fail_on_shared_resource = flag,
                "RespectIgnoreDifferences" => self.respect_ignore_differences = flag,
                "SkipDryRunOnMissingResource" => self.skip_dry_run_on_missing_resource = flag,
                "PrunePropagationPolicy" => match value.trim() {
                    "foreground" => self.propagation = Propagation::Foreground,
                    "background" => self.propagation = Propagation::Background,
                    "orphan" => self.propagation = Propagation::Orphan,
                    _ => unknown.push(UnknownOption(option.to_string())),
                },
                _ => unknown.push(UnknownOption(option.to_string())),
            }
        }
        unknown
    }

    /// The application's options overlaid with a resource's own annotation.
    pub fn for_resource(&self, obj: &Value) -> (SyncOptionSet, Vec<UnknownOption>) {
        let mut merged = self.clone();
        let unknown = match annotation(obj, SYNC_OPTIONS_ANNOTATION) {
            Some(list) => merged.apply(list.split(',')),
            None => Vec::new(),
        };
        (merged, unknown)
    }
}

pub(crate) fn annotation<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")?.get(name)?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn app_and_resource_options_combine() {
        let mut app = SyncOptionSet::default();
        let unknown = app.apply([
            "CreateNamespace=true",
            "PrunePropagationPolicy=background",
            "Bogus=1",
        ]);
        assert!(app.create_namespace);
        assert_eq!(app.propagation, Propagation::Background);
        assert_eq!(unknown, vec![UnknownOption("Bogus=1".into())]);

        let obj = json!({"metadata": {"annotations": {SYNC_OPTIONS_ANNOTATION: "Prune=false, Replace=true"}}});
        let (resource, unknown) = app.for_resource(&obj);
        assert!(!resource.prune);
        assert!(resource.replace);
        assert!(resource.create_namespace, "app-level options still apply");
        assert!(unknown.is_empty());
    }

    #[test]
    fn delete_confirm_deletes_after_approval() {
        let mut options = SyncOptionSet::default();
        options.apply(["Delete=confirm"]);
        assert!(options.delete && options.delete_confirm);
        options.apply(["Delete=false"]);
        assert!(!options.delete && !options.delete_confirm);
        options.apply(["Prune=confirm"]);
        assert!(options.prune && options.prune_confirm);
    }

    #[test]
    fn defaults_are_server_side_and_validating() {
        let options = SyncOptionSet::default();
        assert!(options.server_side_apply && options.validate && options.prune && options.delete);
        assert_eq!(options.propagation, Propagation::Foreground);
    }
}
