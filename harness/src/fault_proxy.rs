//! A fault-injecting HTTP proxy between the function and moto, on 127.0.0.1.
//!
//! The function reaches it through the SDK's own endpoint setting
//! (`AWS_ENDPOINT_URL`, or `endpoint_url` for the in-process handler) and cannot
//! tell it from AWS. It covers what moto does not simulate:
//! - a crash right after the k-th call took effect upstream: the proxy forwards
//!   the call, kills the function process, and never answers;
//! - IAM's propagation delay: `GetCallerIdentity` signed with a key younger than
//!   the delay is answered `InvalidClientTokenId`, as AWS does;
//! - Inactive and deleted keys, which moto's STS accepts, are rejected;
//! - signatures, which moto never checks: `GetCallerIdentity` signed with a
//!   secret other than the key's (as far as the proxy knows it) is answered
//!   `SignatureDoesNotMatch`, as AWS does;
//! - throttling (`Throttling` for IAM/STS, `ThrottlingException` for Secrets
//!   Manager) and 5xx errors on a chosen share of calls, before they take effect;
//! - a record of every call, for counting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

/// One call the function made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub service: String,
    pub operation: String,
    /// The access key that signed the call.
    pub access_key_id: String,
    /// What the proxy did instead of a plain forward, if anything.
    pub fault: Option<&'static str>,
    /// When the proxy received the call.
    pub at: Instant,
}

/// What to inject. Changed by the test between invocations.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Kill this process right after the call with this 1-based number (counted
    /// over all calls the proxy saw) has succeeded upstream.
    pub crash_after_call: Option<(usize, u32)>,
    /// How long a new key is refused by STS after `CreateAccessKey` returned it.
    pub propagation_delay: Duration,
    /// Refuse Inactive and unknown keys in STS, as AWS does.
    pub reject_unusable_keys: bool,
    /// Answer every n-th call with a throttling error, without forwarding it.
    pub throttle_every: Option<usize>,
    /// Answer runs of consecutive requests to one service with a throttling
    /// error, without forwarding them (transient throttles, as a busy moment of
    /// IAM gives).
    pub throttle_runs: Vec<ThrottleRun>,
    /// Answer every n-th call with a 5xx error, without forwarding it.
    pub server_error_every: Option<usize>,
    /// Account-wide rate limits, as AWS enforces them: (service as signed, e.g.
    /// "iam", calls per second). Calls beyond the rate are throttled, without
    /// being forwarded, whichever process makes them.
    pub rate_limits: Vec<(&'static str, f64)>,
    /// Apply `rate_limits` per signing key rather than to everyone: one bucket per
    /// account, as AWS throttles IAM per account (each account of an organization
    /// is read with a session key of its own).
    pub rate_limit_per_key: bool,
    /// Added to every call before it is forwarded: AWS's network round trip,
    /// which moto on the same machine does not have.
    pub latency: Duration,
    /// Answer every call of this operation with AccessDenied.
    pub deny_operation: Option<&'static str>,
    /// The same, for several operations (a read refused whichever way it is
    /// asked, say `BatchGetSecretValue` and `GetSecretValue`).
    pub deny_operations: Vec<&'static str>,
    /// Answer `AssumeRole` into any of these role ARNs with AccessDenied: a
    /// member account whose role is missing or does not trust the caller.
    pub deny_assume_role_into: Vec<String>,
    /// Answer every call of this operation with a 5xx, without forwarding it
    /// (the caller cannot tell whether it took effect).
    pub fail_operation: Option<&'static str>,
    /// Answer every call of this operation (first) with this error code, as a
    /// 400 (`ExpiredToken`, say).
    pub answer_operation: Option<(&'static str, &'static str)>,
    /// Answer the first `n` calls of this operation (counted since the calls
    /// were last cleared) with this error code, as a 400: what another
    /// process saw a moment before the state changed under it.
    pub answer_first: Option<(&'static str, &'static str, usize)>,
    /// Hold every call of this operation this long before forwarding it: a
    /// window for another writer to act in between a caller's look and write.
    pub delay_operation: Option<(&'static str, Duration)>,
    /// Check the SigV4 signature of `GetCallerIdentity` against the key's secret
    /// (one created through the proxy, or given by [`FaultProxy::know_secret`]);
    /// a wrong or unknown secret is refused.
    pub verify_signatures: bool,
}

/// Requests to `service` (as signed, e.g. "iam") numbered `first` up to
/// `first + times - 1` (1-based, counted over that service's requests since the
/// calls were last cleared) are throttled: with `times` 3 and callers that make
/// one call at a time, the first three attempts at one call.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleRun {
    pub service: &'static str,
    pub first: usize,
    pub times: usize,
}

