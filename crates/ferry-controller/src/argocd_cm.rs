//! `argocd-cm`, followed live: a watch on that one ConfigMap swaps the settings every reconcile
//! reads (health checks, system-wide ignoreDifferences, kustomize build options, the kinds the
//! cluster caches watch, the resync period) without a restart. A change with a problem (a Lua
//! script that does not compile, an ignore rule or resource filter that does not parse) is
//! logged and the previous settings stay: a typo must never drop a rule and make resources
//! look different or unwatched.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use ferry_appstate::argocd_cm::{ARGOCD_CM, ArgoSettings};
use ferry_cache::ResourceFilter;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tracing::{error, info, warn};

use crate::context::Context;
use crate::settings::ControllerSettings;

/// The settings of the current `argocd-cm`, swapped whole when it changes.
pub struct LiveArgoSettings {
    current: RwLock<Arc<ArgoSettings>>,
    /// The data the current settings came from, to skip a watch event that changed nothing.
    data: RwLock<BTreeMap<String, String>>,
    /// The latest data seen, taken even when it has problems: flags read as they are
    /// (impersonation) must not wait for an unrelated typo to be fixed.
    latest: RwLock<BTreeMap<String, String>>,
}

impl LiveArgoSettings {
    /// The settings of `namespace`'s `argocd-cm` as the controller starts; the defaults when
    /// it is missing or cannot be read (with a warning). Problems are logged and the entries
    /// with them skipped; only a bad tracking method stops the start.
    pub async fn load(client: &kube::Client, namespace: &str) -> anyhow::Result<Self> {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let data = match api.get_opt(ARGOCD_CM).await {
            Ok(found) => found.and_then(|cm| cm.data).unwrap_or_default(),
            Err(err) => {
                warn!("reading {ARGOCD_CM}: {err}; using the defaults");
                BTreeMap::new()
            }
        };
        let settings = ArgoSettings::from_data(&data)?;
        Ok(Self {
            current: RwLock::new(Arc::new(settings)),
            latest: RwLock::new(data.clone()),
            data: RwLock::new(data),
        })
    }

    #[cfg(test)]
    fn new(settings: ArgoSettings) -> Self {
        Self {
            current: RwLock::new(Arc::new(settings)),
            data: RwLock::default(),
            latest: RwLock::default(),
        }
    }

    /// The settings in force now.
    pub fn get(&self) -> Arc<ArgoSettings> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The trimmed value of `key` in the latest `argocd-cm` seen, problems or not.
    pub fn value(&self, key: &str) -> Option<String> {
        let latest = self.latest.read().unwrap_or_else(|p| p.into_inner());
        latest.get(key).map(|value| value.trim().to_string())
    }

    /// Takes a ConfigMap's data: `Ok(true)` when the settings changed, `Ok(false)` when the
    /// data is what they came from, an error (and the previous settings kept) when it has
    /// problems.
    fn update(&self, data: BTreeMap<String, String>) -> Result<bool, String> {
        *self.latest.write().unwrap_or_else(|p| p.into_inner()) = data.clone();
        if *self.data.read().unwrap_or_else(|p| p.into_inner()) == data {
            return Ok(false);
        }
        let settings = ArgoSettings::from_data(&data).map_err(|err| format!("{err:#}"))?;
        if !settings.problems.is_empty() {
            return Err(settings.problems.join("; "));
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(settings);
        *self.data.write().unwrap_or_else(|p| p.into_inner()) = data;
        Ok(true)
    }
}

impl ArgoSettingsExt for ArgoSettings {
    fn resource_filter(&self, settings: &ControllerSettings, server: &str) -> ResourceFilter {
        match &self.resources {
            Some(rules) => rules.filter_for(server),
            None => settings.resource_filter.clone(),
        }
    }

    fn resync(&self, settings: &ControllerSettings) -> Duration {
        self.reconciliation.unwrap_or(settings.resync)
    }
}

/// What the controller reads of `argocd-cm` with its own settings as the fallback.
pub trait ArgoSettingsExt {
    /// The kinds the cache of cluster `server` watches: `resource.inclusions` /
    /// `resource.exclusions` when set, else the controller's default filter.
    fn resource_filter(&self, settings: &ControllerSettings, server: &str) -> ResourceFilter;
    /// How often apps are compared again: `timeout.reconciliation` when set (Argo CD's
    /// manifests feed it to the controller's resync flag), else `--resync`.
    fn resync(&self, settings: &ControllerSettings) -> Duration;
}

impl Context {
    /// How often apps are compared again now.
    pub fn resync(&self) -> Duration {
        self.argo_cm.get().resync(&self.settings)
    }

