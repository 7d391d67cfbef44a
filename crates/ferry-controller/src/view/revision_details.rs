//! What the UI shows of a revision of a source that has no commits: a Helm chart's metadata
//! (Argo CD's `RevisionChartDetails`) and an OCI artifact's (`GetOCIMetadata`), read from the
//! chart repository or registry with the credentials of the app's project.

use serde_json::{Value, json};

use super::{ViewError, app_source};
use crate::context::Context;

/// Argo CD's `ChartDetails` of version `revision` (exact or a constraint) of the chart of the
/// app's source at `source_index` of its spec or of history entry `version_id`: its
/// `Chart.yaml`'s description, home and maintainers (`name <email>`, or the name alone).
pub async fn chart_details(
    ctx: &Context,
    name: &str,
    revision: &str,
    source_index: Option<usize>,
    version_id: Option<i64>,
) -> Result<Value, ViewError> {
    let (app, source) = app_source(ctx, name, source_index, version_id).await?;
    if source.chart.is_empty() {
        return Err(ViewError::Failed(format!(
            "no chart found for application: {name}"
        )));
    }
    let chart = ctx
        .renderer
        .chart_metadata(app.project(), &source, revision)
        .await
        .map_err(|err| ViewError::Failed(format!("error extracting chart: {err}")))?;
    Ok(details(&chart))
}

/// `ChartDetails` from a `Chart.yaml`, as Argo CD's repo server reads it.
fn details(chart: &Value) -> Value {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let maintainers: Vec<String> = chart["maintainers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|maintainer| {
            let (name, email) = (text(&maintainer["name"]), text(&maintainer["email"]));
            if email.is_empty() {
                name
            } else {
                format!("{name} <{email}>").trim().to_string()
            }
        })
        .collect();
    json!({
        "description": text(&chart["description"]),
        "home": text(&chart["home"]),
        "maintainers": maintainers,
    })
}

/// Argo CD's `OCIMetadata` of `revision` (a tag or a digest) of the OCI repository of the app's
/// source at `source_index` of its spec or of history entry `version_id` (its `chart` under its
/// `repoURL` for a chart in a registry): the manifest's `org.opencontainers.image.*`
/// annotations.
pub async fn oci_metadata(
    ctx: &Context,
    name: &str,
    revision: &str,
    source_index: Option<usize>,
    version_id: Option<i64>,
) -> Result<Value, ViewError> {
    let (app, source) = app_source(ctx, name, source_index, version_id).await?;
    let repository = if source.chart.is_empty() {
        source.repo_url.clone()
    } else {
        format!("{}/{}", source.repo_url.trim_end_matches('/'), source.chart)
    };
    let annotations = ctx
        .renderer
        .oci_annotations(app.project(), &source, &repository, revision)
        .await
        .map_err(|err| {
            ViewError::Failed(format!(
                "failed to extract digest metadata for revision {revision:?}: {err}"
            ))
        })?;
    let annotation = |name: &str| {
        annotations
            .get(&format!("org.opencontainers.image.{name}"))
            .cloned()
            .unwrap_or_default()
    };
    Ok(json!({
        "createdAt": annotation("created"),
        "authors": annotation("authors"),
        "docsUrl": annotation("documentation"),
        "sourceUrl": annotation("source"),
        "version": annotation("version"),
        "description": annotation("description"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_details_as_argo_cd_reads_them() {
        let chart: Value = serde_yaml::from_str(
            "name: web\nversion: 1.2.0\ndescription: A web server\nhome: https://example.com\n\
             maintainers:\n- {name: Ada, email: ada@example.com}\n- {name: Bob}\n- {email: x@example.com}\n",
        )
        .unwrap();
        assert_eq!(
            details(&chart),
            json!({
                "description": "A web server",
                "home": "https://example.com",
                "maintainers": ["Ada <ada@example.com>", "Bob", "<x@example.com>"],
            })
        );
        assert_eq!(
            details(&json!({"name": "bare"})),
            json!({"description": "", "home": "", "maintainers": []})
        );
    }
}
