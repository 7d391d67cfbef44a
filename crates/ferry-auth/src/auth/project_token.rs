//! Project role tokens: `sub: proj:<project>:<role>`, recorded in the AppProject's
//! `spec.roles[].jwtTokens` and `status.jwtTokensByRole.<role>.items` (Argo CD writes both). A
//! token is accepted while its project, its role and its record in the spec all exist: removing
//! the record from the spec (by hand, or by applying a project manifest that does not list it)
//! revokes the token, whatever the status still says.

use std::time::Duration;

use ferry_types::AppProject;
use ferry_types::project::{JwtToken, ProjectRole};

use super::error::AuthError;
use super::jwt::{Jwt, WireClaims};
use super::session::SessionManager;

const SUBJECT_PREFIX: &str = "proj";

impl SessionManager {
    /// A token for `role` of `project`, valid until `expires_in` has passed (a zero or absent
    /// lifetime never expires), with the id `id` (a fresh one when absent). It is only accepted
    /// once recorded with [`record_project_token`], and until the record is removed.
    pub fn issue_project_token(
        &self,
        project: &AppProject,
        role: &str,
        expires_in: Option<Duration>,
        id: Option<&str>,
    ) -> Result<(Jwt, JwtToken), AuthError> {
        let name = project.metadata.name.as_deref().unwrap_or_default();
        find_role(project, name, role)?;
        let subject = format!("{SUBJECT_PREFIX}:{name}:{role}");
        let (jwt, claims) = match id {
            Some(id) => self.sign_with_id(subject, expires_in, id.to_string())?,
            None => self.sign(subject, expires_in)?,
        };
        let record = JwtToken {
            iat: claims.iat,
            exp: claims.exp.unwrap_or(0),
            id: claims.jti,
            ..JwtToken::default()
        };
        Ok((jwt, record))
    }
}

/// Adds an issued token's record to `project`, where Argo CD keeps it; save the project to
/// make the token valid.
pub fn record_project_token(
    project: &mut AppProject,
    role: &str,
    token: JwtToken,
) -> Result<(), AuthError> {
    let name = project.metadata.name.clone().unwrap_or_default();
    let spec_role = project
        .spec
        .roles
        .iter_mut()
        .find(|r| r.name == role)
        .ok_or_else(|| unknown_role(&name, role))?;
    spec_role.jwt_tokens.push(token.clone());
    project
        .status
        .get_or_insert_with(Default::default)
        .jwt_tokens_by_role
        .entry(role.to_string())
        .or_default()
        .items
        .push(token);
    Ok(())
}

/// Removes the records of `role`'s token with id `id` or, without an id (tokens from before
/// Argo CD gave them ids), issued at `iat`, which revokes it. Returns whether there was one.
pub fn remove_project_token(
    project: &mut AppProject,
    role: &str,
    iat: i64,
    id: Option<&str>,
) -> Result<bool, AuthError> {
    let name = project.metadata.name.clone().unwrap_or_default();
    let is_it = |token: &JwtToken| match id {
        Some(id) => token.id == id,
        None => token.iat == iat,
    };
    let spec_role = project
        .spec
        .roles
        .iter_mut()
        .find(|r| r.name == role)
        .ok_or_else(|| unknown_role(&name, role))?;
    let before = spec_role.jwt_tokens.len();
    spec_role.jwt_tokens.retain(|token| !is_it(token));
    let mut removed = spec_role.jwt_tokens.len() != before;
    if let Some(tokens) = project
        .status
        .as_mut()
        .and_then(|status| status.jwt_tokens_by_role.get_mut(role))
    {
        let before = tokens.items.len();
        tokens.items.retain(|token| !is_it(token));
        removed |= tokens.items.len() != before;
    }
    Ok(removed)
}

/// The project and role a project token's subject names.
pub(crate) fn project_subject(subject: &str) -> Option<(&str, &str)> {
    let mut parts = subject.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(SUBJECT_PREFIX), Some(project), Some(role), None) => Some((project, role)),
        _ => None,
    }
}

