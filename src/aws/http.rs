//! One HTTPS client for every AWS client of the process.
//!
//! Left to itself, each SDK client (`Client::from_conf`) builds its own default
//! HTTPS client: its own connection pool and its own rustls configuration, with
//! the root store parsed again. The key proofs (an STS client per key under
//! test) and the assumed-role clients then open a connection, and pay a
//! handshake, of their own. One client set on the shared configuration is
//! shared by every client derived from it, so a process makes one connection
//! per AWS endpoint and parses the roots once. At Lambda's 128 MB CPU share
//! each handshake avoided is tens of milliseconds (docs/performance.md).

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The SDK's own default HTTPS client (rustls with AWS-LC, the system's root
/// store and `SSL_CERT_FILE`, `HTTPS_PROXY` and `NO_PROXY`, the configured
/// timeouts), built once to be shared.
pub fn shared_https_client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, runtime_components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}
