//! Prometheus metrics: off by default, served at `/metrics` on the listener `--metrics-listen`
//! names (the real `sealpost serve`), never on the public port; routes appear as their
//! templates, never as the paths clients sent.

use std::process::Command;

use serde_json::json;

use crate::common::{database_url, serve_process};

/// A free local port (bound and let go).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

struct Served {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
    admin: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(more: &[&str]) -> Served {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sealpost.toml"), "[rate_limits]\ndevice_poll = { per_minute = 1, burst = 1 }\n")
        .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sealpost"));
    command
        .arg("serve")
        .args(more)
        .arg("--config")
        .arg(dir.path().join("sealpost.toml"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--database-url", &database_url(dir.path())])
        .args(["--listen", "127.0.0.1:0", "--log-format", "human"])
        .env_remove("SEALPOST_METRICS_LISTEN")
        .current_dir(dir.path());
    let (child, url) = serve_process(command);
    let admin = std::fs::read_to_string(dir.path().join("admin.token")).unwrap().trim().to_owned();
    Served { child, url, _dir: dir, admin }
}

#[tokio::test]
async fn metrics_are_on_their_own_listener_with_route_templates_and_never_on_the_public_port() {
    let port = free_port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let served = serve(&["--metrics-listen", &metrics_addr]);
    let http = reqwest::Client::new();
    // Some traffic: a success, a refusal whose path holds a secret-looking id, a rate-limit hit.
    let r = http.get(format!("{}/api/v1/whoami", served.url)).bearer_auth(&served.admin).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let secretish = "sp_looks-like-a-secret-0123456789";
    let r = http
        .get(format!("{}/api/v1/transfers/{secretish}", served.url))
        .bearer_auth(&served.admin)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    for _ in 0..2 {
        http.post(format!("{}/api/v1/sso/device/token", served.url))
            .json(&json!({"device_code": "nope"}))
            .send()
            .await
            .unwrap();
    }
    // The public port shows nothing operational.
    let public = http.get(format!("{}/metrics", served.url)).send().await.unwrap();
    assert_eq!(public.status().as_u16(), 404);
    assert!(!public.text().await.unwrap().contains("sealpost_http_requests_total"));
    // The metrics listener does.
    let r = http.get(format!("http://{metrics_addr}/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    for want in [
        r#"sealpost_http_requests_total{route="/api/v1/whoami",method="GET",status="200"} 1"#,
        r#"route="/api/v1/transfers/{id}""#,
        r#"sealpost_rate_limited_total{class="device_poll"} 1"#,
        r#"sealpost_refusals_total{code="rate_limited"} 1"#,
        "sealpost_http_response_bytes_total{",
        "sealpost_http_request_bytes_total{",
        "sealpost_log_pending_entries ",
        "sealpost_log_entries ",
        "sealpost_log_checkpoint_age_seconds ",
        "sealpost_db_pool_connections ",
        "sealpost_db_pool_idle_connections ",
    ] {
        assert!(text.contains(want), "no `{want}` in:\n{text}");
    }
    assert!(!text.contains(secretish), "a raw path reached the metrics:\n{text}");
    assert!(!text.contains(&served.admin));
    // Only /metrics there.
    let other = http.get(format!("http://{metrics_addr}/api/v1/whoami")).send().await.unwrap();
    assert_eq!(other.status().as_u16(), 404);
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let served = serve(&[]);
    let http = reqwest::Client::new();
    let public = http.get(format!("{}/metrics", served.url)).send().await.unwrap();
    assert_eq!(public.status().as_u16(), 404);
}

#[test]
fn the_metrics_listener_cannot_be_the_public_port() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .args(["serve", "--listen", "127.0.0.1:18443", "--metrics-listen", "127.0.0.1:18443", "--data-dir"])
        .arg(dir.path())
        .env_remove("SEALPOST_CONFIG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("metrics_listen"), "{stderr}");
}
