//! `shim install DEST`: copy the running binary, atomically, mode 0755.
mod common;
use common::*;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

fn install(dest: &Path) -> Done {
    // A strict umask: the installed file is 0755 whatever the umask.
    shim([std::ffi::OsStr::new("install"), dest.as_os_str()])
        .umask(0o077)
        .run()
}

fn assert_installed(file: &Path) {
    let meta = fs::symlink_metadata(file).unwrap();
    assert!(meta.file_type().is_file(), "a regular file: {file:?}");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755, "mode 0755");
    assert!(
        fs::read(file).unwrap() == fs::read(shim_bin()).unwrap(),
        "identical bytes"
    );
}

/// The directory holds exactly `names`: no temp file left behind.
fn assert_dir_holds(dir: &Path, names: &[&str]) {
    let mut found: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    found.sort();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(found, want);
}

#[test]
fn install_into_an_existing_directory_writes_dir_slash_shim() {
    let dir = tmpdir("install-dir");
    let done = install(&dir);
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert_installed(&dir.join("shim"));
    assert_dir_holds(&dir, &["shim"]);
    // The copy runs.
    let out = std::process::Command::new(dir.join("shim"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn install_to_a_file_path_writes_that_file_and_replaces_an_old_one() {
    let dir = tmpdir("install-file");
    let dest = dir.join("my-init");
    let done = install(&dest);
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert_installed(&dest);

    fs::write(&dest, "old").unwrap();
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o600)).unwrap();
    let done = install(&dest);
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert_installed(&dest);
    assert_dir_holds(&dir, &["my-init"]);
}

#[test]
fn install_replaces_a_symlink_at_dest_and_never_follows_it() {
    let dir = tmpdir("install-link");
    let target = dir.join("target");
    fs::write(&target, "do not touch").unwrap();
    let dest = dir.join("link");
    symlink(&target, &dest).unwrap();
    let done = install(&dest);
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert_installed(&dest);
    assert_eq!(fs::read_to_string(&target).unwrap(), "do not touch");

    // A dangling symlink is replaced too, and nothing is created where it
    // pointed.
    let dest = dir.join("dangling");
    let nowhere = dir.join("nowhere");
    symlink(&nowhere, &dest).unwrap();
    let done = install(&dest);
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert_installed(&dest);
    assert!(!nowhere.exists());
}

#[test]
fn install_dest_ending_in_slash_must_be_an_existing_directory() {
    let dir = tmpdir("install-slash");
    let missing = format!("{}/missing/", dir.display());
    let done = install(Path::new(&missing));
    assert_eq!(done.code(), 1, "{}", done.stderr_text());
    assert_eq!(done.stderr.len(), 1, "a one-line error: {:?}", done.stderr);
    assert!(!dir.join("missing").exists(), "nothing created");

    let ok = format!("{}/", dir.display());
    let done = install(Path::new(&ok));
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert_installed(&dir.join("shim"));
}

#[test]
fn install_into_a_missing_directory_fails_with_exit_1_and_one_line() {
    let dir = tmpdir("install-missing");
    let done = install(&dir.join("no/such/dir/shim"));
    assert_eq!(done.code(), 1, "{}", done.stderr_text());
    assert_eq!(done.stderr.len(), 1, "a one-line error: {:?}", done.stderr);
    assert!(!done.stderr[0].is_empty());
}

#[test]
fn install_without_dest_is_a_usage_error() {
    let done = shim(["install"]).run();
    assert_eq!(done.code(), 2, "{}", done.stderr_text());
    assert!(!done.stderr.is_empty());
}
