//! One moto server per test process, started on first use on a free 127.0.0.1
//! port and stopped when the process exits, and SDK configuration pointed at it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use aws_config::BehaviorVersion;
use aws_sdk_secretsmanager::config::Credentials;

use crate::REGION;

/// A moto server started for this test binary. The child holds the write end of
/// the guard's stdin; the guard stops moto when this process exits.
pub struct Moto {
    pub endpoint: String,
    _guard: Option<Mutex<Child>>,
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Where moto records the calls the functions under test make, for the
/// least-privilege check (`harness/moto_server.py`, `tools/iam-check`).
pub fn authz_log() -> PathBuf {
    std::env::var_os("AUTHZ_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/test-evidence/authz-calls.jsonl"))
}

/// The Python that has the pinned moto (`scripts/test.sh` makes `.venv`).
pub fn moto_python() -> PathBuf {
    std::env::var_os("MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"))
}

/// The moto server every test shares; or, with `MOTO_ENDPOINT` set, the one
/// already running there (`scripts/demo.sh --keep` starts one that outlives
/// the demo).
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| match std::env::var("MOTO_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Moto {
            endpoint,
            _guard: None,
        },
        _ => Moto::start(),
    })
}

impl Moto {
    /// A moto server of its own, for a test that must see a whole account (the
    /// sweep lists every secret): stopped when dropped.
    pub fn start() -> Self {
        let python = moto_python();
        let mut child = Command::new(&python)
            .arg(repo_root().join("harness/moto_guard.py"))
            .env("AUTHZ_LOG", authz_log())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start moto with {}: {error}. Run scripts/test.sh, which installs it into .venv",
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
            .unwrap_or_else(|_| panic!("moto guard printed no port: {line:?}"));
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            _guard: Some(Mutex::new(child)),
        }
    }
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    sdk_config_as(endpoint, "testing").await
}

/// The access key id the rotation function signs with in the tests (in-process
/// and as a binary), and the audit function's: moto records their calls for the
/// least-privilege check, and the test's own set-up calls stay out of it.
pub const ROTATION_FUNCTION_KEY: &str = "rotation-function";
pub const AUDIT_FUNCTION_KEY: &str = "audit-function";
/// The delivery function's (SPEC 14).
pub const DELIVERY_FUNCTION_KEY: &str = "delivery-function";

/// SDK configuration signing with `access_key_id` (moto accepts any).
pub async fn sdk_config_as(endpoint: &str, access_key_id: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(REGION)
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            access_key_id,
            "testing",
            None,
            None,
            "tests",
        ))
        .load()
        .await
}
