//! Answers encoded as protobuf. Converting JSON into a message through prost-reflect is slow
//! (about 0.1 ms per app, so 1,000 apps made a gRPC list cost 30 times its REST call), and a list
//! converts the same apps on every call; so each Kubernetes object (a message with an
//! `ObjectMeta`) is encoded once per uid and resourceVersion — which name one content — and kept,
//! and an answer is spliced together from those bytes and the encoding of its other fields.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::json::to_message;

const OBJECT_META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta";
/// What the kept encodings may weigh together.
const CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// Encodes answers, keeping the encodings of the Kubernetes objects in them.
#[derive(Clone)]
pub struct Encoder {
    objects: moka::sync::Cache<ObjectKey, Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ObjectKey {
    message: String,
    uid: String,
    resource_version: String,
}

/// An object's metadata, as far as the kept encodings need it.
#[derive(Deserialize)]
struct Metadata {
    uid: Option<String>,
    #[serde(rename = "resourceVersion")]
    resource_version: Option<String>,
}

/// Reads an object's fields up to `metadata` and stops there (`spec` and `status`, most of an
/// object, come after it as ferry writes them: not scanned).
struct MetadataFirst<'a>(&'a mut Option<Metadata>);

impl<'de> serde::de::Visitor<'de> for MetadataFirst<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a Kubernetes object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<&str>()? {
            if key == "metadata" {
                *self.0 = Some(map.next_value()?);
                return Ok(());
            }
            map.next_value::<serde::de::IgnoredAny>()?;
        }
        Ok(())
    }
}

/// The metadata of an object. serde_json reports the fields left unread after `metadata` as an
/// error once the visitor returns: by then the metadata is read, so that error is no concern.
fn metadata(json: &RawValue) -> Option<Metadata> {
    let mut found = None;
    let mut reader = serde_json::Deserializer::from_str(json.get());
    let _ = serde::Deserializer::deserialize_map(&mut reader, MetadataFirst(&mut found));
    found
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        Self {
            objects: moka::sync::Cache::builder()
                .max_capacity(CACHE_BYTES)
                .weigher(|key: &ObjectKey, bytes: &Bytes| {
                    let size = bytes.len() + key.uid.len() + key.resource_version.len();
                    u32::try_from(size).unwrap_or(u32::MAX)
                })
                .build(),
        }
    }

    /// The message `desc` of a JSON answer, encoded.
    pub fn encode(&self, desc: &MessageDescriptor, json: &RawValue) -> Result<Bytes, String> {
        if is_object(desc) {
            return self.object(desc, json);
        }
        let Ok(fields) = fields_of(json) else {
            return encode_whole(desc, json);
        };
        let mut other = Map::new();
        let mut spliced = BytesMut::new();
        for (name, raw) in fields {
            let field = desc
                .get_field_by_json_name(&name)
                .or_else(|| desc.get_field_by_name(&name));
            match field.as_ref().and_then(object_message) {
                Some(object) if raw.get() != "null" => {
                    let field = field.expect("an object field");
                    self.splice(&mut spliced, &field, &object, raw)?;
                }
                _ => {
                    let value = serde_json::from_str(raw.get()).map_err(|err| err.to_string())?;
                    other.insert(name, value);
                }
            }
        }
        let head = to_message(desc, Value::Object(other))?.encode_to_vec();
        let mut answer = BytesMut::with_capacity(head.len() + spliced.len());
        answer.put_slice(&head);
        answer.put_slice(&spliced);
        Ok(answer.freeze())
    }

    /// Appends `raw` (an object, or a list of them) as field `field`: protobuf reads fields in
    /// any order, and a repeated field from its items wherever they are.
    fn splice(
        &self,
        out: &mut BytesMut,
        field: &FieldDescriptor,
        object: &MessageDescriptor,
        raw: &RawValue,
    ) -> Result<(), String> {
        let items: Vec<&RawValue> = if field.is_list() {
            serde_json::from_str(raw.get()).map_err(|err| format!("{}: {err}", field.name()))?
        } else {
            vec![raw]
        };
        for item in items {
            let bytes = self.object(object, item)?;
            encode_key(field.number(), WireType::LengthDelimited, out);
            encode_varint(bytes.len() as u64, out);
            out.put_slice(&bytes);
        }
        Ok(())
    }

    /// One Kubernetes object, encoded, from the kept encodings when it has been seen.
    fn object(&self, desc: &MessageDescriptor, json: &RawValue) -> Result<Bytes, String> {
        let key = metadata(json).and_then(|meta| {
            Some(ObjectKey {
                message: desc.full_name().to_string(),
                uid: meta.uid.filter(|uid| !uid.is_empty())?,
                resource_version: meta
                    .resource_version
                    .filter(|version| !version.is_empty())?,
            })
        });
        let Some(key) = key else {
            return encode_whole(desc, json);
        };
        if let Some(bytes) = self.objects.get(&key) {
            return Ok(bytes);
        }
        let bytes = encode_whole(desc, json)?;
        self.objects.insert(key, bytes.clone());
        Ok(bytes)
    }
}

