//! Clients that send slowly: a body dripped a byte at a time gets `408` once
//! `server.body_timeout_ms` has passed, in the contract's error format, and the
//! connection is closed — before any authentication.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::*;

#[tokio::test]
async fn a_body_sent_too_slowly_gets_408_and_the_connection_is_closed() {
    let app = spawn_app_with(|s| s.server.body_timeout_ms = 300).await;
    let stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect");
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(
            b"POST /introspect HTTP/1.1\r\nHost: tessera\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 16000\r\n\r\ntoken=",
        )
        .await
        .expect("head");
    // One byte every 50 ms: always something on the way, never the whole body.
    let drip = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if write.write_all(b"a").await.is_err() {
                break;
            }
        }
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the server hangs up (bounded, so a regression fails instead of hanging).
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    drip.abort();
    assert!(closed.is_ok(), "the server closed the connection");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap_or_default())
        .expect("a JSON error body");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "the request body did not arrive within 300 ms"
    );
}

#[tokio::test]
async fn a_body_that_arrives_in_time_is_served_as_before() {
    let app = spawn_app_with(|s| s.server.body_timeout_ms = 2000).await;
    let jwt = app.token_for(Some(USER_SESSION)).await;
    assert_eq!(app.introspect(&jwt).await["active"], true);
}
