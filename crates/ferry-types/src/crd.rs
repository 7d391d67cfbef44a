//! The CustomResourceDefinitions ferry installs: Argo CD's names, short names and printer
//! columns, with open schemas so every Argo CD manifest is accepted.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

pub const APPLICATION_CRD: &str = include_str!("../crds/applications.argoproj.io.yaml");
pub const APPPROJECT_CRD: &str = include_str!("../crds/appprojects.argoproj.io.yaml");

/// Both CRDs, parsed.
pub fn crds() -> Result<Vec<CustomResourceDefinition>, serde_yaml::Error> {
    [APPLICATION_CRD, APPPROJECT_CRD]
        .into_iter()
        .map(serde_yaml::from_str)
        .collect()
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
            ["applications.argoproj.io", "appprojects.argoproj.io"]
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
    }
}
