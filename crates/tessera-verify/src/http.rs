//! The HTTP client the verifier talks to Tessera with.
//!
//! Invariant: no process-wide state is touched. The TLS configuration is built with an
//! explicit aws-lc-rs `CryptoProvider` and handed to reqwest preconfigured, so the
//! process's default rustls provider is neither read nor installed; certificates are
//! checked by the platform verifier (the system's roots), as reqwest does by default.

use std::sync::Arc;
use std::time::Duration;

use rustls_platform_verifier::BuilderVerifierExt as _;

use crate::SetupError;

pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, SetupError> {
    build(reqwest::Client::builder().timeout(timeout))
}

/// For a long-lived stream: no bound on the whole request, only on connecting and on the
/// wait for each read (a silent connection is given up after `read_timeout`).
pub(crate) fn streaming_client(
    connect_timeout: Duration,
    read_timeout: Duration,
) -> Result<reqwest::Client, SetupError> {
    build(
        reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout),
    )
}

fn build(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, SetupError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(|e| SetupError::Http(Box::new(e)))?
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    builder
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| SetupError::Http(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn building_a_client_leaves_the_process_default_tls_provider_alone() {
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
        client(Duration::from_secs(1)).expect("client");
        assert!(
            rustls::crypto::CryptoProvider::get_default().is_none(),
            "no provider was installed process-wide"
        );
    }
}