impl ThrottleRun {
    fn covers(&self, service: &str, number_in_service: usize) -> bool {
        service == self.service
            && (self.first..self.first + self.times).contains(&number_in_service)
    }
}

struct State {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    iam: aws_sdk_iam::Client,
    plan: Mutex<FaultPlan>,
    calls: Mutex<Vec<Call>>,
    /// One token bucket per rate-limited service.
    buckets: Mutex<HashMap<String, TokenBucket>>,
    /// When each key the proxy saw created was handed out.
    created: Mutex<HashMap<String, Instant>>,
    /// The secret of each key the proxy saw created.
    issued: Mutex<HashMap<String, String>>,
}

pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (moto's endpoint).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let config = crate::sdk_config(upstream).await;
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            iam: aws_sdk_iam::Client::new(&config),
            plan: Mutex::new(FaultPlan::default()),
            calls: Mutex::new(Vec::new()),
            buckets: Mutex::new(HashMap::new()),
            created: Mutex::new(HashMap::new()),
            issued: Mutex::new(HashMap::new()),
        });
        let server = crate::local_http::serve(listener, state.clone(), handle);
        Self {
            endpoint,
            state,
            server,
        }
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        *self.state.plan.lock().unwrap() = plan;
    }

    pub fn update_plan(&self, change: impl FnOnce(&mut FaultPlan)) {
        change(&mut self.state.plan.lock().unwrap());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// The secret IAM returned for a key created through the proxy.
    pub fn issued_secret(&self, key_id: &str) -> Option<String> {
        self.state.issued.lock().unwrap().get(key_id).cloned()
    }

    /// When `CreateAccessKey` returned the key.
    pub fn created_at(&self, key_id: &str) -> Option<Instant> {
        self.state.created.lock().unwrap().get(key_id).copied()
    }

    pub fn issued_secrets(&self) -> Vec<String> {
        self.state
            .issued
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect()
    }

    /// Tells the proxy the secret of a key created without it (by the test).
    pub fn know_secret(&self, key_id: &str, secret: &str) {
        self.state
            .issued
            .lock()
            .unwrap()
            .insert(key_id.to_string(), secret.to_string());
    }

    pub fn clear_calls(&self) {
        self.state.calls.lock().unwrap().clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A token bucket holding at most one second's worth of calls, refilled at the
/// rate: bursts up to the rate pass, a sustained excess is throttled.
struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl State {
    /// Whether an account-wide rate limit refuses this call now.
    fn over_rate_limit(&self, plan: &FaultPlan, service: &str, key: &str) -> bool {
        let Some(&(_, per_second)) = plan.rate_limits.iter().find(|(s, _)| *s == service) else {
            return false;
        };
        let bucket_name = if plan.rate_limit_per_key {
            format!("{service} {key}")
        } else {
            service.to_string()
        };
        let mut buckets = self.buckets.lock().unwrap();
        let bucket = buckets.entry(bucket_name).or_insert_with(|| TokenBucket {
            tokens: per_second,
            updated: Instant::now(),
        });
        let now = Instant::now();
        let refill = now.duration_since(bucket.updated).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refill).min(per_second);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            false
        } else {
            true
        }
    }
}

