//! A GitHub stand-in (`harness/github_standin.py`, Python with PyNaCl) on a free
//! 127.0.0.1 port, stopped when dropped or when the test process exits (it
//! serves until its stdin closes, as the moto guard does), and a client of its
//! control API: repositories, organizations, tokens and Apps to set up,
//! secrets to read back in plaintext, key rotation, revoked installation
//! tokens, faults for the next N calls, and the calls it received.
//!
//! The API is under `/api/v3`, as on GitHub Enterprise Server, so the client
//! under test must keep the path of `GITHUB_API_URL`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::moto::{moto_python, repo_root};

pub struct GitHubStandIn {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    _server: Mutex<Child>,
}

/// A secret as the stand-in stored it, opened with the holder's private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub value: String,
    pub key_id: String,
    pub visibility: Option<String>,
    pub updated_at: String,
    pub writes: u64,
}

/// One API call the stand-in answered.
#[derive(Debug, Clone)]
pub struct ApiCall {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Unix seconds, with fractions.
    pub at: f64,
    /// `token`, `installation`, `jwt` or `none`.
    pub auth: String,
}

/// A queued answer for the next `count` calls whose path contains `path`
/// (and whose method is `method`, when given).
#[derive(Debug, Clone, Default)]
pub struct Fault {
    pub status: u16,
    pub count: u32,
    pub path: Option<String>,
    pub method: Option<&'static str>,
    pub message: Option<String>,
    pub headers: Vec<(&'static str, String)>,
    /// A body of its own instead of GitHub's error body with `message`.
    pub body: Option<Value>,
}

impl GitHubStandIn {
    pub fn start() -> Self {
        let python = moto_python();
        let mut child = Command::new(&python)
            .arg(repo_root().join("harness/github_standin.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start the GitHub stand-in with {}: {error}. Run scripts/setup-moto.sh, which installs PyNaCl into .venv",
                    python.display()
                )
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the GitHub stand-in printed no port: {line:?}"));
        Self {
            base: format!("http://127.0.0.1:{port}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
            _server: Mutex::new(child),
        }
    }

    /// What `GITHUB_API_URL` is set to.
    pub fn api_url(&self) -> String {
        format!("{}/api/v3", self.base)
    }

    async fn control(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}/_stand-in/{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn control_ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, reply) = self.control(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "stand-in {method} {path}: {status} {reply}"
        );
        reply
    }

    /// A repository and its environments.
    pub async fn repository(&self, owner: &str, repo: &str, environments: &[&str]) {
        self.control_ok(
            "POST",
            "repos",
            json!({"owner": owner, "repo": repo, "environments": environments}),
        )
        .await;
    }

    pub async fn organization(&self, org: &str) {
        self.control_ok("POST", "orgs", json!({"org": org})).await;
    }

    /// A fine-grained token with write access to `access` (`owner/repo`,
    /// `org:name`, or `*`).
    pub async fn token(&self, access: &[&str]) -> String {
        self.token_with(json!({"access": access})).await
    }

    /// A token that may read secrets' metadata but not write them.
    pub async fn read_only_token(&self, access: &[&str]) -> String {
        self.token_with(json!({"access": access, "write": false}))
            .await
    }

    async fn token_with(&self, request: Value) -> String {
        self.control_ok("POST", "tokens", request).await["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A GitHub App installed with access to `access`: the credentials
    /// document GitHub's settings page gives (`app_id`, `client_id`,
    /// `installation_id`, `private_key` as PKCS#1 PEM, or PKCS#8 when asked).
    pub async fn app(&self, access: &[&str], pkcs8: bool) -> Value {
        let format = if pkcs8 { "pkcs8" } else { "pkcs1" };
        self.control_ok(
            "POST",
            "apps",
            json!({"access": access, "key_format": format}),
        )
        .await
    }

    /// The secret `name` of `holder` (`repos/o/r`, `repos/o/r/environments/e`,
    /// `orgs/o`), opened with the holder's private key.
    /// An organization secret made `selected` in GitHub's settings, open to
    /// the repositories `ids` (its value empty until a write).
    pub async fn select_repositories(&self, org: &str, name: &str, ids: &[u64]) {
        self.control_ok(
            "POST",
            "select-repositories",
            json!({"holder": format!("orgs/{org}"), "name": name, "ids": ids}),
        )
        .await;
    }

    /// The repositories a `selected` organization secret is open to.
    pub async fn selected_repositories(&self, org: &str, name: &str) -> Vec<u64> {
        let (status, reply) = self
            .control("GET", &format!("selected/orgs/{org}/{name}"), Value::Null)
            .await;
        assert_eq!(status, 200, "{reply}");
        reply["ids"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_u64)
            .collect()
    }

    pub async fn secret(&self, holder: &str, name: &str) -> Option<StoredSecret> {
        let path = format!(
            "secrets/{}/{}",
            holder
                .split('/')
                .map(encode_segment)
                .collect::<Vec<_>>()
                .join("/"),
            encode_segment(name)
        );
        let (status, body) = self.control("GET", &path, Value::Null).await;
        if status == 404 {
            return None;
        }
        Some(StoredSecret {
            value: body["value"].as_str()?.to_string(),
            key_id: body["key_id"].as_str()?.to_string(),
            visibility: body["visibility"].as_str().map(str::to_string),
            updated_at: body["updated_at"].as_str()?.to_string(),
            writes: body["writes"].as_u64()?,
        })
    }

    /// A new key pair for `holder`: writes naming the old `key_id` get 422.
    pub async fn rotate_key(&self, holder: &str) -> String {
        self.control_ok("POST", "rotate-key", json!({"holder": holder}))
            .await["key_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Every installation token issued so far stops working (401).
    pub async fn revoke_installation_tokens(&self) -> u64 {
        self.control_ok("POST", "revoke-installation-tokens", json!({}))
            .await["revoked"]
            .as_u64()
            .unwrap()
    }

    pub async fn fail_next(&self, fault: Fault) {
        let headers: serde_json::Map<String, Value> = fault
            .headers
            .iter()
            .map(|(name, value)| (name.to_string(), json!(value)))
            .collect();
        self.control_ok(
            "POST",
            "faults",
            json!({
                "status": fault.status,
                "count": fault.count,
                "path": fault.path,
                "method": fault.method,
                "message": fault.message,
                "headers": headers,
                "body": fault.body,
            }),
        )
        .await;
    }

    /// GitHub's primary rate limit, biting: `limit` calls per `window`, then
    /// 403 with `x-ratelimit-remaining: 0` until the window's reset.
    pub async fn rate_limit(&self, limit: u32, window: std::time::Duration) {
        self.control_ok(
            "POST",
            "rate-limit",
            json!({"limit": limit, "window": window.as_secs_f64()}),
        )
        .await;
    }

    /// Calls refused by the rate limit so far.
    pub async fn rate_limited_calls(&self) -> u64 {
        self.control_ok("GET", "calls", Value::Null).await["rate_limited"]
            .as_u64()
            .unwrap_or(0)
    }

    /// The permissions each installation token was granted, in order.
    pub async fn installation_token_permissions(&self) -> Vec<Value> {
        self.control_ok("GET", "calls", Value::Null).await["installation_permissions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Kills `pid` (SIGKILL) right after the `after`-th API call from now on
    /// took effect, and leaves that call unanswered: the crash tests.
    pub async fn crash_after(&self, after: usize, pid: u32) {
        self.control_ok("POST", "crash-after", json!({"after": after, "pid": pid}))
            .await;
    }

    /// No crash point.
    pub async fn no_crash(&self) {
        self.control_ok("POST", "crash-after", json!({"after": null}))
            .await;
    }

    /// The API calls answered so far, in order.
    pub async fn calls(&self) -> Vec<ApiCall> {
        let body = self.control_ok("GET", "calls", Value::Null).await;
        body["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|call| ApiCall {
                method: call["method"].as_str().unwrap().to_string(),
                path: call["path"].as_str().unwrap().to_string(),
                status: call["status"].as_u64().unwrap() as u16,
                at: call["at"].as_f64().unwrap(),
                auth: call["auth"].as_str().unwrap().to_string(),
            })
            .collect()
    }
}

/// Percent-encodes what a path segment cannot hold as it is.
fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
