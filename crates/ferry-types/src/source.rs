//! The source part of an Argo CD `Application` (`spec.source` / `spec.sources[]`).
//!
//! Field names and meanings follow `argoproj.io/v1alpha1` so real Application YAML deserializes
//! unchanged. Unknown fields are not rejected: every struct keeps them in `unknown`, and
//! [`ApplicationSource::unknown_fields`] lists them so a controller can report them as a condition
//! instead of failing the whole Application (newer Argo CD versions add fields over time).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Fields this version of ferry does not know, by name.
pub type UnknownFields = BTreeMap<String, Value>;

/// Where an application's manifests come from and how to render them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSource {
    /// Git repository URL, or Helm repository / OCI registry URL when `chart` is set.
    #[serde(rename = "repoURL", default)]
    pub repo_url: String,
    /// Directory inside the Git repository ("" or "." is the repository root).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Branch, tag, commit or `HEAD` for Git; chart version (or range) for Helm repositories.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_revision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<ApplicationSourceHelm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<ApplicationSourceKustomize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<ApplicationSourceDirectory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<ApplicationSourcePlugin>,
    /// Helm chart name, for charts served by a Helm repository or OCI registry.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chart: String,
    /// Name other sources use (`$<ref>/...`) to read files from this source's repository.
    #[serde(rename = "ref", default, skip_serializing_if = "String::is_empty")]
    pub ref_name: String,
    /// Display name of the source in multi-source Applications.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// The four kinds of rendering Argo CD knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceType {
    Helm,
    Kustomize,
    Directory,
    Plugin,
}

impl std::fmt::Display for SourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceType::Helm => "Helm",
            SourceType::Kustomize => "Kustomize",
            SourceType::Directory => "Directory",
            SourceType::Plugin => "Plugin",
        })
    }
}

impl ApplicationSource {
    /// True when the source is a chart from a Helm repository or OCI registry (no Git checkout).
    pub fn is_chart(&self) -> bool {
        !self.chart.is_empty()
    }