/// Whether a project token is still recorded in its (existing) project and role. A token with
/// an id is known by its id only; one without, from before Argo CD gave them ids, by its issue
/// time.
pub(crate) fn check_project_token(
    project: Option<&AppProject>,
    name: &str,
    role: &str,
    claims: &WireClaims,
) -> Result<(), AuthError> {
    let project = project
        .filter(|p| p.metadata.name.as_deref() == Some(name))
        .ok_or_else(|| AuthError::UnknownProject {
            project: name.to_string(),
        })?;
    // The spec is where a token is declared (and where GitOps-managed projects drop it); the
    // status copy Argo CD also keeps revives nothing.
    let records = &find_role(project, name, role)?.jwt_tokens;
    let (listed, token) = if claims.jti.is_empty() {
        let listed = records.iter().any(|r| r.iat == claims.iat);
        (listed, format!("issued at {}", claims.iat))
    } else {
        let listed = records.iter().any(|r| r.id == claims.jti);
        (listed, format!("id {}", claims.jti))
    };
    if listed {
        Ok(())
    } else {
        Err(AuthError::TokenRevoked {
            subject: format!("{SUBJECT_PREFIX}:{name}:{role}"),
            token,
        })
    }
}

fn find_role<'p>(
    project: &'p AppProject,
    name: &str,
    role: &str,
) -> Result<&'p ProjectRole, AuthError> {
    project
        .spec
        .roles
        .iter()
        .find(|r| r.name == role)
        .ok_or_else(|| unknown_role(name, role))
}