/// A JSON object's fields.
fn fields_of(json: &RawValue) -> Result<Vec<(String, &RawValue)>, serde_json::Error> {
    let map: std::collections::BTreeMap<String, &RawValue> = serde_json::from_str(json.get())?;
    Ok(map.into_iter().collect())
}

fn encode_whole(desc: &MessageDescriptor, json: &RawValue) -> Result<Bytes, String> {
    let value = serde_json::from_str(json.get()).map_err(|err| err.to_string())?;
    Ok(to_message(desc, value)?.encode_to_vec().into())
}

/// Whether `desc` is a Kubernetes object: it has `metadata` of type ObjectMeta.
fn is_object(desc: &MessageDescriptor) -> bool {
    desc.get_field_by_name("metadata").is_some_and(
        |field| matches!(field.kind(), Kind::Message(meta) if meta.full_name() == OBJECT_META),
    )
}

/// The object type of a field, if it holds Kubernetes objects (not a map of them).
fn object_message(field: &FieldDescriptor) -> Option<MessageDescriptor> {
    match field.kind() {
        Kind::Message(message) if !field.is_map() && is_object(&message) => Some(message),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use prost_reflect::DynamicMessage;
    use serde_json::json;

    use super::*;
    use crate::descriptors;
    use crate::json::from_message;

    fn raw(value: &Value) -> Box<RawValue> {
        RawValue::from_string(value.to_string()).unwrap()
    }

    fn app(name: &str, version: &str, revision: &str) -> Value {
        json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": version},
            "spec": {"project": "default", "source": {"repoURL": "https://x", "targetRevision": revision}},
        })
    }

    #[test]
    fn a_spliced_list_decodes_as_the_whole_conversion() {
        let list =
            message("github.com.argoproj.argo_cd.v3.pkg.apis.application.v1alpha1.ApplicationList");
        let value = json!({
            "metadata": {"resourceVersion": "9"},
            "items": [app("a", "1", "HEAD"), app("b", "2", "main"), {"metadata": {"name": "no-uid"}}],
        });
        let encoder = Encoder::new();
        for _ in 0..2 {
            let bytes = encoder.encode(&list, &raw(&value)).unwrap();
            let decoded = DynamicMessage::decode(list.clone(), bytes).unwrap();
            assert_eq!(from_message(&decoded), value);
        }
        encoder.objects.run_pending_tasks();
        assert_eq!(encoder.objects.entry_count(), 2);
    }

    #[test]
    fn metadata_is_read_wherever_it_is_and_not_from_other_fields() {
        let read = |text: &str| {
            let json = RawValue::from_string(text.to_string()).unwrap();
            metadata(&json).map(|meta| (meta.uid, meta.resource_version))
        };
        let found = Some((Some("u".to_string()), Some("7".to_string())));
        let meta = r#""metadata": {"uid": "u", "resourceVersion": "7"}"#;
        assert_eq!(
            read(&format!(r#"{{"kind": "X", {meta}, "spec": {{}}}}"#)),
            found
        );
        assert_eq!(
            read(&format!(
                r#"{{"spec": {{"metadata": {{"uid": "no"}}}}, {meta}}}"#
            )),
            found
        );
        assert_eq!(read(r#"{"spec": {}}"#), None);
    }

    #[test]
    fn an_object_is_encoded_again_when_its_resource_version_changes() {
        let desc =
            message("github.com.argoproj.argo_cd.v3.pkg.apis.application.v1alpha1.Application");
        let encoder = Encoder::new();
        let first = encoder.encode(&desc, &raw(&app("a", "1", "HEAD"))).unwrap();
        let changed = app("a", "2", "main");
        let second = encoder.encode(&desc, &raw(&changed)).unwrap();
        assert_ne!(first, second);
        assert_eq!(
            from_message(&DynamicMessage::decode(desc, second).unwrap()),
            changed
        );
    }

    #[test]
    fn a_watch_event_splices_its_application() {
        let event = message(
            "github.com.argoproj.argo_cd.v3.pkg.apis.application.v1alpha1.ApplicationWatchEvent",
        );
        let value = json!({"type": "MODIFIED", "application": app("a", "3", "HEAD")});
        let bytes = Encoder::new().encode(&event, &raw(&value)).unwrap();
        assert_eq!(
            from_message(&DynamicMessage::decode(event, bytes).unwrap()),
            value
        );
    }

    fn message(name: &str) -> MessageDescriptor {
        descriptors().get_message_by_name(name).unwrap()
    }
}
