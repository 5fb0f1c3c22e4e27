//! The GitHub credentials document (SPEC 14): `{"token": "..."}`, a
//! fine-grained token, or a GitHub App: `app_id` (or `client_id`) and
//! `installation_id`, as numbers or digit strings, and `private_key`, the PEM
//! GitHub downloads (PKCS#1; PKCS#8 accepted). The App signs a short JWT (RS256)
//! that buys an installation token.
//!
//! The document is parsed field by field from a `serde_json::Value` rather
//! than deserialized into a struct: serde's type errors quote the offending
//! value, which here would be the token or the key. Every message below names
//! the field only.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Map, Value, json};

use super::error::GitHubError;
use crate::sensitive::Sensitive;

/// GitHub wants `iat` a minute in the past, against clock drift...
const JWT_BACKDATE_SECS: i64 = 60;
/// ...and `exp` at most ten minutes after `iat`.
const JWT_LIFETIME_SECS: i64 = 600;

/// Credentials for GitHub's API. `Debug` shows which kind and the App's ids,
/// never the token or the key.
pub struct GitHubCredentials(pub(super) Kind);

pub(super) enum Kind {
    Token(Sensitive),
    App(App),
}

/// A GitHub App's installation.
pub(super) struct App {
    issuer: Issuer,
    pub(super) installation_id: u64,
    key: KeyPair,
}

#[derive(Debug)]
enum Issuer {
    AppId(u64),
    ClientId(String),
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AppId(id) => write!(f, "App {id}"),
            Self::ClientId(id) => write!(f, "App {id}"),
        }
    }
}

impl fmt::Debug for GitHubCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Token(token) => f.debug_tuple("Token").field(token).finish(),
            Kind::App(app) => f
                .debug_struct("App")
                .field("issuer", &app.issuer)
                .field("installation_id", &app.installation_id)
                .field("private_key", &Sensitive::new(""))
                .finish(),
        }
    }
}

impl GitHubCredentials {
    /// Parses the credentials secret's value.
    pub fn from_json(document: &str) -> Result<Self, GitHubError> {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(document) else {
            return Err(invalid("the secret's value is not a JSON object"));
        };
        let app_fields = ["app_id", "client_id", "installation_id", "private_key"];
        let has_app = app_fields.iter().any(|field| fields.contains_key(*field));
        match (fields.get("token"), has_app) {
            (Some(_), true) => Err(invalid(
                "it holds both a token and a GitHub App's fields: keep one of them",
            )),
            (Some(token), false) => Ok(Self(Kind::Token(parse_token(token)?))),
            (None, true) => Ok(Self(Kind::App(App::parse(&fields)?))),
            (None, false) => Err(invalid(
                "it holds neither \"token\" nor a GitHub App's fields",
            )),
        }
    }

    /// Which credentials these are, for a log line: `a token` or `App 123,
    /// installation 456`.
    pub fn describe(&self) -> String {
        match &self.0 {
            Kind::Token(_) => "a token".to_string(),
            Kind::App(app) => app.describe(),
        }
    }
}

fn invalid(detail: &str) -> GitHubError {
    GitHubError::Credentials {
        detail: detail.to_string(),
    }
}

/// A token goes into a header: visible ASCII only.
fn parse_token(value: &Value) -> Result<Sensitive, GitHubError> {
    match value.as_str() {
        Some(token) if !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Sensitive::new(token))
        }
        Some(_) => Err(invalid(
            "\"token\" must be the token itself: printable characters, no spaces or line breaks",
        )),
        None => Err(invalid("\"token\" must be a string")),
    }
}

/// A number, or a string of digits (GitHub shows ids both ways).
fn parse_id(fields: &Map<String, Value>, name: &str) -> Result<Option<u64>, GitHubError> {
    let bad = || {
        invalid(&format!(
            "\"{name}\" must be a positive whole number or a string of digits"
        ))
    };
    match fields.get(name) {
        None => Ok(None),
        Some(Value::Number(number)) => number
            .as_u64()
            .filter(|id| *id > 0)
            .map(Some)
            .ok_or_else(bad),
        Some(Value::String(text))
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) =>
        {
            text.parse()
                .ok()
                .filter(|id| *id > 0)
                .map(Some)
                .ok_or_else(bad)
        }
        Some(_) => Err(bad()),
    }
}

impl App {
    fn parse(fields: &Map<String, Value>) -> Result<Self, GitHubError> {
        let client_id = match fields.get("client_id") {
            None => None,
            Some(Value::String(id))
                if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.') =>
            {
                Some(id.clone())
            }
            Some(_) => {
                return Err(invalid(
                    "\"client_id\" must be the App's client ID as GitHub shows it (such as Iv23li...)",
                ));
            }
        };
        // GitHub recommends the client ID; an app id alone still works.
        let issuer = match (client_id, parse_id(fields, "app_id")?) {
            (Some(client_id), _) => Issuer::ClientId(client_id),
            (None, Some(app_id)) => Issuer::AppId(app_id),
            (None, None) => return Err(invalid("a GitHub App needs \"app_id\" or \"client_id\"")),
        };
        let installation_id = parse_id(fields, "installation_id")?.ok_or_else(|| {
            invalid("a GitHub App needs \"installation_id\" (in the URL of the installation's settings page)")
        })?;
        let Some(pem) = fields.get("private_key").and_then(Value::as_str) else {
            return Err(invalid(
                "a GitHub App needs \"private_key\", the PEM file GitHub downloads, as a string",
            ));
        };
        Ok(Self {
            issuer,
            installation_id,
            key: parse_private_key(pem)?,
        })
    }

    pub(super) fn describe(&self) -> String {
        format!("{}, installation {}", self.issuer, self.installation_id)
    }

