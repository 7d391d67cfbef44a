//! Release builds put `ui/dist` into the binary (`api::static_assets::BuiltUi`): rebuild when it
//! changes (new hashed files included), and say when there is none to put in. Debug builds read
//! it at run time and need neither.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    if !dist.join("index.html").is_file() {
        println!(
            "cargo:warning=ui/dist is not built (scripts/ui): this ferry-server has no web UI \
             built in and serves the API alone unless given --staticassets"
        );
    }
}
