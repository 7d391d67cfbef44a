//! Kubernetes' and Argo CD's JSON (what ferry's REST API speaks, as Argo CD's grpc-gateway
//! does) ↔ protobuf messages. The protobuf JSON mapping covers almost all of it, because the
//! `generated.proto` files name their fields by the Go types' JSON tags; what differs is the
//! handful of Kubernetes types with their own JSON form, converted here as a message walk meets
//! them wherever they are nested.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, SerializeOptions,
};
use serde_json::{Map, Value, json};

const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";

/// The message `desc` of a JSON document in Kubernetes' shapes. Fields the protos do not have
/// (newer than the pinned release, or ferry's own) are left out.
pub fn to_message(desc: &MessageDescriptor, value: Value) -> Result<DynamicMessage, String> {
    let value = walk(desc, value, Direction::ToProto);
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    DynamicMessage::deserialize_with_options(desc.clone(), value, &options)
        .map_err(|err| format!("{}: {err}", desc.full_name()))
}

/// A message as JSON in Kubernetes' shapes, fields under their proto (= JSON tag) names,
/// unset ones left out.
pub fn from_message(message: &DynamicMessage) -> Value {
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false)
        .skip_default_fields(true);
    let value = message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .unwrap_or(Value::Null);
    walk(
        &prost_reflect::ReflectMessage::descriptor(message),
        value,
        Direction::FromProto,
    )
}

#[derive(Clone, Copy)]
enum Direction {
    ToProto,
    FromProto,
}

fn walk(desc: &MessageDescriptor, value: Value, direction: Direction) -> Value {
    if let Some(special) = special(desc.full_name(), &value, direction) {
        return special;
    }
    let Value::Object(fields) = value else {
        return value;
    };
    fields
        .into_iter()
        .map(|(name, value)| {
            let field = desc
                .get_field_by_json_name(&name)
                .or_else(|| desc.get_field_by_name(&name));
            let value = match field {
                Some(field) => walk_field(&field, value, direction),
                None => value,
            };
            (name, value)
        })
        .filter(|(_, value)| match (value, direction) {
            (Value::Null, _) => false,
            // Go clients send every string field of the Kubernetes-style types, set or not;
            // their JSON (`omitempty`) leaves empty ones out.
            (Value::String(text), Direction::FromProto) => !text.is_empty(),
            _ => true,
        })
        .collect::<Map<_, _>>()
        .into()
}

fn walk_field(field: &FieldDescriptor, value: Value, direction: Direction) -> Value {
    let Kind::Message(message) = field.kind() else {
        return value;
    };
    if field.is_map() {
        let Kind::Message(entries) = message.map_entry_value_field().kind() else {
            return value;
        };
        let Value::Object(map) = value else {
            return value;
        };
        return map
            .into_iter()
            .map(|(key, value)| (key, walk(&entries, value, direction)))
            .collect::<Map<_, _>>()
            .into();
    }
    match value {
        Value::Array(items) if field.is_list() => items
            .into_iter()
            .map(|item| walk(&message, item, direction))
            .collect(),
        value => walk(&message, value, direction),
    }
}

/// The other form of a value of one of the types with their own JSON form.
fn special(type_name: &str, value: &Value, direction: Direction) -> Option<Value> {
    match (type_name, direction) {
        (TIME | MICRO_TIME, Direction::ToProto) => {
            let time: jiff::Timestamp = value.as_str()?.parse().ok()?;
            Some(json!({"seconds": time.as_second(), "nanos": time.subsec_nanosecond()}))
        }
        (TIME | MICRO_TIME, Direction::FromProto) => {
            let seconds = integer(value.get("seconds")).unwrap_or(0);
            let nanos = integer(value.get("nanos")).unwrap_or(0);
            // Go's zero time, which gogo's messages always carry, is JSON's null.
            if seconds == 0 && nanos == 0 {
                return Some(Value::Null);
            }
            let time = jiff::Timestamp::new(seconds, i32::try_from(nanos).ok()?).ok()?;
            // Time is RFC 3339 to the second, MicroTime to the microsecond, as in Go.
            let format = if type_name == TIME {
                "%Y-%m-%dT%H:%M:%SZ"
            } else {
                "%Y-%m-%dT%H:%M:%S.%6fZ"
            };
            Some(Value::String(time.strftime(format).to_string()))
        }
        (RAW_EXTENSION, Direction::ToProto) => {
            let raw = serde_json::to_vec(value).ok()?;
            Some(json!({"raw": STANDARD.encode(raw)}))
        }
        (FIELDS_V1, Direction::ToProto) => {
            let raw = serde_json::to_vec(value).ok()?;
            Some(json!({"Raw": STANDARD.encode(raw)}))
        }
        (RAW_EXTENSION | FIELDS_V1, Direction::FromProto) => {
            let raw = value.get("raw").or_else(|| value.get("Raw"));
            let Some(raw) = raw.and_then(Value::as_str) else {
                return Some(Value::Null);
            };
            serde_json::from_slice(&STANDARD.decode(raw).ok()?).ok()
        }
        (INT_OR_STRING, Direction::ToProto) => Some(match value {
            Value::String(text) => json!({"type": 1, "strVal": text}),
            number => json!({"type": 0, "intVal": number}),
        }),
        (INT_OR_STRING, Direction::FromProto) => Some(if integer(value.get("type")) == Some(1) {
            value.get("strVal").cloned().unwrap_or_else(|| json!(""))
        } else {
            json!(integer(value.get("intVal")).unwrap_or(0))
        }),
        (QUANTITY, Direction::ToProto) => Some(match value {
            Value::String(text) => json!({"string": text}),
            other => json!({"string": other.to_string()}),
        }),
        (QUANTITY, Direction::FromProto) => {
            Some(value.get("string").cloned().unwrap_or_else(|| json!("0")))
        }
        _ => None,
    }
}

