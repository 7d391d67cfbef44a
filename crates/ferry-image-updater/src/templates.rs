//! The Go templates users give upstream, rendered with gtmpl: the commit message
//! (`.AppName`, `.AppChanges` with `.Image`, `.OldTag`, `.NewTag`) and the write branch of
//! `git-branch: base:target` (`.AppName`, `.AppNamespace`, `.Images` with `.Name`, `.Alias`,
//! `.OldTag`, `.NewTag`, and `.SHA256` of the changes, so one set of changes gets one branch).

use std::collections::HashMap;

use gtmpl::{Context, Template, Value};
use sha2::{Digest, Sha256};

use crate::plan::Change;

/// Upstream's default commit message.
pub const DEFAULT_COMMIT_MESSAGE: &str = "build: automatic update of {{ .AppName }}

{{ range .AppChanges -}}
updates image {{ .Image }} tag '{{ .OldTag }}' to '{{ .NewTag }}'
{{ end -}}
";

/// Longest branch name upstream writes; longer ones are cut.
const MAX_BRANCH: usize = 255;

fn string(text: &str) -> Value {
    Value::String(text.to_string())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<HashMap<_, _>>(),
    )
}

fn render(template_text: &str, data: Value) -> Result<String, String> {
    let mut template = Template::default();
    template
        .parse(template_text)
        .map_err(|e| format!("template {template_text:?}: {e}"))?;
    template
        .render(&Context::from(data))
        .map_err(|e| format!("template {template_text:?}: {e}"))
}

/// The commit message for `changes` of `app`.
pub fn commit_message(template: &str, app: &str, changes: &[Change]) -> Result<String, String> {
    let app_changes = changes
        .iter()
        .map(|c| {
            map(vec![
                ("Image", string(&c.image)),
                ("OldTag", string(c.old.as_deref().unwrap_or_default())),
                ("NewTag", string(&c.new_tag())),
            ])
        })
        .collect();
    render(
        template,
        map(vec![
            ("AppName", string(app)),
            ("AppChanges", Value::Array(app_changes)),
        ]),
    )
}

/// The write branch for `changes` of app `namespace/app`.
pub fn branch_name(
    template: &str,
    namespace: &str,
    app: &str,
    changes: &[Change],
) -> Result<String, String> {
    let mut hasher = Sha256::new();
    let mut images = Vec::new();
    for c in changes {
        let old = c.old.as_deref().unwrap_or_default();
        hasher.update(format!("{}-{old}-{},", c.image, c.new_tag()));
        images.push(map(vec![
            ("Name", string(&c.image)),
            ("Alias", string(&c.alias)),
            ("OldTag", string(old)),
            ("NewTag", string(&c.new_tag())),
        ]));
    }
    let mut name = render(
        template,
        map(vec![
            ("AppNamespace", string(namespace)),
            ("AppName", string(app)),
            ("Images", Value::Array(images)),
            ("SHA256", string(&hex::encode(hasher.finalize()))),
        ]),
    )?;
    if name.len() > MAX_BRANCH {
        let mut end = MAX_BRANCH;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes() -> Vec<Change> {
        vec![
            Change {
                alias: "web".into(),
                image: "ghcr.io/org/web".into(),
                old: Some("1.0.0".into()),
                tag: Some("1.1.0".into()),
                digest: None,
            },
            Change {
                alias: "tracker".into(),
                image: "nginx".into(),
                old: Some("latest".into()),
                tag: Some("latest".into()),
                digest: Some("sha256:abc".into()),
            },
        ]
    }

    #[test]
    fn default_commit_message_lists_each_change() {
        let message = commit_message(DEFAULT_COMMIT_MESSAGE, "guestbook", &changes()).unwrap();
        assert_eq!(
            message,
            "build: automatic update of guestbook\n\n\
             updates image ghcr.io/org/web tag '1.0.0' to '1.1.0'\n\
             updates image nginx tag 'latest' to 'latest@sha256:abc'\n"
        );
    }

    #[test]
    fn branch_templates_see_the_app_and_a_hash_of_the_changes() {
        let name = branch_name(
            "image-updater-{{.AppName}}-{{.SHA256}}",
            "argocd",
            "guestbook",
            &changes(),
        )
        .unwrap();
        assert!(name.starts_with("image-updater-guestbook-"), "{name}");
        assert_eq!(name.len(), "image-updater-guestbook-".len() + 64);
        let again = branch_name("{{.SHA256}}", "argocd", "guestbook", &changes()).unwrap();
        assert!(name.ends_with(&again));
        let images = branch_name(
            "{{range .Images}}{{.Alias}}-{{.NewTag}} {{end}}",
            "argocd",
            "guestbook",
            &changes()[..1],
        )
        .unwrap();
        assert_eq!(images, "web-1.1.0 ");
        assert!(branch_name("{{.Unclosed", "a", "b", &[]).is_err());
    }
}