/// What the proxy reads from a signed AWS request.
struct Parsed {
    service: String,
    operation: String,
    access_key_id: String,
}

fn parse(request: &hyper::http::request::Parts, body: &[u8]) -> Parsed {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    // Authorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/iam/aws4_request, ...
    let authorization = header("authorization");
    let scope: Vec<&str> = authorization
        .split("Credential=")
        .nth(1)
        .unwrap_or_default()
        .split(',')
        .next()
        .unwrap_or_default()
        .split('/')
        .collect();
    let access_key_id = scope.first().copied().unwrap_or_default().to_string();
    let service = scope.get(3).copied().unwrap_or_default().to_string();
    let target = header("x-amz-target");
    let operation = match target.split_once('.') {
        Some((_, operation)) => operation.to_string(),
        None => form_value(body, "Action").unwrap_or_default(),
    };
    Parsed {
        service,
        operation,
        access_key_id,
    }
}

fn form_value(body: &[u8], name: &str) -> Option<String> {
    std::str::from_utf8(body).ok()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_string())
    })
}

fn xml_value(body: &str, tag: &str) -> Option<String> {
    let start = body.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].to_string())
}

fn error_response(
    service: &str,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response<Full<Bytes>> {
    // Secrets Manager and EventBridge speak JSON; IAM and STS answer in XML.
    let (content_type, body) = if service == "secretsmanager" || service == "events" {
        (
            "application/x-amz-json-1.1",
            format!(r#"{{"__type":"{code}","message":"{message}"}}"#),
        )
    } else {
        (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
            ),
        )
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", content_type.parse().unwrap());
    if service == "secretsmanager" {
        response
            .headers_mut()
            .insert("x-amzn-errortype", code.parse().unwrap());
    }
    response
}

/// Whether STS should refuse the key: too young, Inactive, or unknown.
async fn sts_refuses(state: &State, plan: &FaultPlan, key_id: &str) -> bool {
    let created = state.created.lock().unwrap().get(key_id).copied();
    if let Some(created) = created
        && created.elapsed() < plan.propagation_delay
    {
        return true;
    }
    if !plan.reject_unusable_keys {
        return false;
    }
    let Ok(last_used) = state
        .iam
        .get_access_key_last_used()
        .access_key_id(key_id)
        .send()
        .await
    else {
        return true;
    };
    let Some(user) = last_used.user_name() else {
        return true;
    };
    let Ok(keys) = state.iam.list_access_keys().user_name(user).send().await else {
        return true;
    };
    !keys.access_key_metadata().iter().any(|key| {
        key.access_key_id() == Some(key_id)
            && key.status() == Some(&aws_sdk_iam::types::StatusType::Active)
    })
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let parsed = parse(&parts, &body);
    let plan = state.plan.lock().unwrap().clone();
    let (number, number_in_service) = {
        let mut calls = state.calls.lock().unwrap();
        calls.push(Call {
            service: parsed.service.clone(),
            operation: parsed.operation.clone(),
            access_key_id: parsed.access_key_id.clone(),
            fault: None,
            at: Instant::now(),
        });
        let in_service = calls
            .iter()
            .filter(|call| call.service == parsed.service)
            .count();
        (calls.len(), in_service)
    };
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    if let Some((_, delay)) = plan
        .delay_operation
        .filter(|(operation, _)| *operation == parsed.operation)
    {
        tokio::time::sleep(delay).await;
    }
    let set_fault = |fault: &'static str| {
        state.calls.lock().unwrap()[number - 1].fault = Some(fault);
    };

    let answered_first = plan.answer_first.and_then(|(operation, code, n)| {
        let seen = state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|call| call.operation == operation)
            .count();
        (operation == parsed.operation && seen <= n).then_some((operation, code))
    });
    if let Some((_, code)) = plan
        .answer_operation
        .filter(|(operation, _)| *operation == parsed.operation)
        .or(answered_first)
    {
        set_fault("answered");
        return Ok(error_response(
            &parsed.service,
            StatusCode::BAD_REQUEST,
            code,
            "The security token included in the request is expired",
        ));
    }
    let denied_role = parsed.operation == "AssumeRole"
        && form_value(&body, "RoleArn").is_some_and(|role| {
            let role = role.replace("%3A", ":").replace("%2F", "/");
            plan.deny_assume_role_into.contains(&role)
        });
    if plan.deny_operation == Some(parsed.operation.as_str())
        || plan.deny_operations.contains(&parsed.operation.as_str())
        || denied_role
    {
        set_fault("denied");
        return Ok(error_response(
            &parsed.service,
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "User is not authorized to perform this operation",
        ));
    }
    if plan.throttle_every.is_some_and(|n| number % n == 0)
        || plan
            .throttle_runs
            .iter()
            .any(|run| run.covers(&parsed.service, number_in_service))
        || state.over_rate_limit(&plan, &parsed.service, &parsed.access_key_id)
    {
        set_fault("throttled");
        let code = if parsed.service == "secretsmanager" {
            "ThrottlingException"
        } else {
            "Throttling"
        };
        return Ok(error_response(
            &parsed.service,
            StatusCode::BAD_REQUEST,
            code,
            "Rate exceeded",
        ));
    }
    if plan.server_error_every.is_some_and(|n| number % n == 0)
        || plan.fail_operation == Some(parsed.operation.as_str())
    {
        set_fault("server error");
        let code = if parsed.service == "secretsmanager" {
            "InternalServiceError"
        } else {
            "ServiceUnavailable"
        };
        return Ok(error_response(
            &parsed.service,
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            "Service unavailable",
        ));
    }
    if parsed.operation == "GetCallerIdentity" && plan.verify_signatures {
        let secret = state
            .issued
            .lock()
            .unwrap()
            .get(&parsed.access_key_id)
            .cloned();
        if !secret.is_some_and(|secret| crate::sigv4::signed_with(&parts, &body, &secret)) {
            set_fault("bad signature");
            return Ok(error_response(
                "sts",
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            ));
        }
    }
    if parsed.operation == "GetCallerIdentity"
        && sts_refuses(&state, &plan, &parsed.access_key_id).await
    {
        set_fault("key refused");
        return Ok(error_response(
            "sts",
            StatusCode::FORBIDDEN,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ));
    }

    let (status, headers, upstream_body) = forward(&state, &parts, body).await?;
    if parsed.operation == "CreateAccessKey" {
        let text = String::from_utf8_lossy(&upstream_body);
        if let (Some(key_id), Some(secret)) = (
            xml_value(&text, "AccessKeyId"),
            xml_value(&text, "SecretAccessKey"),
        ) {
            state
                .created
                .lock()
                .unwrap()
                .insert(key_id.clone(), Instant::now());
            crate::record_issued_secret(&secret);
            state.issued.lock().unwrap().insert(key_id, secret);
        }
    }
    if let Some((crash_at, pid)) = plan.crash_after_call
        && crash_at == number
    {
        set_fault("crashed after");
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
        return Err("the function was killed".into());
    }
    let mut response = Response::new(Full::new(upstream_body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

async fn forward(
    state: &State,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Result<(StatusCode, hyper::HeaderMap, Bytes), Box<dyn std::error::Error + Send + Sync>> {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut builder = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{}{path}", state.upstream));
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let response = state.client.request(builder.body(Full::new(body))?).await?;
    let status = response.status();
    let mut headers = response.headers().clone();
    // Hop-by-hop headers are the upstream connection's, not the client's
    // (RFC 9110 7.6.1): moto answers every request with `Connection: close`,
    // which, passed on, made every call through the proxy a new connection
    // (and over the TLS front a new handshake), where AWS keeps them alive.
    for hop_by_hop in [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
    ] {
        headers.remove(hop_by_hop);
    }
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, headers, body))
}
