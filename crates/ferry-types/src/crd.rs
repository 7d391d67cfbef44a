//! The CustomResourceDefinitions ferry installs: Argo CD's names, short names and printer
//! columns, with open schemas so every Argo CD manifest is accepted.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

pub const APPLICATION_CRD: &str = include_str!("../crds/applications.argoproj.io.yaml");
pub const APPPROJECT_CRD: &str = include_str!("../crds/appprojects.argoproj.io.yaml");
pub const APPLICATIONSET_CRD: &str = include_str!("../crds/applicationsets.argoproj.io.yaml");
/// Argo CD Image Updater's, for `ferry-image-updater`.
pub const IMAGEUPDATER_CRD: &str =
    include_str!("../crds/imageupdaters.argocd-image-updater.argoproj.io.yaml");

/// Argo Workflows' CRDs, for `ferry-workflow-controller`; in a directory of their own, since
/// deploy/ and the chart (which copy `crds/*.yaml`) do not install the workflow controller yet.
pub const WORKFLOW_CRDS: [&str; 5] = [
    include_str!("../crds/workflows/workflows.argoproj.io.yaml"),
    include_str!("../crds/workflows/workflowtemplates.argoproj.io.yaml"),
    include_str!("../crds/workflows/clusterworkflowtemplates.argoproj.io.yaml"),
    include_str!("../crds/workflows/cronworkflows.argoproj.io.yaml"),
    include_str!("../crds/workflows/workfloweventbindings.argoproj.io.yaml"),
];

/// Every CRD of Argo CD and the image updater, parsed.
pub fn crds() -> Result<Vec<CustomResourceDefinition>, serde_yaml::Error> {
    parse(&[
        APPLICATION_CRD,
        APPPROJECT_CRD,
        APPLICATIONSET_CRD,
        IMAGEUPDATER_CRD,
    ])
}

/// Argo Workflows' CRDs, parsed.
pub fn workflow_crds() -> Result<Vec<CustomResourceDefinition>, serde_yaml::Error> {
    parse(&WORKFLOW_CRDS)
}

fn parse(yamls: &[&str]) -> Result<Vec<CustomResourceDefinition>, serde_yaml::Error> {
    yamls.iter().map(|y| serde_yaml::from_str(y)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_parse_and_name_argo_cds_kinds() {
        let crds = crds().unwrap();
        let names: Vec<_> = crds
            .iter()
            .map(|c| c.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "applications.argoproj.io",
                "appprojects.argoproj.io",
                "applicationsets.argoproj.io",
                "imageupdaters.argocd-image-updater.argoproj.io"
            ]
        );
        let app = &crds[0].spec;
        assert_eq!(
            app.names.short_names.as_deref(),
            Some(&["app".into(), "apps".into()][..])
        );
        let version = &app.versions[0];
        assert!(
            version.subresources.is_none(),
            "Argo CD's CRDs have no status subresource"
        );
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            columns,
            ["Sync Status", "Health Status", "Revision", "Project"]
        );
        let appset = &crds[2].spec;
        assert_eq!(
            appset.names.short_names.as_deref(),
            Some(&["appset".into(), "appsets".into()][..])
        );
        assert!(
            appset.versions[0]
                .subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some()),
            "Argo CD's ApplicationSet CRD has a status subresource"
        );
        let image_updater = &crds[3].spec;
        assert_eq!(image_updater.group, "argocd-image-updater.argoproj.io");
        assert!(
            image_updater.versions[0]
                .subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some()),
            "upstream's ImageUpdater CRD has a status subresource"
        );
    }

    #[test]
    fn workflow_crds_parse_with_upstreams_names_and_scopes() {
        let crds = workflow_crds().unwrap();
        let named: Vec<_> = crds
            .iter()
            .map(|c| {
                let spec = &c.spec;
                (
                    spec.names.kind.as_str(),
                    spec.scope.as_str(),
                    spec.names.short_names.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            named,
            [
                ("Workflow", "Namespaced", vec!["wf".to_string()]),
                ("WorkflowTemplate", "Namespaced", vec!["wftmpl".into()]),
                (
                    "ClusterWorkflowTemplate",
                    "Cluster",
                    vec!["clusterwftmpl".into(), "cwft".into()]
                ),
                (
                    "CronWorkflow",
                    "Namespaced",
                    vec!["cwf".into(), "cronwf".into()]
                ),
                ("WorkflowEventBinding", "Namespaced", vec!["wfeb".into()]),
            ]
        );
        let workflow = &crds[0].spec.versions[0];
        assert!(
            workflow.subresources.is_none(),
            "upstream's Workflow CRD has no status subresource"
        );
        let columns: Vec<_> = workflow
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(columns, ["Status", "Age", "Message"]);
    }
}
