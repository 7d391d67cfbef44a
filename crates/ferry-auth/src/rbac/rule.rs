//! Rules as they were written, and decisions that say which rule made them.

use std::fmt;
use std::sync::Arc;

use super::line::Effect;

/// A `p` rule, as written, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub subject: String,
    pub resource: String,
    pub action: String,
    pub object: String,
    pub effect: Effect,
    pub origin: Origin,
}

/// Where a rule comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in policy (its line number).
    BuiltIn { line: usize },
    /// A policy CSV: an `argocd-rbac-cm` key, or the text given to [`super::Policy::parse`].
    Policy { input: Arc<str>, line: usize },
    /// `spec.roles[].policies[index]` of an AppProject; `None` for the `projects, get` rule every
    /// project role has on its own project.
    ProjectRole {
        project: String,
        role: String,
        index: Option<usize>,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p, {}, {}, {}, {}, {} ({})",
            self.subject, self.resource, self.action, self.object, self.effect, self.origin
        )
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BuiltIn { line } => write!(f, "built-in policy line {line}"),
            Self::Policy { input, line } => write!(f, "{input} line {line}"),
            Self::ProjectRole {
                project,
                role,
                index: Some(index),
            } => write!(f, "AppProject {project} role {role} policies[{index}]"),
            Self::ProjectRole {
                project,
                role,
                index: None,
            } => write!(
                f,
                "AppProject {project} role {role}: project roles may get their project"
            ),
        }
    }
}

/// A rule that matched a request, and how the requester reaches its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub rule: Arc<Rule>,
    /// From the identity that asked (the user, one of its groups or the default role) through
    /// the roles it inherits to the rule's subject.
    pub via: Vec<String>,
}

impl fmt::Display for Matched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} via {}", self.rule, self.via.join(" -> "))
    }
}

/// The outcome of [`super::Policy::enforce`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// An allow rule matched and no deny rule did.
    Allowed(Matched),
    /// A deny rule matched; it wins over any allow.
    Denied(Matched),
    /// No rule matched: everything not allowed is denied.
    NotAllowed,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed(_))
    }

    /// The rule that decided, unless nothing matched.
    pub fn matched(&self) -> Option<&Matched> {
        match self {
            Self::Allowed(matched) | Self::Denied(matched) => Some(matched),
            Self::NotAllowed => None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allowed(matched) => write!(f, "allowed by {matched}"),
            Self::Denied(matched) => write!(f, "denied by {matched}"),
            Self::NotAllowed => f.write_str("no rule allows it"),
        }
    }
}
