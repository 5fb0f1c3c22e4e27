//! Checking an AWS Signature Version 4 the way AWS does, for the fault proxy:
//! moto accepts any signature, so without this a key paired with a made-up
//! secret would "authenticate" in the tests (SPEC 11, T3: adoption proves
//! possession of the secret).

use aws_lc_rs::{digest, hmac};
use hyper::http::request::Parts;

/// Whether the request was signed with `secret` (the secret access key of the
/// key id in its Authorization header).
pub fn signed_with(request: &Parts, body: &[u8], secret: &str) -> bool {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let authorization = header("authorization");
    let Some(fields) = authorization.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return false;
    };
    let field = |name: &str| {
        fields
            .split(',')
            .map(str::trim)
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or_default()
    };
    let (credential, signed_headers, signature) = (
        field("Credential="),
        field("SignedHeaders="),
        field("Signature="),
    );
    let Some((_key, scope)) = credential.split_once('/') else {
        return false;
    };
    let scope_parts: Vec<&str> = scope.split('/').collect();
    let [date, region, service, _terminator] = scope_parts.as_slice() else {
        return false;
    };
    let canonical_headers: String = signed_headers
        .split(';')
        .map(|name| {
            let value = header(name)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            format!("{name}:{value}\n")
        })
        .collect();
    let payload_hash = match header("x-amz-content-sha256") {
        "" => hex(digest::digest(&digest::SHA256, body).as_ref()),
        given => given.to_string(),
    };
    let mut query: Vec<&str> = request.uri.query().unwrap_or_default().split('&').collect();
    query.retain(|pair| !pair.is_empty());
    query.sort_unstable();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        request.method,
        request.uri.path(),
        query.join("&"),
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        header("x-amz-date"),
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [*date, *region, *service, "aws4_request"] {
        key = mac(&key, part.as_bytes());
    }
    hex(&mac(&key, string_to_sign.as_bytes())) == signature
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
