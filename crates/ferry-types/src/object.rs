//! What the root objects (`Application`, `AppProject`) share: the `kube::Resource` glue and the
//! `apiVersion`/`kind` check.
//!
//! Written by hand rather than with `#[derive(CustomResource)]`: the derive's root struct holds only
//! `metadata`, `spec` and `status`, so Argo CD's top-level `operation` would be dropped on every
//! read-modify-write of an Application.

use crate::source::UnknownFields;

pub const GROUP: &str = "argoproj.io";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// Refuses a document whose `apiVersion` or `kind` says it is something else.
pub(crate) fn check_type(
    api_version: Option<&str>,
    kind: Option<&str>,
    expected_kind: &str,
) -> Result<(), String> {
    if let Some(found) = api_version.filter(|v| *v != API_VERSION) {
        return Err(format!(
            "expected apiVersion {API_VERSION} for a {expected_kind}, found {found:?}"
        ));
    }
    if let Some(found) = kind.filter(|k| *k != expected_kind) {
        return Err(format!("expected kind {expected_kind}, found {found:?}"));
    }
    Ok(())
}

/// Implements `kube::Resource`, `HasSpec` and `HasStatus` for a namespaced argoproj.io kind with
/// `metadata`, `spec` and `status: Option<_>` fields.
macro_rules! argo_resource {
    ($ty:ty, kind: $kind:literal, plural: $plural:literal, spec: $spec:ty, status: $status:ty) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                $crate::object::GROUP.into()
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                $crate::object::VERSION.into()
            }
            fn api_version(_: &()) -> std::borrow::Cow<'_, str> {
                $crate::object::API_VERSION.into()
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(
                &mut self,
            ) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }

        impl kube::core::object::HasSpec for $ty {
            type Spec = $spec;
            fn spec(&self) -> &$spec {
                &self.spec
            }
            fn spec_mut(&mut self) -> &mut $spec {
                &mut self.spec
            }
        }

        impl kube::core::object::HasStatus for $ty {
            type Status = $status;
            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn status_mut(&mut self) -> &mut Option<$status> {
                &mut self.status
            }
        }
    };
}

pub(crate) use argo_resource;

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

pub(crate) fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Appends `prefix` + name for each unknown field.
pub(crate) fn push_unknown(out: &mut Vec<String>, prefix: &str, fields: &UnknownFields) {
    out.extend(fields.keys().map(|k| format!("{prefix}{k}")));
}
