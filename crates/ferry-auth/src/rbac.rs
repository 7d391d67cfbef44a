//! Argo CD's RBAC: who may do what to which object.
//!
//! A request is `(subject, resource, action, object)`, e.g.
//! `(alice, applications, sync, team-a/guestbook)`. Policies are Casbin CSV lines as Argo CD
//! writes them:
//!
//! ```text
//! p, <subject>, <resource>, <action>, <object>[, allow|deny]
//! g, <user-or-group>, <role>
//! ```
//!
//! Resources, actions and objects are patterns (globs by default, regular expressions with
//! `policy.matchMode: regex`); roles inherit from roles transitively; the built-in policy defines
//! `role:readonly` and `role:admin` and makes the local `admin` user an admin. The policy comes
//! from the `argocd-rbac-cm` ConfigMap ([`Policy::from_config_map_data`]), and AppProject roles
//! add `proj:<project>:<role>` subjects that only ever reach objects of their own project
//! ([`Policy::with_projects`]).
//!
//! Where ferry is stricter than Argo CD, on purpose:
//! - a deny wins over every allow of the request, whichever of the subject, its groups or the
//!   default role it comes from (Argo CD checks the default role, the user and each group
//!   separately, so a deny on a group does not stop an allow from the default role);
//! - malformed lines, unknown effects and invalid patterns are errors naming the line, rather
//!   than rules that silently never match.
//!
//! And where it is more useful: the built-in roles are always matched as globs, so they keep
//! working with `policy.matchMode: regex` (in Argo CD they do not, argoproj/argo-cd#13127).

mod builtin;
mod config_map;
mod line;
mod pattern;
mod policy;
mod project;
pub mod resources;
mod rule;

pub use config_map::{
    CONFIG_MAP_NAME, DEFAULT_SCOPES, MATCH_MODE_KEY, POLICY_CSV_KEY, POLICY_DEFAULT_KEY, SCOPES_KEY,
};
pub use line::Effect;
pub use pattern::MatchMode;
pub use policy::{Policy, PolicyError, Subject};
pub use project::RejectedProjectPolicy;
pub use rule::{Decision, Matched, Origin, Rule};
