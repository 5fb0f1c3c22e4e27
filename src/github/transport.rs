//! One HTTPS exchange with GitHub, over the same HTTP stack the AWS SDK ships
//! in this binary (`aws-smithy-http-client`: hyper 1 and rustls with AWS-LC, the
//! system's roots and `SSL_CERT_FILE`, `HTTPS_PROXY`/`NO_PROXY`), so GitHub adds
//! no second TLS stack, root store or connection pool implementation. Every
//! exchange is counted: calls per delivered target is one of delivery's
//! figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Connector, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use serde_json::Value;

use super::rate_limit::RateHeaders;
use crate::sensitive::Sensitive;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// GitHub's REST API version this client was written against.
const API_VERSION: &str = "2022-11-28";
const USER_AGENT: &str = concat!("iam-key-rotation/", env!("CARGO_PKG_VERSION"));
/// Longest `message` of GitHub's kept for an error.
const MAX_MESSAGE_CHARS: usize = 300;

/// GitHub's answer: status, rate-limit headers, body.
#[derive(Debug)]
pub(super) struct Reply {
    pub status: u16,
    pub rate: RateHeaders,
    body: Vec<u8>,
}

impl Reply {
    /// The JSON body, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// GitHub's `message` of an error response, cut short and on one line;
    /// never any other part of a body (a 2xx body may hold a token).
    pub fn message(&self) -> String {
        let message = self
            .json()
            .and_then(|body| {
                body.get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let mut message: String = message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_MESSAGE_CHARS)
            .collect();
        if message.is_empty() {
            message = "no message".into();
        }
        message
    }
}

pub(super) struct Transport {
    connector: Connector,
    calls: AtomicU64,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("calls", &self.calls())
            .finish()
    }
}

impl Transport {
    pub fn new() -> Self {
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build();
        let connector = ConnectorBuilder::default()
            .connector_settings(settings)
            .proxy_config(ProxyConfig::from_env())
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .build();
        Self {
            connector,
            calls: AtomicU64::new(0),
        }
    }

    /// Every exchange this transport attempted.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Sends one request. The error is a transport failure in words that hold
    /// no header (the authorization is the one header that matters here).
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        authorization: &Sensitive,
        body: Option<&str>,
    ) -> Result<Reply, String> {
        let request = build_request(method, url, authorization, body)?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let response = self
            .connector
            .call(request)
            .await
            .map_err(|error| describe_connector_error(&error))?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.trim().parse().ok())
        };
        let rate = RateHeaders {
            remaining: number("x-ratelimit-remaining"),
            reset: headers
                .get("x-ratelimit-reset")
                .and_then(|value| value.trim().parse().ok()),
            retry_after: number("retry-after"),
        };
        let body = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|_| "the connection broke while reading GitHub's answer".to_string())?
            .into_bytes()
            .to_vec();
        Ok(Reply { status, rate, body })
    }
}

fn build_request(
    method: &str,
    url: &str,
    authorization: &Sensitive,
    body: Option<&str>,
) -> Result<HttpRequest, String> {
    let mut request =
        HttpRequest::new(body.map_or_else(SdkBody::empty, |body| SdkBody::from(body.to_string())));
    request
        .set_method(method)
        .map_err(|_| format!("{method} is not an HTTP method"))?;
    request
        .set_uri(url)
        .map_err(|_| "the request URL is not valid (check GITHUB_API_URL)".to_string())?;
    let headers = request.headers_mut();
    let bearer = format!("Bearer {}", authorization.expose());
    for (name, value) in [
        ("accept", "application/vnd.github+json"),
        ("x-github-api-version", API_VERSION),
        ("user-agent", USER_AGENT),
        ("authorization", bearer.as_str()),
    ] {
        headers
            .try_insert(name.to_string(), value.to_string())
            .map_err(|_| format!("the {name} header cannot be sent as it is"))?;
    }
    if body.is_some() {
        headers
            .try_insert("content-type", "application/json")
            .map_err(|_| "the content-type header cannot be sent".to_string())?;
    }
    Ok(request)
}

/// A connector error and its sources, in one line.
fn describe_connector_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut words = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !words.contains(&text) {
            words.push_str(": ");
            words.push_str(&text);
        }
        source = cause.source();
    }
    words
}
