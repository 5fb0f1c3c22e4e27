//! Evidence for the suite-wide secret scan (`scripts/scan-test-logs.sh`).

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use crate::moto::repo_root;

/// Where the evidence goes: every
/// line the function logged or answered, in-process or as a binary, and every
/// secret it handled, one file pair per test process under target/test-evidence.
pub fn evidence_dir() -> PathBuf {
    repo_root().join("target/test-evidence")
}

fn evidence_file(extension: &str) -> &'static Mutex<std::fs::File> {
    static LOG: OnceLock<Mutex<std::fs::File>> = OnceLock::new();
    static SECRETS: OnceLock<Mutex<std::fs::File>> = OnceLock::new();
    let cell = if extension == "log" { &LOG } else { &SECRETS };
    cell.get_or_init(|| {
        std::fs::create_dir_all(evidence_dir()).unwrap();
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_stem().unwrap().to_string_lossy().to_string();
        let path = evidence_dir().join(format!("{name}-{}.{extension}", std::process::id()));
        Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap(),
        )
    })
}

fn append(extension: &str, text: &str) {
    use std::io::Write;
    let mut file = evidence_file(extension).lock().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    if !text.ends_with('\n') {
        file.write_all(b"\n").unwrap();
    }
}

/// A secret the function handled, which no log line may contain.
pub fn record_issued_secret(secret: &str) {
    append("secrets", secret);
}

/// Something the function logged or answered.
pub fn record_log(text: &str) {
    append("log", text);
}

/// Writes the in-process handler's logs, formatted by the Lambda runtime's own
/// subscriber, into this process's evidence log.
#[derive(Clone, Copy)]
pub struct EvidenceWriter;

impl std::io::Write for EvidenceWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        evidence_file("log").lock().unwrap().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn capture_handler_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        lambda_runtime::tracing::init_default_subscriber_with_writer(|| EvidenceWriter)
    });
}
