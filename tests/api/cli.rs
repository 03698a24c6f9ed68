//! The binary: configuration errors stop it with one line naming the key.

use std::process::Command;

fn tessera(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args).env_remove("TESSERA_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run tessera")
}

#[test]
fn check_config_accepts_the_demo_configuration() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml");
    let out = tessera(&["--config", demo, "check-config"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_the_key() {
    let out = tessera(&["serve"], &[("TESSERA__KEYS__RSA_BITS", "1024")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("keys.rsa_bits"), "{stderr}");
}

#[test]
fn check_config_warns_about_a_client_maximum_above_the_global_one_and_accepts_it() {
    let mut config = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("config");
    let toml = format!(
        "[token]\nttl_seconds = 5\nmax_ttl_seconds = 5\n[[clients]]\nid = \"gw\"\nsecret_sha256 = \"{}\"\nmax_ttl_seconds = 600\n",
        "0".repeat(64)
    );
    std::io::Write::write_all(&mut config, toml.as_bytes()).expect("write");
    let path = config.path().to_str().expect("utf-8");
    let out = tessera(&["--config", path, "check-config"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("warning"), "{stderr}");
    assert!(stderr.contains("clients[0].max_ttl_seconds"), "{stderr}");
}

#[test]
fn a_missing_config_file_is_named() {
    let out = tessera(
        &["--config", "/nonexistent/tessera.toml", "check-config"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tessera.toml"));
}

#[test]
fn hash_secret_prints_the_sha256_for_the_configuration() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("hash-secret")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"demo-gateway-secret\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "6573306c7f45369b2cf77c3286f2683ae5dfaf9f8135895401621a7f543cd140"
    );
}

#[test]
fn sigterm_stops_the_server_gracefully_with_exit_code_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve"])
        .env("TESSERA__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("TESSERA__KEYS__DIR", dir.path().join("keys"))
        .env("TESSERA__SERVER__SHUTDOWN_GRACE_SECONDS", "5")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let started = std::time::Instant::now();
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "exit code {:?}", out.status.code());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "within the grace period"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("shutting down"));
}
