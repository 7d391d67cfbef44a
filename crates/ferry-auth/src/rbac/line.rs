//! One line of a Casbin policy CSV, read as Argo CD reads it: comma-separated fields, optionally
//! double-quoted (so a regular expression may contain commas), spaces around fields ignored,
//! blank lines and `#` comments skipped.

use std::fmt;

/// What a matching `p` rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        })
    }
}

/// A parsed policy line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PolicyLine {
    /// `p, subject, resource, action, object[, effect]`
    Permission {
        subject: String,
        resource: String,
        action: String,
        object: String,
        effect: Effect,
        /// Whether the line spelled the effect out (project roles must).
        explicit_effect: bool,
    },
    /// `g, member, role`
    Grouping { member: String, role: String },
}

/// The line's rule, `None` for a blank line or a comment, or why it cannot be used.
pub(crate) fn parse_line(line: &str) -> Result<Option<PolicyLine>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let fields = split_fields(line)?;
    if let Some(index) = fields.iter().position(String::is_empty) {
        return Err(format!("field {} is empty", index + 1));
    }
    match fields[0].as_str() {
        "p" => permission(fields).map(Some),
        "g" => grouping(fields).map(Some),
        other => Err(format!(
            "a policy line starts with `p` (a permission) or `g` (a role assignment), not {other:?}"
        )),
    }
}

fn permission(fields: Vec<String>) -> Result<PolicyLine, String> {
    let (subject, resource, action, object, effect) = match fields.as_slice() {
        [_, subject, resource, action, object] => (subject, resource, action, object, None),
        [_, subject, resource, action, object, effect] => {
            (subject, resource, action, object, Some(effect.as_str()))
        }
        _ => {
            return Err(format!(
                "`p` lines have 5 or 6 fields (p, subject, resource, action, object[, effect]), \
                 this one has {}",
                fields.len()
            ));
        }
    };
    Ok(PolicyLine::Permission {
        subject: subject.clone(),
        resource: resource.clone(),
        action: action.clone(),
        object: object.clone(),
        effect: match effect {
            None | Some("allow") => Effect::Allow,
            Some("deny") => Effect::Deny,
            Some(other) => return Err(format!("the effect must be allow or deny, not {other:?}")),
        },
        explicit_effect: effect.is_some(),
    })
}

fn grouping(fields: Vec<String>) -> Result<PolicyLine, String> {
    match <[String; 3]>::try_from(fields) {
        Ok([_, member, role]) => Ok(PolicyLine::Grouping { member, role }),
        Err(fields) => Err(format!(
            "`g` lines have 3 fields (g, user-or-group, role), this one has {}",
            fields.len()
        )),
    }
}

/// Splits a CSV line; a field that starts with `"` ends at the matching `"` (`""` inside is a
/// quote) and must be followed by a comma or the end of the line.
fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut rest = line;
    loop {
        let trimmed = rest.trim_start();
        let (field, after) = match trimmed.strip_prefix('"') {
            Some(quoted) => quoted_field(quoted)?,
            None => {
                let end = trimmed.find(',').unwrap_or(trimmed.len());
                let field = trimmed[..end].trim_end();
                if field.contains('"') {
                    return Err(format!("stray quote in field {}", fields.len() + 1));
                }
                (field.to_string(), &trimmed[end..])
            }
        };
        fields.push(field);
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None => return Ok(fields),
        }
    }
}

/// The text of a quoted field (after its opening quote) and what follows its closing quote.
fn quoted_field(text: &str) -> Result<(String, &str), String> {
    let mut field = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            field.push(c);
            continue;
        }
        if text[i + 1..].starts_with('"') {
            field.push('"');
            chars.next();
            continue;
        }
        let after = text[i + 1..].trim_start();
        if !after.is_empty() && !after.starts_with(',') {
            return Err("text after a closing quote".to_string());
        }
        return Ok((field, after));
    }
    Err("a quoted field is not closed".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permission(subject: &str, object: &str, effect: Effect, explicit: bool) -> PolicyLine {
        PolicyLine::Permission {
            subject: subject.into(),
            resource: "applications".into(),
            action: "get".into(),
            object: object.into(),
            effect,
            explicit_effect: explicit,
        }
    }

    #[test]
    fn permissions_with_and_without_effect() {
        assert_eq!(
            parse_line("p, role:dev, applications, get, team-a/*, allow").unwrap(),
            Some(permission("role:dev", "team-a/*", Effect::Allow, true))
        );
        assert_eq!(
            parse_line("  p,role:dev ,applications,get , team-a/*,deny  ").unwrap(),
            Some(permission("role:dev", "team-a/*", Effect::Deny, true))
        );
        assert_eq!(
            parse_line("p, role:dev, applications, get, team-a/*").unwrap(),
            Some(permission("role:dev", "team-a/*", Effect::Allow, false))
        );
    }

    #[test]
    fn groupings() {
        assert_eq!(
            parse_line("g, my-org:team-a, role:dev").unwrap(),
            Some(PolicyLine::Grouping {
                member: "my-org:team-a".into(),
                role: "role:dev".into()
            })
        );
    }

    #[test]
    fn quoted_fields_may_hold_commas_and_quotes() {
        assert_eq!(
            parse_line(r#"p, role:dev, applications, get, "^team-[a-z]{1,3}/.*$", allow"#).unwrap(),
            Some(permission(
                "role:dev",
                "^team-[a-z]{1,3}/.*$",
                Effect::Allow,
                true
            ))
        );
        assert_eq!(
            parse_line(r#"g, "Org ""Ops""", role:dev"#).unwrap(),
            Some(PolicyLine::Grouping {
                member: r#"Org "Ops""#.into(),
                role: "role:dev".into()
            })
        );
    }

    #[test]
    fn blank_lines_and_comments_are_skipped() {
        assert_eq!(parse_line("").unwrap(), None);
        assert_eq!(parse_line("   ").unwrap(), None);
        assert_eq!(
            parse_line("  # p, role:x, applications, get, */*").unwrap(),
            None
        );
    }

    #[test]
    fn malformed_lines_say_why() {
        for (line, reason) in [
            (
                "p, role:dev, applications, get",
                "`p` lines have 5 or 6 fields (p, subject, resource, action, object[, effect]), this one has 4",
            ),
            (
                "p, role:dev, applications, get, */*, allow, extra",
                "`p` lines have 5 or 6 fields (p, subject, resource, action, object[, effect]), this one has 7",
            ),
            (
                "p, role:dev, applications, get, */*, Allow",
                "the effect must be allow or deny, not \"Allow\"",
            ),
            (
                "g, alice",
                "`g` lines have 3 fields (g, user-or-group, role), this one has 2",
            ),
            (
                "g2, alice, role:dev",
                "a policy line starts with `p` (a permission) or `g` (a role assignment), not \"g2\"",
            ),
            (
                "p, role:dev, applications, , */*, allow",
                "field 4 is empty",
            ),
            (
                "p, role:dev, applications, get, \"*/*, allow",
                "a quoted field is not closed",
            ),
            (
                "p, role:dev, applications, get, \"*/*\"x, allow",
                "text after a closing quote",
            ),
            (
                "p, role:dev, appli\"cations, get, */*, allow",
                "stray quote in field 3",
            ),
        ] {
            assert_eq!(parse_line(line), Err(reason.to_string()), "{line}");
        }
    }
}
