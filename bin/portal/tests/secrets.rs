//! Secrets in the real `portal` binary's configuration: `--help` never prints them, and a
//! secret file that is missing stops the process with an error naming the path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const PORTAL: &str = env!("CARGO_BIN_EXE_portal");

/// Every secret a command takes from the environment, with a value that must not be printed.
const SECRETS: [(&str, &str); 5] = [
    (
        "PORTAL_DATABASE_URL",
        "postgres://portal:db-pass-6f1c@db/portal",
    ),
    ("PORTAL_SERVICE_TOKEN", "service-token-9d2e"),
    ("PORTAL_SMTP_URL", "smtps://mailer:smtp-pass-3a7b@relay:465"),
    ("PORTAL_ADMIN_PASSWORD", "admin-pass-5c8d"),
    ("PORTAL_TOKEN", "operator-token-1b4f"),
];

#[test]
fn help_never_prints_a_secret_from_the_environment() {
    let commands: [&[&str]; 7] = [
        &["identity", "--help"],
        &["subscription", "--help"],
        &["invitation", "--help"],
        &["migrate", "--help"],
        &["admin", "bootstrap", "--help"],
        &["staff", "import", "--help"],
        &["up", "--help"],
    ];
    for args in commands {
        let output = Command::new(PORTAL)
            .args(args)
            .envs(SECRETS)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&output.stdout);
        for (name, value) in SECRETS {
            assert!(!help.contains(value), "{args:?} prints {name}:\n{help}");
        }
    }
    // The help still names the variables, and the file variants, so operators find them.
    let output = Command::new(PORTAL)
        .args(["invitation", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for name in [
        "PORTAL_DATABASE_URL",
        "PORTAL_DATABASE_URL_FILE",
        "PORTAL_SERVICE_TOKEN_FILE",
        "PORTAL_SMTP_URL_FILE",
    ] {
        assert!(help.contains(name), "{name} missing from:\n{help}");
    }
}

#[test]
fn a_missing_secret_file_is_an_error_naming_its_path_not_a_secret_value() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-token");
    let output = Command::new(PORTAL)
        .arg("invitation")
        .env(
            "PORTAL_DATABASE_URL",
            format!("sqlite:{}", dir.path().join("i.db").display()),
        )
        .env("PORTAL_TOKEN_PUBLIC_KEYS", dir.path().join("k.pem"))
        .env("PORTAL_IDENTITY_URL", "http://127.0.0.1:1")
        .env("PORTAL_SUBSCRIPTION_URL", "http://127.0.0.1:1")
        .env("PORTAL_SERVICE_TOKEN_FILE", &missing)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&missing.display().to_string()),
        "the error does not name the file:\n{stderr}"
    );

    // Naming a secret both ways is refused rather than one silently winning.
    let file = dir.path().join("url");
    std::fs::write(&file, "sqlite:x.db").unwrap();
    let output = Command::new(PORTAL)
        .args(["migrate", "--service", "identity"])
        .env("PORTAL_DATABASE_URL", "sqlite:y.db")
        .env("PORTAL_DATABASE_URL_FILE", &file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be used with"));
}
