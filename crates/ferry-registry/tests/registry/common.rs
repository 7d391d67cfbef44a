//! A real distribution registry per test (ferry-testkit), and ferry-registry's view of it.

use std::sync::Arc;

use ferry_registry::{Registries, RegistriesConf, Registry};
use ferry_testkit::registry::{Registry as TestRegistry, RegistryOptions};

pub const USER: &str = "robot";
pub const PASSWORD: &str = "pa55word";

pub fn start(options: RegistryOptions<'_>) -> TestRegistry {
    TestRegistry::start(options).expect("the distribution registry starts")
}

/// The `registries.conf` entry for `registry`, with `extra` YAML fields (`key: value, ...`).
pub fn conf_for(registry: &TestRegistry, extra: &str) -> RegistriesConf {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    RegistriesConf::parse(&format!(
        "registries:\n- {{name: test, api_url: '{}', prefix: '{}'{extra}}}\n",
        registry.api_url(),
        registry.host()
    ))
    .expect("a valid registries.conf")
}

/// ferry-registry's client for `registry`.
pub fn client_for(registry: &TestRegistry, extra: &str) -> Arc<Registry> {
    Registries::new(&conf_for(registry, extra), None)
        .unwrap()
        .for_image(Some(&registry.host()), "app")
        .unwrap()
}
