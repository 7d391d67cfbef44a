//! Installing ferry's CustomResourceDefinitions (ferry-types bundles them) and waiting until
//! they are served.

use std::time::Duration;

use ferry_types::{crds, workflow_crds};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};

/// How long a CRD may take to be served after it was created.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the CRDs could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("reading the bundled CRDs: {0}")]
    Bundled(#[from] serde_yaml::Error),
    #[error("CustomResourceDefinition {name}: {source}")]
    Api {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("CustomResourceDefinition {name}: waiting for it to be established: {source}")]
    Wait {
        name: String,
        #[source]
        source: kube::runtime::wait::Error,
    },
    #[error("CustomResourceDefinition {name} was not established within {ESTABLISH_TIMEOUT:?}")]
    NotEstablished { name: String },
}

/// Installs the CRDs that are absent (server-side apply as `field_manager`) and waits until
/// each is established, including ones that exist but were created a moment ago by another
/// process. Returns the names it installed. Without permission to read CRDs (users limited to
/// one namespace) they are taken to be installed by an administrator.
pub async fn install_crds(
    client: &kube::Client,
    field_manager: &str,
) -> Result<Vec<String>, CrdError> {
    install(client, field_manager, crds()?).await
}

/// [`install_crds`] for Argo Workflows' CRDs.
pub async fn install_workflow_crds(
    client: &kube::Client,
    field_manager: &str,
) -> Result<Vec<String>, CrdError> {
    install(client, field_manager, workflow_crds()?).await
}

async fn install(
    client: &kube::Client,
    field_manager: &str,
    crds: Vec<CustomResourceDefinition>,
) -> Result<Vec<String>, CrdError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut installed = Vec::new();
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let api_error = |source| CrdError::Api {
            name: name.clone(),
            source,
        };
        match api.get_opt(&name).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                let params = PatchParams::apply(field_manager).force();
                api.patch(&name, &params, &Patch::Apply(&crd))
                    .await
                    .map_err(api_error)?;
                installed.push(name.clone());
            }
            Err(kube::Error::Api(status)) if status.is_forbidden() => continue,
            Err(err) => return Err(api_error(err)),
        }
        let established = await_condition(api.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(ESTABLISH_TIMEOUT, established)
            .await
            .map_err(|_| CrdError::NotEstablished { name: name.clone() })?
            .map_err(|source| CrdError::Wait {
                name: name.clone(),
                source,
            })?;
    }
    Ok(installed)
}
