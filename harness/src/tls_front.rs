//! A TLS front for a local endpoint, so the function pays what it pays on AWS:
//! a handshake per connection and a certificate chain to verify. The front holds
//! a test CA (RSA-2048, like the Amazon roots and intermediates) and a leaf for
//! `localhost` and `127.0.0.1`, terminates TLS 1.3 (or 1.2) and copies the bytes
//! to the plain-HTTP endpoint behind it.
//!
//! Put it in front of the fault proxy, not of moto: moto's server closes every
//! connection after one response, which would make every call a new handshake,
//! while AWS endpoints (and the proxy) keep connections alive.
//!
//! The function trusts the CA through `SSL_CERT_FILE`, the variable a company's
//! TLS-inspection CA is added with. [`TlsFront::ca_bundle`] writes the system's
//! roots followed by the test CA, so the function parses as many roots as on
//! Lambda, not one.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_RSA_SHA256,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// The system's root bundle on Debian (and the file Lambda's runtimes read on
/// Amazon Linux has the same roots).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The services the function calls, by the names of their endpoint variables
/// (`AWS_ENDPOINT_URL_<NAME>`): on AWS each is a host of its own, so each
/// costs a connection and a handshake of its own.
pub const SERVICES: [&str; 4] = ["IAM", "SECRETS_MANAGER", "STS", "EVENTBRIDGE"];

pub struct TlsFront {
    /// `https://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    /// A PEM file of the system's roots and the test CA, for `SSL_CERT_FILE`.
    pub ca_bundle: PathBuf,
    /// An endpoint of its own per service, as on AWS: `AWS_ENDPOINT_URL_<NAME>`
    /// and its URL.
    pub service_endpoints: Vec<(String, String)>,
    handshakes: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
}

impl TlsFront {
    /// Starts a TLS front for the plain-HTTP `upstream` (`http://127.0.0.1:PORT`)
    /// on a free port, and one more per service in [`SERVICES`].
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("a plain-HTTP upstream")
            .trim_end_matches('/')
            .to_string();
        let (ca_pem, chain, key) = test_pki();
        let ca_bundle = write_ca_bundle(&ca_pem);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the test certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        let mut endpoints = Vec::new();
        for _ in 0..=SERVICES.len() {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            endpoints.push(format!("https://{}", listener.local_addr().unwrap()));
            tasks.push(tokio::spawn(forward(
                listener,
                acceptor.clone(),
                upstream.clone(),
                handshakes.clone(),
            )));
        }
        let endpoint = endpoints.remove(0);
        let service_endpoints = SERVICES
            .iter()
            .map(|name| format!("AWS_ENDPOINT_URL_{name}"))
            .zip(endpoints)
            .collect();
        Self {
            endpoint,
            ca_bundle,
            service_endpoints,
            handshakes,
            tasks,
        }
    }

    /// TLS handshakes completed so far, on every port.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::Relaxed)
    }
}

/// Accepts on `listener`, completes each handshake and copies the bytes both
/// ways between the client and `upstream`.
async fn forward(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    upstream: String,
    handshakes: Arc<AtomicUsize>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let (acceptor, upstream, handshakes) =
            (acceptor.clone(), upstream.clone(), handshakes.clone());
        tokio::spawn(async move {
            // No Nagle delay on either leg: a TLS record and the request it
            // carries are separate writes, which would otherwise wait for
            // the peer's delayed ACK (40 ms) once the connection is reused.
            let _ = stream.set_nodelay(true);
            let Ok(mut tls) = acceptor.accept(stream).await else {
                return;
            };
            handshakes.fetch_add(1, Ordering::Relaxed);
            let Ok(mut plain) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = plain.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        });
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.ca_bundle);
    }
}

/// A CA and a leaf it signed, both RSA-2048: the CA's PEM, the chain the
/// server presents (leaf, then CA, as AWS sends its intermediate) and the
/// leaf's key.
fn test_pki() -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let ca_key = KeyPair::generate_for(&PKCS_RSA_SHA256).expect("a CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "iam-key-rotation test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).expect("the CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate_for(&PKCS_RSA_SHA256).expect("a leaf key");
    let leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &issuer)
        .expect("the leaf certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    (
        ca_cert.pem(),
        vec![leaf_cert.der().clone(), ca_cert.der().clone()],
        key,
    )
}

fn write_ca_bundle(ca_pem: &str) -> PathBuf {
    let mut bundle = std::fs::read_to_string(SYSTEM_ROOTS).unwrap_or_default();
    bundle.push_str(ca_pem);
    let path = std::env::temp_dir().join(format!("{}.pem", crate::unique("tls-front-ca")));
    std::fs::write(&path, bundle).expect("write the CA bundle");
    path
}