    /// The JWT that authenticates as the App, valid from a minute ago for ten
    /// minutes in all (GitHub's maximum).
    pub(super) fn jwt(&self, now: i64) -> Result<Sensitive, GitHubError> {
        let iat = now - JWT_BACKDATE_SECS;
        let issuer = match &self.issuer {
            Issuer::AppId(id) => json!(id),
            Issuer::ClientId(id) => json!(id),
        };
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = json!({"iat": iat, "exp": iat + JWT_LIFETIME_SECS, "iss": issuer});
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| invalid("the App's private key cannot sign (RS256)"))?;
        Ok(Sensitive::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}

/// The App's RSA key from PEM: `RSA PRIVATE KEY` (PKCS#1, what GitHub
/// downloads) or `PRIVATE KEY` (PKCS#8).
fn parse_private_key(pem: &str) -> Result<KeyPair, GitHubError> {
    let not_rsa = || {
        invalid(
            "\"private_key\" is not an RSA private key in PEM (-----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----, line breaks as \\n in JSON)",
        )
    };
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| not_rsa())?;
    let parsed = match &key {
        PrivateKeyDer::Pkcs1(der) => KeyPair::from_der(der.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(der) => KeyPair::from_pkcs8(der.secret_pkcs8_der()),
        _ => return Err(not_rsa()),
    };
    parsed.map_err(|_| {
        invalid("\"private_key\" is not a usable RSA key (GitHub's App keys are RSA 2048 bits)")
    })
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    fn pkcs8_pem() -> (String, KeyPair) {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = key.as_der().unwrap();
        let body = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|chunk| std::str::from_utf8(chunk).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        );
        (pem, key)
    }

    fn error(document: &str) -> String {
        GitHubCredentials::from_json(document)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_token_document() {
        let credentials = GitHubCredentials::from_json(r#"{"token": "github_pat_11AAA"}"#).unwrap();
        assert_eq!(credentials.describe(), "a token");
        assert!(!format!("{credentials:?}").contains("github_pat"));
        assert!(error(r#"{"token": 5}"#).contains("\"token\" must be a string"));
        assert!(error(r#"{"token": "a b"}"#).contains("no spaces"));
        assert!(error(r#"{"token": ""}"#).contains("\"token\""));
    }

    #[test]
    fn an_app_document_with_ids_as_numbers_or_digit_strings() {
        let (pem, key) = pkcs8_pem();
        let document = json!({"app_id": "12345", "installation_id": 678, "private_key": pem});
        let credentials = GitHubCredentials::from_json(&document.to_string()).unwrap();
        assert_eq!(credentials.describe(), "App 12345, installation 678");
        let debug = format!("{credentials:?}");
        assert!(
            !debug.contains("PRIVATE KEY") && debug.contains("678"),
            "{debug}"
        );

        let Kind::App(app) = credentials.0 else {
            panic!()
        };
        let jwt = app.jwt(1_800_000_000).unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims,
            json!({"iat": 1_799_999_940, "exp": 1_800_000_540, "iss": 12345})
        );
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key().as_ref())
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            )
            .unwrap();

        let by_client_id = json!({"client_id": "Iv23liABC", "app_id": 1, "installation_id": "9", "private_key": pkcs8_pem().0});
        let Kind::App(app) = GitHubCredentials::from_json(&by_client_id.to_string())
            .unwrap()
            .0
        else {
            panic!()
        };
        let jwt = app.jwt(1_800_000_000).unwrap();
        let claims: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jwt.expose().split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["iss"], "Iv23liABC");
    }

    #[test]
    fn invalid_documents_name_the_field_and_never_its_value() {
        let (pem, _) = pkcs8_pem();
        let secret_marker = "s3cr3t-value-never-shown";
        for (document, expected) in [
            ("not json".to_string(), "not a JSON object"),
            (format!("[\"{secret_marker}\"]"), "not a JSON object"),
            ("{}".to_string(), "neither"),
            (
                json!({"token": secret_marker, "app_id": 1}).to_string(),
                "both",
            ),
            (
                json!({"app_id": secret_marker, "installation_id": 1, "private_key": pem}).to_string(),
                "\"app_id\" must be",
            ),
            (
                json!({"app_id": -4, "installation_id": 1, "private_key": pem}).to_string(),
                "\"app_id\" must be",
            ),
            (
                json!({"app_id": 1, "installation_id": 1.5, "private_key": pem}).to_string(),
                "\"installation_id\" must be",
            ),
            (
                json!({"client_id": secret_marker.to_string() + " x", "installation_id": 1, "private_key": pem}).to_string(),
                "\"client_id\" must be",
            ),
            (
                json!({"app_id": 1, "private_key": pem}).to_string(),
                "needs \"installation_id\"",
            ),
            (
                json!({"installation_id": 1, "private_key": pem}).to_string(),
                "needs \"app_id\" or \"client_id\"",
            ),
            (json!({"app_id": 1, "installation_id": 2}).to_string(), "needs \"private_key\""),
            (
                json!({"app_id": 1, "installation_id": 2, "private_key": secret_marker}).to_string(),
                "not an RSA private key",
            ),
            (
                json!({"app_id": 1, "installation_id": 2, "private_key": format!("-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n", STANDARD.encode(secret_marker))}).to_string(),
                "not a usable RSA key",
            ),
        ] {
            let message = error(&document);
            assert!(message.contains(expected), "{document}: {message}");
            assert!(message.contains("GITHUB_CREDENTIALS_SECRET_ARN"), "{message}");
            assert!(!message.contains(secret_marker), "{message}");
            assert!(!message.contains(&STANDARD.encode(secret_marker)), "{message}");
            let debug = format!("{:?}", GitHubCredentials::from_json(&document).unwrap_err());
            assert!(!debug.contains(secret_marker), "{debug}");
        }
    }
}
