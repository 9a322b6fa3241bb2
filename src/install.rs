//! `shim install DEST`: copy the running binary, atomically, mode 0755.
//!
//! Used by a Kubernetes init container to put the shim into a shared volume.
//! The copy is written to a temporary file beside the target and renamed over
//! it, so a reader sees the old file or the whole new one, never half; and
//! rename(2) replaces a symlink at the target instead of following it.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Exit code when the copy fails (a usage error is 2).
const INSTALL_FAILED: i32 = 1;

pub fn run(args: &[OsString]) -> i32 {
    let [dest] = args else {
        crate::cli::usage_error("install takes exactly one DEST (shim install DEST)");
    };
    match install(Path::new(dest)) {
        Ok(target) => {
            crate::diag::info!("installed {}", target.display());
            0
        }
        Err(e) => {
            eprintln!("shim: error: install: {e:#}");
            INSTALL_FAILED
        }
    }
}

fn install(dest: &Path) -> Result<PathBuf> {
    let target = target_path(dest)?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(".shim.install.{}", std::process::id()));
    let result = write_copy(&tmp).and_then(|()| {
        fs::rename(&tmp, &target)
            .with_context(|| format!("cannot rename into {}", target.display()))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| target)
}

/// An existing directory (not a symlink to one) gets DEST/shim; anything else
/// is the file path itself. A trailing slash demands an existing directory.
fn target_path(dest: &Path) -> Result<PathBuf> {
    let text = dest.as_os_str().as_encoded_bytes();
    if text.is_empty() {
        bail!("DEST is empty");
    }
    if text.ends_with(b"/") {
        if !dest.is_dir() {
            bail!("{} is not an existing directory", dest.display());
        }
        return Ok(dest.join("shim"));
    }
    match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => Ok(dest.join("shim")),
        _ => Ok(dest.to_path_buf()),
    }
}

fn write_copy(tmp: &Path) -> Result<()> {
    // /proc/self/exe is the running binary even if its path changed since.
    let mut src = File::open("/proc/self/exe")
        .or_else(|_| File::open(std::env::current_exe()?))
        .context("cannot open the running binary")?;
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(tmp)
    };
    // A temporary file of the same name can only be left over from an
    // earlier install that died with our pid: remove it and try once more.
    let mut out = match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(tmp);
            create()
        }
        other => other,
    }
    .with_context(|| format!("cannot create {}", tmp.display()))?;
    io::copy(&mut src, &mut out).with_context(|| format!("cannot write {}", tmp.display()))?;
    // The umask may have cut bits from the mode given at creation.
    out.set_permissions(fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot chmod {}", tmp.display()))?;
    out.sync_all()
        .with_context(|| format!("cannot sync {}", tmp.display()))?;
    Ok(())
}
