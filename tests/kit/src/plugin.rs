//! Plugin libraries for the loader's tests: the example plugin
//! (`examples/attacker-plugin`) as cargo builds it, and small `cdylib`s
//! compiled here with plain rustc, in scratch directories of the target
//! directory.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::process::{ensure_built, profile_dir, run_bounded, target_dir};

/// The file name of the dynamic library `stem` on this platform
/// (`libSTEM.so` on Linux).
pub fn library_name(stem: &str) -> String {
    format!(
        "{}{stem}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// A scratch directory `target/tmp/GROUP/NAME`, created.
pub fn scratch(group: &str, name: &str) -> PathBuf {
    let dir = target_dir().join("tmp").join(group).join(name);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The example plugin's library, built first by [`ensure_built`] (cargo
/// test does not build `cdylib`s; a fresh tree makes that a no-op).
pub fn example_plugin() -> PathBuf {
    ensure_built();
    let path = profile_dir().join(library_name("attacker_plugin"));
    assert!(
        path.is_file(),
        "{} was not built by `cargo build --workspace`",
        path.display()
    );
    path
}

/// Compiles `source` into a `cdylib` called `stem` with plain rustc (in
/// scratch directory `group/stem`); its path.
pub fn compile_library(group: &str, stem: &str, source: &str) -> PathBuf {
    let dir = scratch(group, stem);
    let src = dir.join("lib.rs");
    std::fs::write(&src, source).expect("writes source");
    let out = dir.join(library_name(stem));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let mut command = Command::new(rustc);
    command
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "cdylib",
            "--crate-name",
        ])
        .arg(stem)
        .arg("-o")
        .arg(&out)
        .arg(&src);
    let output = run_bounded(command, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "rustc failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}
