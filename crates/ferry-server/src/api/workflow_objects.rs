//! What Argo Workflows' template and CronWorkflow services do alike to their kind: list, get,
//! create and update (each checked first as `ferry wf template create` / `ferry cron create`
//! check files, with the namespace's and the cluster's templates for references), delete and
//! lint, under RBAC on `<namespace>/<name>` (`<name>` for cluster-scoped kinds).

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use ferry_workflow::lint;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::authn::Caller;
use super::authz::{authorize, visible};
use super::error::ApiError;
use super::query::Query;
use super::state::AppState;
use super::workflows::{list_params, object_of};
use crate::rbac::resources::{CREATE, DELETE, GET, UPDATE};

/// What a route's path names: the namespace (namespaced kinds) and the object (item routes).
#[derive(Debug, Default, Deserialize)]
struct At {
    namespace: Option<String>,
    name: Option<String>,
}

impl At {
    fn of(path: Option<Path<At>>) -> Self {
        path.map(|Path(at)| at).unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
}

/// Builds one kind's API for the namespace a path names (`None` for cluster-scoped kinds).
pub type KindAt<K> = fn(&AppState, Option<String>) -> Kind<K>;

/// The routes of one kind: list, create and `lint` under `collection` (which holds
/// `{namespace}` for namespaced kinds), get, update and delete under `collection/{name}`.
pub fn routes<K>(collection: &str, kind: KindAt<K>) -> Router<AppState>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let list = move |State(state): State<AppState>,
                     Extension(caller): Extension<Caller>,
                     path: Option<Path<At>>,
                     RawQuery(query): RawQuery| async move {
        let at = At::of(path);
        kind(&state, at.namespace)
            .list(&state, &caller, query.as_deref())
            .await
    };
    let create = move |State(state): State<AppState>,
                       Extension(caller): Extension<Caller>,
                       path: Option<Path<At>>,
                       Json(body): Json<Value>| async move {
        let at = At::of(path);
        kind(&state, at.namespace)
            .create(&state, &caller, &body)
            .await
    };
    let lint = move |State(state): State<AppState>,
                     Extension(caller): Extension<Caller>,
                     path: Option<Path<At>>,
                     Json(body): Json<Value>| async move {
        let at = At::of(path);
        kind(&state, at.namespace)
            .lint(&state, &caller, &body)
            .await
    };
    let get_one = move |State(state): State<AppState>,
                        Extension(caller): Extension<Caller>,
                        Path(at): Path<At>| async move {
        kind(&state, at.namespace.clone())
            .get(&state, &caller, at.name())
            .await
    };
    let update = move |State(state): State<AppState>,
                       Extension(caller): Extension<Caller>,
                       Path(at): Path<At>,
                       Json(body): Json<Value>| async move {
        kind(&state, at.namespace.clone())
            .update(&state, &caller, at.name(), &body)
            .await
    };
    let delete = move |State(state): State<AppState>,
                       Extension(caller): Extension<Caller>,
                       Path(at): Path<At>| async move {
        kind(&state, at.namespace.clone())
            .delete(&state, &caller, at.name())
            .await
    };
    Router::new()
        .route(collection, get(list).post(create))
        .route(&format!("{collection}/lint"), post(lint))
        .route(
            &format!("{collection}/{{name}}"),
            get(get_one).put(update).delete(delete),
        )
}

/// One kind's API: its Kubernetes API (in one namespace, or cluster-wide), its RBAC resource
/// and the field of request bodies that holds an object.
pub struct Kind<K> {
    pub api: Api<K>,
    pub namespace: Option<String>,
    pub resource: &'static str,
    pub field: &'static str,
}

