//! The node's base images, built without any registry: `buildah` assembles a pause image (a static
//! C binary) and a busybox image (Debian's static busybox) from scratch into OCI archives, kept in
//! the cache and imported into containerd at every start.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{BUSYBOX_IMAGE, PAUSE_IMAGE, run};

const PAUSE_SOURCE: &str = include_str!("pause.c");
/// The busybox image's archive in the cache.
pub const BUSYBOX_ARCHIVE: &str = "busybox.oci.tar";

/// The OCI archives of the pause and busybox images, built unless the cache has them.
pub fn ensure(cache: &Path) -> Result<Vec<PathBuf>> {
    let pause = cache.join("pause.oci.tar");
    let busybox = cache.join(BUSYBOX_ARCHIVE);
    if pause.is_file() && busybox.is_file() {
        return Ok(vec![pause, busybox]);
    }
    let work = cache.join(format!(".build-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let built = build(&work, &pause, &busybox);
    // buildah's vfs storage is plain files; nothing stays mounted.
    let _ = fs::remove_dir_all(&work);
    built.context("building the real node's base images with buildah")?;
    Ok(vec![pause, busybox])
}

fn build(work: &Path, pause: &Path, busybox: &Path) -> Result<()> {
    let buildah = Buildah { work };

    let source = work.join("pause.c");
    fs::write(&source, PAUSE_SOURCE)?;
    let binary = work.join("pause");
    run(Command::new("gcc")
        .args(["-Os", "-static", "-s", "-o"])
        .arg(&binary)
        .arg(&source))?;
    let rootfs = work.join("pause-rootfs");
    fs::create_dir_all(&rootfs)?;
    fs::copy(&binary, rootfs.join("pause"))?;
    buildah.image(
        &rootfs,
        &["--entrypoint", r#"["/pause"]"#],
        PAUSE_IMAGE,
        pause,
    )?;

    let rootfs = work.join("busybox-rootfs");
    busybox_rootfs(&rootfs)?;
    buildah.image(
        &rootfs,
        &["--cmd", r#"["/bin/sh"]"#, "--env", "PATH=/bin"],
        BUSYBOX_IMAGE,
        busybox,
    )
}

/// A root filesystem of Debian's static busybox with a link per applet, and the passwd and group
/// files that `id`, `ls -l` and non-root pods look users up in.
fn busybox_rootfs(rootfs: &Path) -> Result<()> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() {
        bail!(
            "{} is missing (Debian package busybox-static)",
            busybox.display()
        );
    }
    for dir in ["bin", "etc", "root", "tmp"] {
        fs::create_dir_all(rootfs.join(dir))?;
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::copy(busybox, rootfs.join("bin/busybox"))?;
    let applets = run(Command::new(busybox).arg("--list"))?;
    for applet in applets.lines().filter(|a| !a.is_empty() && *a != "busybox") {
        symlink("busybox", rootfs.join("bin").join(applet))?;
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnobody:x:65534:\n")?;
    Ok(())
}

/// buildah with its storage in the build directory (vfs: no mounts, works on any filesystem).
struct Buildah<'a> {
    work: &'a Path,
}

impl Buildah<'_> {
    fn command(&self) -> Command {
        let mut command = Command::new("buildah");
        command
            .arg("--root")
            .arg(self.work.join("storage"))
            .arg("--runroot")
            .arg(self.work.join("run"))
            .args(["--storage-driver", "vfs"]);
        command
    }

    /// An image of `rootfs` with `config` flags, written as an OCI archive to `archive`.
    fn image(&self, rootfs: &Path, config: &[&str], name: &str, archive: &Path) -> Result<()> {
        let container = run(self.command().args(["from", "scratch"]))?;
        let container = container.trim();
        run(self
            .command()
            .arg("copy")
            .arg(container)
            .arg(format!("{}/", rootfs.display()))
            .arg("/"))?;
        run(self.command().arg("config").args(config).arg(container))?;
        run(self.command().args(["commit", "-q", container, name]))?;
        let partial = archive.with_extension("partial");
        let _ = fs::remove_file(&partial);
        run(self.command().args([
            "push",
            "-q",
            name,
            &format!("oci-archive:{}:{name}", partial.display()),
        ]))?;
        fs::rename(&partial, archive)?;
        Ok(())
    }
}
