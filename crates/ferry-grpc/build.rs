//! Compiles Argo CD's .proto files (staged under proto/ by scripts/argocd-protos) into one
//! descriptor set, with protox: no protoc, no network.

use std::path::PathBuf;

/// The services ferry serves; their imports come along.
const SERVICES: &[&str] = &[
    "account",
    "application",
    "applicationset",
    "certificate",
    "cluster",
    "gpgkey",
    "project",
    "repocreds",
    "repository",
    "session",
    "settings",
    "version",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files: Vec<String> = SERVICES
        .iter()
        .map(|service| format!("github.com/argoproj/argo-cd/v3/server/{service}/{service}.proto"))
        .collect();
    println!("cargo:rerun-if-changed=proto");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).open_files(&files)?;
    // Encoded by protox itself: prost's types would drop the `google.api.http` options, which
    // are extensions.
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("argocd.bin");
    std::fs::write(out, compiler.encode_file_descriptor_set())?;
    Ok(())
}