impl<K> Kind<K>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    fn object(&self, name: &str) -> String {
        match &self.namespace {
            Some(namespace) => format!("{namespace}/{name}"),
            None => name.to_string(),
        }
    }

    fn context(&self, doing: &str) -> String {
        format!("{doing} the {}", K::kind(&()))
    }

    /// The object of a body, in this kind's namespace, checked by `lint`.
    async fn checked(&self, state: &AppState, body: &Value) -> Result<K, ApiError> {
        let object: K = object_of(body, self.field, self.namespace.as_deref())?;
        let document = serde_json::to_value(&object)
            .map_err(|err| ApiError::internal("encoding the object", &err))?;
        // Cluster-scoped templates are checked from the server's namespace.
        let namespace = self.namespace.as_deref().unwrap_or(state.namespace());
        let files = vec![(String::from("request"), vec![document])];
        let error = lint::first_error(&state.client(), namespace, files)
            .await
            .map_err(|err| match err.downcast_ref::<kube::Error>() {
                Some(err) => ApiError::kube("reading the templates referenced", err),
                None => ApiError::internal("linting", err.as_ref()),
            })?;
        match error {
            Some(message) => Err(ApiError::invalid_argument(message)),
            None => Ok(object),
        }
    }

    pub async fn list(
        &self,
        state: &AppState,
        caller: &Caller,
        query: Option<&str>,
    ) -> Result<Json<Value>, ApiError> {
        let params = list_params(&Query::parse(query))?;
        let listed = self
            .api
            .list(&params)
            .await
            .map_err(|err| ApiError::kube(&self.context("listing"), &err))?;
        let settings = state.settings();
        let mut items = Vec::new();
        for object in listed.items {
            let name = object.meta().name.as_deref().unwrap_or_default();
            if visible(&settings, caller, self.resource, GET, &self.object(name))? {
                items.push(object);
            }
        }
        Ok(Json(json!({"metadata": listed.metadata, "items": items})))
    }

    pub async fn get(
        &self,
        state: &AppState,
        caller: &Caller,
        name: &str,
    ) -> Result<Json<K>, ApiError> {
        authorize(
            &state.settings(),
            caller,
            self.resource,
            GET,
            &self.object(name),
        )?;
        self.api
            .get(name)
            .await
            .map(Json)
            .map_err(|err| ApiError::kube(&self.context("reading"), &err))
    }

    pub async fn create(
        &self,
        state: &AppState,
        caller: &Caller,
        body: &Value,
    ) -> Result<Json<K>, ApiError> {
        let object: K = object_of(body, self.field, self.namespace.as_deref())?;
        let name = object.meta().name.clone().unwrap_or_default();
        authorize(
            &state.settings(),
            caller,
            self.resource,
            CREATE,
            &self.object(&name),
        )?;
        let object = self.checked(state, body).await?;
        let created = self
            .api
            .create(&PostParams::default(), &object)
            .await
            .map_err(|err| ApiError::kube(&self.context("creating"), &err))?;
        let message = format!("created {}", K::kind(&()));
        state
            .audit()
            .record(caller, &created, "ResourceCreated", &message)
            .await;
        Ok(Json(created))
    }

    /// Replaces `name` with the body's object, at the resourceVersion it carries.
    pub async fn update(
        &self,
        state: &AppState,
        caller: &Caller,
        name: &str,
        body: &Value,
    ) -> Result<Json<K>, ApiError> {
        authorize(
            &state.settings(),
            caller,
            self.resource,
            UPDATE,
            &self.object(name),
        )?;
        let mut object = self.checked(state, body).await?;
        object.meta_mut().name = Some(name.to_string());
        let written = self
            .api
            .replace(name, &PostParams::default(), &object)
            .await
            .map_err(|err| ApiError::kube(&self.context("writing"), &err))?;
        let message = format!("updated {}", K::kind(&()));
        state
            .audit()
            .record(caller, &written, "ResourceUpdated", &message)
            .await;
        Ok(Json(written))
    }

    pub async fn delete(
        &self,
        state: &AppState,
        caller: &Caller,
        name: &str,
    ) -> Result<Json<Value>, ApiError> {
        authorize(
            &state.settings(),
            caller,
            self.resource,
            DELETE,
            &self.object(name),
        )?;
        let object = self
            .api
            .get(name)
            .await
            .map_err(|err| ApiError::kube(&self.context("reading"), &err))?;
        self.api
            .delete(name, &DeleteParams::default())
            .await
            .map_err(|err| ApiError::kube(&self.context("deleting"), &err))?;
        let message = format!("deleted {}", K::kind(&()));
        state
            .audit()
            .record(caller, &object, "ResourceDeleted", &message)
            .await;
        Ok(Json(json!({})))
    }

    /// The object back when it would be created, an InvalidArgument naming the field when not.
    pub async fn lint(
        &self,
        state: &AppState,
        caller: &Caller,
        body: &Value,
    ) -> Result<Json<K>, ApiError> {
        let object: K = object_of(body, self.field, self.namespace.as_deref())?;
        let name = object.meta().name.clone().unwrap_or_default();
        authorize(
            &state.settings(),
            caller,
            self.resource,
            GET,
            &self.object(&name),
        )?;
        self.checked(state, body).await.map(Json)
    }
}
