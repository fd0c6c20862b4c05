//! Usage errors: refused with status 2 and a message naming what is wrong,
//! before any process starts. Only the watercooler binary is needed.

use std::process::Command;

use kit::process::bin;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(bin("watercooler"))
        .args(args)
        .env_remove("WATERCOOLER_BEHAVIOUR")
        .output()
        .expect("runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn usage_errors_exit_2_with_a_clear_message() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("negative count", &["-x", "-3"], "-3"),
        ("negative -y", &["-y", "-1"], "-1"),
        ("not a number", &["-x", "five"], "invalid value"),
        (
            "unknown behaviour",
            &["-y", "1", "--behaviour", "saint"],
            "unknown behaviour \"saint\"",
        ),
        (
            "missing plugin file",
            &["--plugin", "/nonexistent/libnothing.so"],
            "no plugin file at /nonexistent/libnothing.so",
        ),
        ("unknown flag", &["--frobnicate"], "unexpected argument"),
        ("zero boss interval", &["--boss-interval", "0"], "positive"),
    ];
    for (name, args, message) in cases {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(message),
            "{name}: {stderr:?} lacks {message:?}"
        );
    }
}

#[test]
fn a_missing_binary_is_named_with_the_command_that_builds_it() {
    let dir = tempfile::tempdir().expect("dir");
    let (code, stderr) = run(&[
        "--bin-dir",
        &dir.path().display().to_string(),
        "--data-dir",
        &dir.path().join("data").display().to_string(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("crapcoin-node not found"), "{stderr}");
    assert!(stderr.contains("cargo build -p crapcoin-node"), "{stderr}");
}

#[test]
fn help_documents_every_option() {
    let output = Command::new(bin("watercooler"))
        .arg("--help")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "-x",
        "-y",
        "--behaviour",
        "--plugin",
        "--sauron",
        "--boss",
        "--boss-interval",
        "--rehire-after",
        "--no-rehire",
        "--boss-pause",
        "--faults",
        "--fault-duration",
        "--fault-schedule",
        "--auto",
        "--auto-interval-ms",
        "--difficulty",
        "--seed",
        "--data-dir",
        "--duration",
        "--settle",
        "--report",
        "hire [N] [BEHAVIOUR]",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}