    /// The rendering type chosen by the option block that is set (`helm`, `kustomize`, ...), as
    /// Argo CD does; `Ok(None)` when none is set and the type must be discovered from the files.
    pub fn explicit_type(&self) -> Result<Option<SourceType>, String> {
        let set: Vec<SourceType> = [
            (self.kustomize.is_some(), SourceType::Kustomize),
            (self.helm.is_some(), SourceType::Helm),
            (self.directory.is_some(), SourceType::Directory),
            (self.plugin.is_some(), SourceType::Plugin),
        ]
        .into_iter()
        .filter_map(|(present, kind)| present.then_some(kind))
        .collect();
        match set.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            many => Err(format!(
                "multiple application source types defined: {}",
                many.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Dotted paths (relative to the source) of every field ferry does not know.
    pub fn unknown_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        push_unknown(&mut out, "", &self.unknown);
        if let Some(h) = &self.helm {
            push_unknown(&mut out, "helm.", &h.unknown);
            for (i, p) in h.parameters.iter().enumerate() {
                push_unknown(&mut out, &format!("helm.parameters[{i}]."), &p.unknown);
            }
            for (i, p) in h.file_parameters.iter().enumerate() {
                push_unknown(&mut out, &format!("helm.fileParameters[{i}]."), &p.unknown);
            }
        }
        if let Some(k) = &self.kustomize {
            push_unknown(&mut out, "kustomize.", &k.unknown);
            for (i, r) in k.replicas.iter().enumerate() {
                push_unknown(&mut out, &format!("kustomize.replicas[{i}]."), &r.unknown);
            }
            for (i, p) in k.patches.iter().enumerate() {
                push_unknown(&mut out, &format!("kustomize.patches[{i}]."), &p.unknown);
                if let Some(t) = &p.target {
                    push_unknown(
                        &mut out,
                        &format!("kustomize.patches[{i}].target."),
                        &t.unknown,
                    );
                }
            }
        }
        if let Some(d) = &self.directory {
            push_unknown(&mut out, "directory.", &d.unknown);
            push_unknown(&mut out, "directory.jsonnet.", &d.jsonnet.unknown);
            for (i, v) in d.jsonnet.ext_vars.iter().enumerate() {
                push_unknown(
                    &mut out,
                    &format!("directory.jsonnet.extVars[{i}]."),
                    &v.unknown,
                );
            }
            for (i, v) in d.jsonnet.tlas.iter().enumerate() {
                push_unknown(
                    &mut out,
                    &format!("directory.jsonnet.tlas[{i}]."),
                    &v.unknown,
                );
            }
        }
        if let Some(p) = &self.plugin {
            push_unknown(&mut out, "plugin.", &p.unknown);
            for (i, e) in p.env.iter().enumerate() {
                push_unknown(&mut out, &format!("plugin.env[{i}]."), &e.unknown);
            }
            for (i, e) in p.parameters.iter().enumerate() {
                push_unknown(&mut out, &format!("plugin.parameters[{i}]."), &e.unknown);
            }
        }
        out
    }

    /// A short human label: `repoURL` plus path or chart, for error messages.
    pub fn describe(&self) -> String {
        if self.is_chart() {
            format!("{} chart {}", self.repo_url, self.chart)
        } else if self.path.is_empty() {
            self.repo_url.clone()
        } else {
            format!("{} path {}", self.repo_url, self.path)
        }
    }
}

fn push_unknown(out: &mut Vec<String>, prefix: &str, fields: &UnknownFields) {
    out.extend(fields.keys().map(|k| format!("{prefix}{k}")));
}

/// `spec.source.helm`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSourceHelm {
    /// Values files, relative to the source path, or `$<ref>/path` in another source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value_files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<HelmParameter>,
    /// Release name; the application name when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub release_name: String,
    /// Values as a YAML string (`valuesObject` takes precedence).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub values: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_parameters: Vec<HelmFileParameter>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub pass_credentials: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_missing_value_files: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_crds: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_object: Option<Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_versions: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_tests: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_schema_validation: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl ApplicationSourceHelm {
    /// The inline values as YAML text: `valuesObject` when set, else `values`; `None` when empty.
    pub fn inline_values_yaml(&self) -> Result<Option<String>, serde_yaml::Error> {
        match &self.values_object {
            Some(Value::Null) | None if self.values.trim().is_empty() => Ok(None),
            Some(obj) if !obj.is_null() => serde_yaml::to_string(obj).map(Some),
            _ => Ok(Some(self.values.clone())),
        }
    }
}

/// `helm.parameters[]`: `--set name=value` (or `--set-string` when `forceString`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmParameter {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub force_string: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `helm.fileParameters[]`: `--set-file name=path`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmFileParameter {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub path: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.source.kustomize`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSourceKustomize {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_prefix: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_suffix: String,
    /// Image overrides: `[old=]name[:tag|@digest]`, as `kustomize edit set image` takes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub force_common_labels: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub force_common_annotations: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub common_annotations_envsubst: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<KustomizeReplica>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<KustomizePatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_missing_components: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub label_without_selector: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub label_include_templates: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_versions: Vec<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `kustomize.replicas[]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KustomizeReplica {
    pub name: String,
    /// An integer, or a string holding one (Kubernetes `IntOrString`).
    pub count: IntOrString,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl KustomizeReplica {
    /// The replica count as an integer.
    pub fn count(&self) -> Result<i64, String> {
        match &self.count {
            IntOrString::Int(n) => Ok(*n),
            IntOrString::String(s) => s.trim().parse().map_err(|_| {
                format!(
                    "expected an integer replica count for {:?}, got {s:?}",
                    self.name
                )
            }),
        }
    }
}

/// Kubernetes `IntOrString`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

/// `kustomize.patches[]`, appended to the kustomization's `patches` as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KustomizePatch {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub patch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<KustomizeSelector>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, bool>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// A kustomize patch target selector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KustomizeSelector {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label_selector: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub annotation_selector: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.source.directory`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSourceDirectory {
    #[serde(default, skip_serializing_if = "is_false")]
    pub recurse: bool,
    #[serde(default, skip_serializing_if = "ApplicationSourceJsonnet::is_empty")]
    pub jsonnet: ApplicationSourceJsonnet,
    /// Glob of paths (relative to the source path) to leave out; `{a,b}` alternatives allowed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exclude: String,
    /// Glob of paths (relative to the source path) to use; everything when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub include: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `directory.jsonnet`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSourceJsonnet {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ext_vars: Vec<JsonnetVar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tlas: Vec<JsonnetVar>,
    /// Library search directories, relative to the repository root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub libs: Vec<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl ApplicationSourceJsonnet {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// A Jsonnet external variable or top-level argument: a string, or Jsonnet code when `code`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonnetVar {
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub code: bool,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.source.plugin`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplicationSourcePlugin {
    /// Plugin name (`<name>` or `<name>-<version>`); empty means "discover".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<PluginParameter>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `plugin.env[]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvEntry {
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `plugin.parameters[]`: a string, map or array value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginParameter {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array: Option<Vec<String>>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP_SOURCES: &str = r#"
- repoURL: https://charts.example.com
  chart: podinfo
  targetRevision: 6.5.0
  helm:
    releaseName: web
    valueFiles:
      - $values/envs/prod/values.yaml
    parameters:
      - name: replicaCount
        value: "3"
      - name: image.tag
        value: "1.0"
        forceString: true
    fileParameters:
      - name: config
        path: files/config.json
    valuesObject:
      ingress:
        enabled: true
    ignoreMissingValueFiles: true
    skipCrds: true
    apiVersions: [monitoring.coreos.com/v1/ServiceMonitor]
    kubeVersion: "1.30"
- repoURL: https://git.example.com/config.git
  targetRevision: main
  ref: values
- repoURL: https://git.example.com/apps.git
  path: overlays/prod
  kustomize:
    namePrefix: prod-
    images: [nginx=nginx:1.27]
    commonLabels: {team: web}
    replicas:
      - name: web
        count: 4
      - name: worker
        count: "2"
    patches:
      - target: {kind: Deployment, name: web, labelSelector: "app=web"}
        patch: |-
          - op: add
            path: /metadata/annotations/x
            value: y
    components: [../../components/tls]
- repoURL: https://git.example.com/apps.git
  path: jsonnet
  directory:
    recurse: true
    include: "{*.yaml,*.jsonnet}"
    jsonnet:
      tlas: [{name: env, value: prod}]
      extVars: [{name: replicas, value: "2", code: true}]
      libs: [vendor]
- repoURL: https://git.example.com/apps.git
  path: cmp
  plugin:
    name: envsubst
    env: [{name: FOO, value: bar}]
    parameters:
      - name: images
        array: [a, b]
      - name: labels
        map: {k: v}
      - name: mode
        string: fast
"#;

    #[test]
    fn real_argo_sources_deserialize_and_round_trip() {
        let sources: Vec<ApplicationSource> = serde_yaml::from_str(APP_SOURCES).unwrap();
        assert_eq!(sources.len(), 5);
        let helm = sources[0].helm.as_ref().unwrap();
        assert!(sources[0].is_chart());
        assert_eq!(helm.parameters[1].name, "image.tag");
        assert!(helm.parameters[1].force_string);
        assert_eq!(
            helm.inline_values_yaml().unwrap().unwrap(),
            "ingress:\n  enabled: true\n"
        );
        assert_eq!(sources[1].ref_name, "values");
        let kustomize = sources[2].kustomize.as_ref().unwrap();
        assert_eq!(kustomize.replicas[0].count(), Ok(4));
        assert_eq!(kustomize.replicas[1].count(), Ok(2));
        assert_eq!(
            kustomize.patches[0].target.as_ref().unwrap().label_selector,
            "app=web"
        );
        let jsonnet = &sources[3].directory.as_ref().unwrap().jsonnet;
        assert!(jsonnet.ext_vars[0].code);
        let plugin = sources[4].plugin.as_ref().unwrap();
        assert_eq!(
            plugin.parameters[0].array.as_deref(),
            Some(&["a".into(), "b".into()][..])
        );
        for s in &sources {
            assert!(s.unknown_fields().is_empty(), "{:?}", s.unknown_fields());
        }
        // Serializing and reading back gives the same value (the controller stores sources).
        let json = serde_json::to_value(&sources).unwrap();
        let back: Vec<ApplicationSource> = serde_json::from_value(json).unwrap();
        assert_eq!(back, sources);
    }

    #[test]
    fn unknown_fields_are_kept_and_reported_with_their_path() {
        let src: ApplicationSource = serde_yaml::from_str(
            "repoURL: r\nhydrator: x\nhelm:\n  valueFile: typo.yaml\n  parameters: [{name: a, value: b, force: true}]\n",
        )
        .unwrap();
        assert_eq!(
            src.unknown_fields(),
            vec!["hydrator", "helm.valueFile", "helm.parameters[0].force"]
        );
    }

    #[test]
    fn explicit_type_follows_the_option_block_and_rejects_two() {
        let src: ApplicationSource = serde_yaml::from_str("repoURL: r\nhelm: {}\n").unwrap();
        assert_eq!(src.explicit_type(), Ok(Some(SourceType::Helm)));
        let src: ApplicationSource = serde_yaml::from_str("repoURL: r\n").unwrap();
        assert_eq!(src.explicit_type(), Ok(None));
        let src: ApplicationSource =
            serde_yaml::from_str("repoURL: r\nhelm: {}\nkustomize: {}\n").unwrap();
        assert!(src.explicit_type().unwrap_err().contains("Kustomize, Helm"));
    }

    #[test]
    fn bad_replica_count_is_an_error() {
        let r: KustomizeReplica = serde_yaml::from_str("name: web\ncount: many\n").unwrap();
        assert!(r.count().unwrap_err().contains("\"many\""));
    }

    #[test]
    fn values_string_is_used_when_no_values_object() {
        let h: ApplicationSourceHelm = serde_yaml::from_str("values: |\n  a: 1\n").unwrap();
        assert_eq!(h.inline_values_yaml().unwrap().as_deref(), Some("a: 1\n"));
        let h = ApplicationSourceHelm::default();
        assert_eq!(h.inline_values_yaml().unwrap(), None);
    }
}