    /// The kinds the cache of cluster `server` watches now.
    pub fn resource_filter(&self, server: &str) -> ResourceFilter {
        self.argo_cm.get().resource_filter(&self.settings, server)
    }
}

/// Follows `argocd-cm` in the control namespace for as long as the controller runs. A
/// change swaps the settings, forgets cached comparisons and compares every app again; the
/// cluster caches pick up a changed resource filter at their next use.
pub fn follow(ctx: Weak<Context>, client: kube::Client, namespace: &str) {
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={ARGOCD_CM}"));
    let events = watcher::watcher(api, config).default_backoff();
    tokio::spawn(events.for_each(move |event| {
        let data = match event {
            Ok(Event::Apply(cm) | Event::InitApply(cm)) => Some(cm.data.unwrap_or_default()),
            Ok(Event::Delete(_)) => Some(BTreeMap::new()),
            Ok(Event::Init | Event::InitDone) => None,
            Err(err) => {
                warn!("watching {ARGOCD_CM}: {err}");
                None
            }
        };
        if let (Some(data), Some(ctx)) = (data, ctx.upgrade()) {
            apply(&ctx, data);
        }
        futures::future::ready(())
    }));
}

fn apply(ctx: &Context, data: BTreeMap<String, String>) {
    match ctx.argo_cm.update(data) {
        Ok(false) => {}
        Ok(true) => {
            let settings = ctx.argo_cm.get();
            if settings.tracking.as_ref().unwrap_or(&ctx.settings.tracking)
                != &ctx.settings.tracking
            {
                error!(
                    "{ARGOCD_CM}: the resource tracking method changed; it takes effect when the \
                     controller restarts (resources are still tracked the old way)"
                );
            }
            info!("{ARGOCD_CM} changed: comparing every app with the new settings");
            ctx.comparisons
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            ctx.clusters.health_changed();
            ctx.triggers.all();
        }
        Err(problems) => {
            error!("{ARGOCD_CM} changed but is not taken, the previous settings stay: {problems}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_change_with_a_problem_keeps_the_previous_settings() {
        let live = LiveArgoSettings::new(ArgoSettings::default());
        let good = data(&[
            ("timeout.reconciliation", "45s"),
            (
                "resource.exclusions",
                "- {apiGroups: [''], kinds: [Secret]}",
            ),
        ]);
        assert_eq!(live.update(good.clone()), Ok(true));
        assert_eq!(live.update(good), Ok(false));
        assert_eq!(live.get().reconciliation, Some(Duration::from_secs(45)));

        for bad in [
            data(&[("resource.exclusions", "- {kinds: ['[oops']}")]),
            data(&[("resource.exclusions", "{not: a list}")]),
            data(&[("timeout.reconciliation", "soon")]),
            data(&[(
                "resource.customizations.health.example.com_Widget",
                "this is not lua",
            )]),
            data(&[(
                "resource.customizations.ignoreDifferences.all",
                "jqPathExpressions: ['.a[']",
            )]),
        ] {
            let err = live.update(bad.clone()).unwrap_err();
            assert!(!err.is_empty(), "{bad:?}");
            assert_eq!(live.get().reconciliation, Some(Duration::from_secs(45)));
        }
        let settings = ControllerSettings::default();
        let filter = live
            .get()
            .resource_filter(&settings, "https://kubernetes.default.svc");
        assert_eq!(filter.exclude.len(), 1);
        assert_eq!(live.get().resync(&settings), Duration::from_secs(45));
    }

    #[test]
    fn values_follow_the_latest_data_even_with_a_problem_elsewhere() {
        let live = LiveArgoSettings::new(ArgoSettings::default());
        assert_eq!(live.value("application.sync.impersonation.enabled"), None);
        let on = data(&[
            ("application.sync.impersonation.enabled", " true\n"),
            ("timeout.reconciliation", "soon"),
        ]);
        assert!(live.update(on).is_err());
        assert_eq!(
            live.value("application.sync.impersonation.enabled")
                .as_deref(),
            Some("true")
        );
        assert!(live.update(BTreeMap::new()).is_ok());
        assert_eq!(live.value("application.sync.impersonation.enabled"), None);
    }

    #[test]
    fn resource_rules_apply_to_the_clusters_they_name() {
        let settings = ArgoSettings::from_data(&data(&[
            (
                "resource.exclusions",
                "- {apiGroups: ['*'], kinds: [ConfigMap], clusters: ['https://prod-*']}",
            ),
            (
                "resource.inclusions",
                "- {apiGroups: [apps], clusters: ['https://prod-*']}",
            ),
        ]))
        .unwrap();
        let defaults = ControllerSettings::default();
        let prod = settings.resource_filter(&defaults, "https://prod-1.example");
        assert_eq!((prod.include.len(), prod.exclude.len()), (1, 1));
        let local = settings.resource_filter(&defaults, "https://kubernetes.default.svc");
        assert!(local.include.is_empty() && local.exclude.is_empty());
        // Without either key, the controller's defaults (Argo CD's shipped exclusions).
        let none = ArgoSettings::from_data(&BTreeMap::new()).unwrap();
        assert_eq!(
            none.resource_filter(&defaults, "https://kubernetes.default.svc"),
            defaults.resource_filter
        );
    }
}
