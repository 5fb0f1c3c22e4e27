//! A small Lambda Runtime API on 127.0.0.1, enough to run the real `bootstrap`
//! binary as Lambda would: it serves `GET /invocation/next`, takes the response or
//! error the function posts back, and records an init error.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

const PREFIX: &str = "/2018-06-01/runtime";

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Response(Value),
    /// The function error: `{"errorType": ..., "errorMessage": ...}`.
    Error(Value),
}

struct Event {
    request_id: String,
    payload: Value,
    deadline_ms: u64,
}

struct State {
    events: Mutex<mpsc::Receiver<Event>>,
    replies: std::sync::Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    polled: Notify,
    first_poll: std::sync::OnceLock<std::time::Instant>,
    init_error: std::sync::Mutex<Option<Value>>,
    /// The ARN each invocation is said to be made by.
    function_arn: std::sync::Mutex<String>,
}

pub struct RuntimeApi {
    address: SocketAddr,
    state: Arc<State>,
    sender: mpsc::Sender<Event>,
    next_id: AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (sender, receiver) = mpsc::channel(16);
        let state = Arc::new(State {
            events: Mutex::new(receiver),
            replies: std::sync::Mutex::new(HashMap::new()),
            polled: Notify::new(),
            first_poll: std::sync::OnceLock::new(),
            init_error: std::sync::Mutex::new(None),
            function_arn: std::sync::Mutex::new(crate::FUNCTION_ARN.to_string()),
        });
        let server = crate::local_http::serve(listener, state.clone(), route);
        Self {
            address,
            state,
            sender,
            next_id: AtomicU64::new(1),
            server,
        }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Invocations from now on are made by `function_arn` (default
    /// [`crate::FUNCTION_ARN`]), as if the function had that name.
    pub fn set_function_arn(&self, function_arn: &str) {
        *self.state.function_arn.lock().unwrap() = function_arn.to_string();
    }

    /// Waits until a function polls for its next event (it has finished its init).
    pub async fn wait_for_poll(&self) {
        self.state.polled.notified().await
    }

    /// When a function first asked for an event: the end of its cold start.
    pub async fn first_poll(&self, timeout: Duration) -> Option<std::time::Instant> {
        let until = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < until {
            if let Some(at) = self.state.first_poll.get() {
                return Some(*at);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        None
    }

    pub fn init_error(&self) -> Option<Value> {
        self.state.init_error.lock().unwrap().clone()
    }

    /// Queues one invocation and waits for its reply; `None` if none came within
    /// `timeout` (the function died or hung), which is also the invocation's
    /// deadline as the function sees it.
    pub async fn invoke(&self, payload: Value, timeout: Duration) -> Option<Reply> {
        let request_id = format!("req-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (reply_to, reply) = oneshot::channel();
        self.state
            .replies
            .lock()
            .unwrap()
            .insert(request_id.clone(), reply_to);
        let deadline_ms = now_ms() + timeout.as_millis() as u64;
        self.sender
            .send(Event {
                request_id: request_id.clone(),
                payload,
                deadline_ms,
            })
            .await
            .unwrap();
        let reply = tokio::time::timeout(timeout, reply)
            .await
            .ok()
            .and_then(Result::ok);
        self.state.replies.lock().unwrap().remove(&request_id);
        reply
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

async fn route(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(respond(StatusCode::NOT_FOUND, "unknown path"));
    };
    if method == Method::GET && rest == "/invocation/next" {
        state.first_poll.get_or_init(std::time::Instant::now);
        state.polled.notify_waiters();
        let Some(event) = state.events.lock().await.recv().await else {
            return Ok(respond(StatusCode::GONE, "shutting down"));
        };
        let mut response = respond(StatusCode::OK, event.payload.to_string());
        let headers = response.headers_mut();
        headers.insert(
            "lambda-runtime-aws-request-id",
            event.request_id.parse().unwrap(),
        );
        headers.insert(
            "lambda-runtime-deadline-ms",
            event.deadline_ms.to_string().parse().unwrap(),
        );
        headers.insert(
            "lambda-runtime-invoked-function-arn",
            state.function_arn.lock().unwrap().parse().unwrap(),
        );
        headers.insert(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".parse().unwrap(),
        );
        headers.insert("content-type", "application/json".parse().unwrap());
        return Ok(response);
    }
    if method != Method::POST {
        return Ok(respond(StatusCode::NOT_FOUND, "unknown path"));
    }
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if rest == "/init/error" {
        *state.init_error.lock().unwrap() = Some(json);
        return Ok(respond(StatusCode::ACCEPTED, "{}"));
    }
    let Some(rest) = rest.strip_prefix("/invocation/") else {
        return Ok(respond(StatusCode::NOT_FOUND, "unknown path"));
    };
    let (request_id, reply) = match rest.rsplit_once('/') {
        Some((id, "response")) => (id, Reply::Response(json)),
        Some((id, "error")) => (id, Reply::Error(json)),
        _ => return Ok(respond(StatusCode::NOT_FOUND, "unknown path")),
    };
    if let Some(reply_to) = state.replies.lock().unwrap().remove(request_id) {
        let _ = reply_to.send(reply);
    }
    Ok(respond(StatusCode::ACCEPTED, "{}"))
}
