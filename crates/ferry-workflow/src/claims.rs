//! `volumeClaimTemplates`: a PersistentVolumeClaim `<workflow>-<name>` per template, created
//! before the first pod, owned by the workflow and recorded in `status.persistentVolumeClaims`
//! (which pods mount by the template's name); deleted when the workflow finished as
//! `volumeClaimGC` says, as upstream's operator does.

use ferry_types::Workflow;
use ferry_types::workflow::{Phase, WorkflowSpec, labels};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::templates::join;

/// The finalizer that keeps a claim while a pod, even a finished one, names it. Upstream
/// removes it from the claims it deletes, so they go although the pods stay (podGC).
const PROTECTION: &str = "kubernetes.io/pvc-protection";

/// Why claims could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The workflow asks for a claim that cannot be made: it fails (upstream's Error).
    #[error("pvc create error: {0}")]
    Invalid(String),
    /// The API server did not answer as it should: tried again.
    #[error("creating claim {name}: {source}")]
    Api {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The strategy of `volumeClaimGC`, checked by validation.
pub fn gc_strategy(spec: &WorkflowSpec) -> Result<&str, String> {
    let strategy = spec
        .volume_claim_gc
        .as_ref()
        .and_then(|g| g.strategy.as_deref());
    match strategy.unwrap_or("OnWorkflowCompletion") {
        "" => Ok("OnWorkflowCompletion"),
        known @ ("OnWorkflowCompletion" | "OnWorkflowSuccess") => Ok(known),
        other => Err(format!(
            "volumeClaimGC.strategy: unknown strategy {other:?}"
        )),
    }
}

/// Creates the claims of `spec.volumeClaimTemplates` that `workflow`'s status lacks and records
/// them there. A claim of that name that another owner holds is an error, as upstream's.
pub async fn create(client: &Client, workflow: &mut Workflow) -> Result<(), ClaimError> {
    let spec = effective_spec(workflow);
    let templates = spec.volume_claim_templates.as_deref().unwrap_or_default();
    let name = workflow.name_any();
    let namespace = workflow.namespace().unwrap_or_default();
    let uid = workflow.metadata.uid.clone().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    let status = workflow.status.get_or_insert_default();
    for (index, template) in templates.iter().enumerate() {
        let reference = template["metadata"]["name"].as_str().unwrap_or_default();
        if reference.is_empty() {
            return Err(ClaimError::Invalid(format!(
                "volumeClaimTemplates[{index}].metadata.name is required"
            )));
        }
        let recorded = status
            .persistent_volume_claims
            .iter()
            .any(|v| v["name"] == reference);
        if recorded {
            continue;
        }
        let claim_name = format!("{name}-{reference}");
        let mut claim = template.clone();
        claim["apiVersion"] = "v1".into();
        claim["kind"] = "PersistentVolumeClaim".into();
        let metadata = &mut claim["metadata"];
        metadata["name"] = claim_name.clone().into();
        metadata["namespace"] = namespace.clone().into();
        if !metadata["labels"].is_object() {
            metadata["labels"] = json!({});
        }
        metadata["labels"][labels::WORKFLOW] = name.clone().into();
        metadata["ownerReferences"] = json!([{
            "apiVersion": ferry_types::API_VERSION,
            "kind": "Workflow",
            "name": name,
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }]);
        let claim: PersistentVolumeClaim = serde_json::from_value(claim)
            .map_err(|err| ClaimError::Invalid(format!("volumeClaimTemplates[{index}]: {err}")))?;
        let api_error = |source| ClaimError::Api {
            name: claim_name.clone(),
            source,
        };
        match api.create(&PostParams::default(), &claim).await {
            Ok(_) => info!(workflow = %name, %namespace, claim = %claim_name, "created claim"),
            Err(kube::Error::Api(err)) if err.is_already_exists() => {
                let existing = api.get(&claim_name).await.map_err(api_error)?;
                let ours = existing.owner_references().iter().any(|o| o.uid == uid);
                if !ours {
                    return Err(ClaimError::Invalid(format!(
                        "{claim_name} pvc already exists with different ownerreference"
                    )));
                }
            }
            // Refused as written (invalid, forbidden): the workflow cannot run.
            Err(kube::Error::Api(err)) if matches!(err.code, 400 | 403 | 422) => {
                return Err(ClaimError::Invalid(err.message));
            }
            Err(err) => return Err(api_error(err)),
        }
        status.persistent_volume_claims.push(json!({
            "name": reference,
            "persistentVolumeClaim": {"claimName": claim_name},
        }));
    }
    Ok(())
}

/// The workflow's spec with the one its `workflowTemplateRef` names (stored in the status)
/// joined under it.
pub fn effective_spec(workflow: &Workflow) -> WorkflowSpec {
    let stored = workflow
        .status
        .as_ref()
        .and_then(|s| s.stored_workflow_template_spec.as_ref());
    match stored {
        Some(stored) => join(&workflow.spec, stored).unwrap_or_else(|_| workflow.spec.clone()),
        None => workflow.spec.clone(),
    }
}

/// Deletes the recorded claims of `workflow`, finished with `phase`, if `volumeClaimGC` says
/// so, and keeps in `claims` those that could not be deleted.
pub async fn delete(client: &Client, workflow: &Workflow, phase: Phase, claims: &mut Vec<Value>) {
    if claims.is_empty() {
        return;
    }
    let namespace = workflow.namespace().unwrap_or_default();
    let namespace = namespace.as_str();
    let spec = effective_spec(workflow);
    let strategy = match gc_strategy(&spec) {
        Ok(strategy) => strategy,
        Err(message) => return warn!("{message}"),
    };
    // OnWorkflowSuccess keeps a failed workflow's claims for a retry; deleting the workflow
    // deletes them (they are owned).
    if strategy == "OnWorkflowSuccess" && phase != Phase::Succeeded {
        return;
    }
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let mut kept = Vec::new();
    for volume in claims.drain(..) {
        let name = volume["persistentVolumeClaim"]["claimName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Err(err) = delete_one(&api, &name).await {
            warn!(%namespace, claim = %name, "deleting claim: {err}");
            kept.push(volume);
        } else {
            info!(%namespace, claim = %name, "deleted claim");
        }
    }
    *claims = kept;
}

async fn delete_one(api: &Api<PersistentVolumeClaim>, name: &str) -> Result<(), kube::Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(err)) if err.is_not_found() => return Ok(()),
        Err(err) => return Err(err),
    }
    let Some(claim) = api.get_opt(name).await? else {
        return Ok(());
    };
    let finalizers = claim.metadata.finalizers.unwrap_or_default();
    if finalizers.iter().any(|f| f == PROTECTION) {
        let rest: Vec<&String> = finalizers.iter().filter(|f| *f != PROTECTION).collect();
        // The resourceVersion makes it a precondition: others' finalizers are never lost.
        let patch = json!({"metadata": {
            "finalizers": rest,
            "resourceVersion": claim.metadata.resource_version,
        }});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(())
}
