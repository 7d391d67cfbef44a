//! A resource template's `flags`, upstream's extra `kubectl` arguments. ferry acts without
//! kubectl, so it takes the ones that say which object: the object as `TYPE NAME` or
//! `TYPE/NAME` (a `patch` whose manifest is a JSON patch or has no `kind`, as upstream then
//! leaves `-f` out) and `-n`/`--namespace`. Any other flag is refused by name.

use kube::api::ApiResource;
use kube::discovery::{ApiCapabilities, Discovery, Scope as ApiScope};

/// What the flags say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `TYPE` and `NAME`, e.g. `("pod", "my-pod")`.
    pub object: Option<(String, String)>,
    pub namespace: Option<String>,
}

pub fn parse(flags: &[String]) -> Result<Flags, String> {
    let mut out = Flags::default();
    let mut positional = Vec::new();
    let mut args = flags.iter();
    while let Some(arg) = args.next() {
        if let Some(namespace) = arg.strip_prefix("--namespace=") {
            out.namespace = Some(namespace.to_string());
        } else if arg == "-n" || arg == "--namespace" {
            let namespace = args
                .next()
                .ok_or_else(|| format!("resource.flags: {arg:?} needs a namespace"))?;
            out.namespace = Some(namespace.clone());
        } else if arg.starts_with('-') {
            return Err(format!(
                "resource.flags: kubectl's {arg:?} is not taken (ferry acts without kubectl; it takes the object as TYPE NAME or TYPE/NAME, and -n/--namespace)"
            ));
        } else {
            positional.push(arg.clone());
        }
    }
    out.object = match positional.as_slice() {
        [] => None,
        [both] => match both.split_once('/') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {
                Some((kind.into(), name.into()))
            }
            _ => {
                return Err(format!(
                    "resource.flags: {both:?} names no object (TYPE/NAME or TYPE NAME)"
                ));
            }
        },
        [kind, name] => Some((kind.clone(), name.clone())),
        more => {
            return Err(format!(
                "resource.flags: {more:?}: one object, as TYPE NAME or TYPE/NAME"
            ));
        }
    };
    Ok(out)
}

/// The API resource kubectl would take `kind` for: a resource's plural or singular name or its
/// kind, any case, optionally `.group` or `.version.group` qualified (short names like `cm`
/// are not known). `None` when the server has no such type.
pub fn resolve(discovery: &Discovery, kind: &str) -> Option<(ApiResource, ApiCapabilities)> {
    let kind = kind.to_lowercase();
    let (name, qualifier) = match kind.split_once('.') {
        Some((name, qualifier)) => (name, Some(qualifier)),
        None => (kind.as_str(), None),
    };
    discovery
        .groups()
        .flat_map(|group| group.recommended_resources())
        .find(|(resource, _)| {
            let named = resource.plural == name || resource.kind.to_lowercase() == name;
            let qualified = match qualifier {
                None => true,
                Some(q) => {
                    q == resource.group || q == format!("{}.{}", resource.version, resource.group)
                }
            };
            named && qualified
        })
}

/// Whether objects of `capabilities` live in a namespace.
pub fn namespaced(capabilities: &ApiCapabilities) -> bool {
    matches!(capabilities.scope, ApiScope::Namespaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Result<Flags, String> {
        parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_object_and_namespace_are_taken_and_other_flags_refused() {
        assert_eq!(
            flags(&["pod", "p1", "-n", "ns"]).unwrap(),
            Flags {
                object: Some(("pod".into(), "p1".into())),
                namespace: Some("ns".into())
            }
        );
        assert_eq!(
            flags(&["--namespace=x", "configmap/c"]).unwrap().object,
            Some(("configmap".into(), "c".into()))
        );
        assert_eq!(flags(&[]).unwrap(), Flags::default());
        assert!(
            flags(&["--overwrite"])
                .unwrap_err()
                .contains("kubectl's \"--overwrite\" is not taken")
        );
        assert!(flags(&["a", "b", "c"]).is_err());
        assert!(flags(&["pod/"]).is_err());
        assert!(flags(&["-n"]).unwrap_err().contains("needs a namespace"));
    }
}