/// An integer the JSON mapping may have written as a number or as a string.
fn integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptors;

    fn message(name: &str) -> MessageDescriptor {
        descriptors().get_message_by_name(name).unwrap()
    }

    const APP: &str = "github.com.argoproj.argo_cd.v3.pkg.apis.application.v1alpha1.Application";

    #[test]
    fn an_application_keeps_its_kubernetes_json_through_the_message() {
        let app = json!({
            "metadata": {
                "name": "guestbook",
                "namespace": "argocd",
                "creationTimestamp": "2026-12-06T19:00:01Z",
                "labels": {"team": "a"},
                "generation": 3,
            },
            "spec": {
                "project": "default",
                "source": {
                    "repoURL": "https://example.com/repo.git",
                    "path": "guestbook",
                    "targetRevision": "HEAD",
                    "helm": {"valuesObject": {"replicas": 2, "image": {"tag": "v1"}}},
                    "kustomize": {"replicas": [{"name": "web", "count": 3}, {"name": "db", "count": "2"}]},
                },
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "guestbook"},
                "syncPolicy": {"automated": {"prune": true}},
            },
            "status": {
                "sync": {"status": "Synced", "revision": "abc"},
                "reconciledAt": "2026-12-06T19:05:00Z",
                "history": [{"id": 1, "revision": "abc", "deployedAt": "2026-12-06T19:04:00Z"}],
            },
        });
        let round = from_message(&to_message(&message(APP), app.clone()).unwrap());
        assert_eq!(round, app);
    }

    #[test]
    fn fields_the_protos_do_not_have_are_left_out_and_nulls_are_unset() {
        let app = json!({
            "metadata": {"name": "a", "deletionTimestamp": null},
            "spec": {"project": "default", "fieldOfTheFuture": {"x": 1}},
        });
        let round = from_message(&to_message(&message(APP), app).unwrap());
        assert_eq!(
            round,
            json!({"metadata": {"name": "a"}, "spec": {"project": "default"}})
        );
    }

    #[test]
    fn micro_times_and_quantities_have_their_go_forms() {
        let event = message("k8s.io.api.core.v1.Event");
        let value = json!({"eventTime": "2026-12-06T19:00:01.250000Z", "count": 2});
        assert_eq!(
            from_message(&to_message(&event, value.clone()).unwrap()),
            value
        );
        let requirements = message("k8s.io.api.core.v1.ResourceRequirements");
        let value = json!({"limits": {"cpu": "500m", "memory": "1Gi"}});
        assert_eq!(
            from_message(&to_message(&requirements, value.clone()).unwrap()),
            value
        );
    }

    #[test]
    fn go_zero_values_of_kubernetes_types_are_left_out() {
        let meta = message("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta");
        let mut empty = DynamicMessage::new(meta.clone());
        let time = meta.get_field_by_name("creationTimestamp").unwrap();
        let Kind::Message(time_type) = time.kind() else {
            panic!("Time is a message");
        };
        empty.set_field(
            &time,
            prost_reflect::Value::Message(DynamicMessage::new(time_type)),
        );
        empty.set_field_by_name("name", prost_reflect::Value::String("a".into()));
        empty.set_field_by_name("namespace", prost_reflect::Value::String(String::new()));
        assert_eq!(from_message(&empty), json!({"name": "a"}));
    }

    #[test]
    fn a_wrong_type_is_an_error_naming_the_message() {
        let err = to_message(&message(APP), json!({"metadata": {"name": 5}})).unwrap_err();
        assert!(err.contains("Application"), "{err}");
    }
}
