//! Every RBAC decision of the API goes through [`decide`], so every denial is logged the same
//! way: who, what, which object, and which rule decided (never a token).

use super::authn::Caller;
use super::error::ApiError;
use super::state::Snapshot;

/// A denial the caller asked to be allowed: a 403, logged at info.
pub fn authorize(
    settings: &Snapshot,
    caller: &Caller,
    resource: &str,
    action: &str,
    object: &str,
) -> Result<(), ApiError> {
    if decide(settings, caller, resource, action, object, Denial::Refused)? {
        Ok(())
    } else {
        Err(ApiError::permission_denied())
    }
}

/// Whether the caller may see or do something, for lists filtered to what the caller may see
/// and for `can-i`: denials there are answers, not refusals, so they are logged at debug.
pub fn visible(
    settings: &Snapshot,
    caller: &Caller,
    resource: &str,
    action: &str,
    object: &str,
) -> Result<bool, ApiError> {
    decide(settings, caller, resource, action, object, Denial::Answer)
}

#[derive(Clone, Copy)]
enum Denial {
    Refused,
    Answer,
}

fn decide(
    settings: &Snapshot,
    caller: &Caller,
    resource: &str,
    action: &str,
    object: &str,
    denial: Denial,
) -> Result<bool, ApiError> {
    let decision = settings
        .policy()?
        .enforce(&caller.subject(), resource, action, object);
    let allowed = decision.is_allowed();
    if !allowed {
        let subject = caller.name();
        match denial {
            Denial::Refused => tracing::info!(
                %subject,
                resource,
                action,
                object,
                %decision,
                "permission denied"
            ),
            Denial::Answer => tracing::debug!(
                %subject,
                resource,
                action,
                object,
                %decision,
                "not permitted"
            ),
        }
    }
    Ok(allowed)
}