fn unknown_role(project: &str, role: &str) -> AuthError {
    AuthError::UnknownRole {
        project: project.to_string(),
        role: role.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::clock::Clock;
    use super::super::clock::fake::FakeClock;
    use super::super::session::Principal;
    use super::super::session::tests::Install;
    use super::*;

    fn team_a() -> AppProject {
        serde_yaml::from_str(
            r#"
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: team-a
  namespace: argocd
spec:
  sourceRepos: ["*"]
  roles:
    - name: ci
      description: CI pipelines
      policies:
        - p, proj:team-a:ci, applications, sync, team-a/*, allow
      jwtTokens:
        - iat: 1717243100
    - name: viewer
status:
  jwtTokensByRole:
    ci:
      items:
        - iat: 1717243100
"#,
        )
        .unwrap()
    }

    fn projects<'p>(project: &'p AppProject) -> impl FnOnce(&str) -> Option<&'p AppProject> {
        move |name| (name == "team-a").then_some(project)
    }

    #[test]
    fn project_tokens_are_valid_while_recorded() {
        let clock = FakeClock::new();
        let sessions = Install::new().manager(&clock);
        let mut project = team_a();
        let (jwt, record) = sessions
            .issue_project_token(&project, "ci", Some(Duration::from_secs(3600)), None)
            .unwrap();
        let now = clock.now().as_second();
        assert_eq!((record.iat, record.exp), (now, now + 3600));

        let err = sessions
            .verify(jwt.as_str(), projects(&project))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the token (id {}) of proj:team-a:ci is no longer listed: it was revoked",
                record.id
            )
        );

        record_project_token(&mut project, "ci", record.clone()).unwrap();
        let status_items = &project.status.as_ref().unwrap().jwt_tokens_by_role["ci"].items;
        assert_eq!(status_items.last(), Some(&record));
        assert_eq!(project.spec.roles[0].jwt_tokens.last(), Some(&record));
        let claims = sessions.verify(jwt.as_str(), projects(&project)).unwrap();
        assert_eq!(
            claims.principal,
            Principal::ProjectRole {
                project: "team-a".into(),
                role: "ci".into()
            }
        );
        assert_eq!(claims.principal.to_string(), "proj:team-a:ci");
        assert_eq!(claims.id, record.id);

        clock.advance(Duration::from_secs(3600));
        assert!(matches!(
            sessions.verify(jwt.as_str(), projects(&project)),
            Err(AuthError::TokenExpired)
        ));
    }

    #[test]
    fn deleting_the_record_role_or_project_revokes_the_token() {
        let clock = FakeClock::new();
        let sessions = Install::new().manager(&clock);
        let mut project = team_a();
        let (jwt, record) = sessions
            .issue_project_token(&project, "ci", None, Some("ci-1"))
            .unwrap();
        assert_eq!(record.id, "ci-1");
        record_project_token(&mut project, "ci", record).unwrap();
        assert!(sessions.verify(jwt.as_str(), projects(&project)).is_ok());

        let mut without_record = project.clone();
        assert!(remove_project_token(&mut without_record, "ci", 0, Some("ci-1")).unwrap());
        assert!(!remove_project_token(&mut without_record, "ci", 0, Some("ci-1")).unwrap());
        // The old token without an id, by its issue time.
        assert!(remove_project_token(&mut without_record, "ci", 1_717_243_100, None).unwrap());
        assert!(without_record.spec.roles[0].jwt_tokens.is_empty());
        assert!(matches!(
            sessions.verify(jwt.as_str(), projects(&without_record)),
            Err(AuthError::TokenRevoked { .. })
        ));

        let mut without_role = project.clone();
        without_role.spec.roles.retain(|role| role.name != "ci");
        let err = sessions
            .verify(jwt.as_str(), projects(&without_role))
            .unwrap_err();
        assert_eq!(err.to_string(), "AppProject team-a has no role \"ci\"");

        let err = sessions.verify(jwt.as_str(), |_| None).unwrap_err();
        assert_eq!(err.to_string(), "AppProject team-a does not exist");
        let mut renamed = project.clone();
        renamed.metadata.name = Some("team-b".into());
        let err = sessions
            .verify(jwt.as_str(), |_| Some(&renamed))
            .unwrap_err();
        assert!(matches!(err, AuthError::UnknownProject { .. }), "{err}");
    }

    #[test]
    fn a_token_dropped_from_the_spec_is_revoked_whatever_the_status_says() {
        let clock = FakeClock::new();
        let sessions = Install::new().manager(&clock);
        let mut project = team_a();
        let (jwt, record) = sessions
            .issue_project_token(&project, "ci", None, Some("ci-2"))
            .unwrap();
        record_project_token(&mut project, "ci", record).unwrap();
        assert!(sessions.verify(jwt.as_str(), projects(&project)).is_ok());
        // A project manifest applied from Git, listing no tokens; the status keeps its copy.
        project.spec.roles[0].jwt_tokens.clear();
        let listed = &project.status.as_ref().unwrap().jwt_tokens_by_role["ci"].items;
        assert!(listed.iter().any(|token| token.id == "ci-2"));
        let err = sessions
            .verify(jwt.as_str(), projects(&project))
            .unwrap_err();
        assert!(matches!(err, AuthError::TokenRevoked { .. }), "{err}");
    }

    #[test]
    fn tokens_without_an_id_are_known_by_their_issue_time_only() {
        let clock = FakeClock::new();
        let sessions = Install::new().manager(&clock);
        let project = team_a();
        let claims = |iat: i64, jti: &str| WireClaims {
            iss: "argocd".into(),
            sub: "proj:team-a:ci".into(),
            iat,
            nbf: None,
            exp: None,
            jti: jti.into(),
        };
        // The record of team_a() has no id: an old token, issued at 1717243100.
        let old = sessions.sign_wire(&claims(1_717_243_100, "")).unwrap();
        assert!(sessions.verify(old.as_str(), projects(&project)).is_ok());
        let other_time = sessions.sign_wire(&claims(1_717_243_101, "")).unwrap();
        let err = sessions
            .verify(other_time.as_str(), projects(&project))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the token (issued at 1717243101) of proj:team-a:ci is no longer listed: it was \
             revoked"
        );
        // A token with an id is not accepted on the strength of a record issued in the same
        // second (Argo CD would).
        let same_second = sessions
            .sign_wire(&claims(1_717_243_100, "some-id"))
            .unwrap();
        assert!(matches!(
            sessions.verify(same_second.as_str(), projects(&project)),
            Err(AuthError::TokenRevoked { .. })
        ));
    }

    #[test]
    fn tokens_are_only_issued_for_existing_roles() {
        let sessions = Install::new().manager(&FakeClock::new());
        let mut project = team_a();
        let err = sessions
            .issue_project_token(&project, "admin", None, None)
            .unwrap_err();
        assert_eq!(err.to_string(), "AppProject team-a has no role \"admin\"");
        let err = record_project_token(&mut project, "admin", JwtToken::default()).unwrap_err();
        assert!(matches!(err, AuthError::UnknownRole { .. }), "{err}");
        let (_, record) = sessions
            .issue_project_token(&project, "viewer", None, None)
            .unwrap();
        assert_eq!(record.exp, 0);
        record_project_token(&mut project, "viewer", record.clone()).unwrap();
        let status = project.status.as_ref().unwrap();
        assert_eq!(status.jwt_tokens_by_role["viewer"].items, [record]);
    }

    #[test]
    fn project_subjects_have_exactly_three_parts() {
        assert_eq!(project_subject("proj:team-a:ci"), Some(("team-a", "ci")));
        assert_eq!(project_subject("proj:team-a"), None);
        assert_eq!(project_subject("proj:team-a:ci:x"), None);
        assert_eq!(project_subject("admin:login"), None);
    }
}
