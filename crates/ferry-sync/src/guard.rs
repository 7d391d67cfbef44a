//! The prune guard: deleting much of an application at once is what a broken render or a wrong
//! path looks like, so it needs saying yes to.

/// Limits on pruning.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PruneGuard {
    /// Allow pruning everything when the desired state is empty (`allowEmpty`).
    pub allow_empty: bool,
    /// Refuse when more than this fraction of the tracked resources would be pruned at once
    /// (`None`: no limit).
    pub max_fraction: Option<f64>,
}

impl PruneGuard {
    /// `desired`: resources in Git; `tracked`: live resources tracked to the app; `prunes`: how
    /// many would be deleted. Errors say why the sync is refused.
    pub fn check(&self, desired: usize, tracked: usize, prunes: usize) -> Result<(), String> {
        if prunes == 0 {
            return Ok(());
        }
        if desired == 0 && !self.allow_empty {
            return Err(format!(
                "refusing to prune {prunes} resource(s): the desired state is empty \
                 (allow it with syncPolicy.automated.allowEmpty or --allow-empty)"
            ));
        }
        if let Some(max) = self.max_fraction
            && tracked > 0
        {
            let fraction = prunes as f64 / tracked as f64;
            if fraction > max {
                return Err(format!(
                    "refusing to prune {prunes} of {tracked} resource(s) ({:.0}%): more than the \
                     allowed {:.0}% at once",
                    fraction * 100.0,
                    max * 100.0
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_desired_state_needs_allow_empty() {
        let guard = PruneGuard::default();
        let err = guard.check(0, 5, 5).unwrap_err();
        assert!(err.contains("desired state is empty"), "{err}");
        assert!(
            PruneGuard {
                allow_empty: true,
                ..guard.clone()
            }
            .check(0, 5, 5)
            .is_ok()
        );
        assert!(
            guard.check(0, 0, 0).is_ok(),
            "nothing to prune, nothing to refuse"
        );
    }

    #[test]
    fn fraction_limit() {
        let guard = PruneGuard {
            allow_empty: false,
            max_fraction: Some(0.5),
        };
        assert!(guard.check(8, 10, 5).is_ok());
        let err = guard.check(4, 10, 6).unwrap_err();
        assert!(err.contains("6 of 10") && err.contains("60%"), "{err}");
    }
}
