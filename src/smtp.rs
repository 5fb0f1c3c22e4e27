//! The Amazon SES SMTP password of an access key, for secrets with `SmtpRegion`.
//!
//! SES accepts, as SMTP password, a value derived from the secret access key and
//! the region: AWS's documented algorithm is an HMAC-SHA256 chain over a fixed
//! date, the region, "ses", "aws4_request" and "SendRawEmail", prefixed with the
//! version byte 0x04 and base64-encoded. The SMTP user name is the access key id.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::sensitive::Sensitive;

const DATE: &str = "11111111";
const SERVICE: &str = "ses";
const TERMINAL: &str = "aws4_request";
const MESSAGE: &str = "SendRawEmail";
const VERSION: u8 = 0x04;

/// Derives the SES SMTP password for `region` from a secret access key.
pub fn smtp_password(secret_access_key: &Sensitive, region: &str) -> Sensitive {
    let mut signature = sign(
        format!("AWS4{}", secret_access_key.expose()).as_bytes(),
        DATE,
    );
    for part in [region, SERVICE, TERMINAL, MESSAGE] {
        signature = sign(&signature, part);
    }
    let mut versioned = Vec::with_capacity(signature.len() + 1);
    versioned.push(VERSION);
    versioned.extend_from_slice(&signature);
    Sensitive::new(STANDARD.encode(versioned))
}

fn sign(key: &[u8], message: &str) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, message.as_bytes()).as_ref().to_vec()
}

/// Whether `region` looks like an AWS region name (`us-east-1`, `eu-central-2`,
/// `us-gov-west-1`), checked before any key is created.
pub fn is_region_name(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values computed with AWS's published Python reference
    /// (`calculate_key` in the SES "Obtaining Amazon SES SMTP credentials" guide).
    #[test]
    fn derivation_matches_the_reference_algorithm() {
        let cases = [
            (
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "us-east-1",
                "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9",
            ),
            (
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "eu-west-1",
                "BMW5RDrXmmVs0lV7GpI4oLkHXpZ4stDsk6q91z1g38Pk",
            ),
            (
                "AbCdEf0123456789+/ghIJklMNopQRstUVwxYZ12",
                "ap-southeast-2",
                "BC4Wfuz1nx3xAh2OtqjZfAEcTQhz2kKwUefCpLAKAIiz",
            ),
        ];
        for (secret, region, expected) in cases {
            assert_eq!(
                smtp_password(&Sensitive::new(secret), region).expose(),
                expected
            );
        }
    }

    #[test]
    fn region_names_are_recognised() {
        for good in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-2",
            "us-gov-west-1",
        ] {
            assert!(is_region_name(good), "{good}");
        }
        for bad in [
            "",
            "us-east",
            "US-EAST-1",
            "us_east_1",
            "us-east-1a",
            "useast1",
            "us--1",
            "a-b-c-d-1",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }
}
