//! GitHub's encryption of Actions secrets: a libsodium sealed box
//! (`crypto_box_seal`: an ephemeral X25519 key, XSalsa20-Poly1305) to the
//! target's public key, so only GitHub (and the runners it hands the secret to)
//! can open it. The public key comes with its `key_id`, which the write names.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_box::aead::OsRng;

use crate::sensitive::Sensitive;

/// A target's public key as `GET .../secrets/public-key` returns it.
#[derive(Clone)]
pub(super) struct PublicKey {
    pub key_id: String,
    key: crypto_box::PublicKey,
}

impl PublicKey {
    /// From the answer's `key_id` and base64 `key` (32 bytes).
    pub fn parse(key_id: &str, key: &str) -> Option<Self> {
        let bytes = STANDARD.decode(key).ok()?;
        Some(Self {
            key_id: key_id.to_string(),
            key: crypto_box::PublicKey::from_slice(&bytes).ok()?,
        })
    }

    /// The sealed box of `value`, base64 as `encrypted_value` wants it.
    pub fn seal(&self, value: &Sensitive) -> Result<String, crypto_box::aead::Error> {
        let sealed = self.key.seal(&mut OsRng, value.expose().as_bytes())?;
        Ok(STANDARD.encode(sealed))
    }
}

#[cfg(test)]
mod tests {
    use crypto_box::SecretKey;

    use super::*;

    #[test]
    fn a_sealed_box_opens_with_the_private_key_only() {
        let secret = SecretKey::generate(&mut OsRng);
        let public =
            PublicKey::parse("kid", &STANDARD.encode(secret.public_key().as_bytes())).unwrap();
        let sealed = public
            .seal(&Sensitive::new("wJalrXUtnFEMI/K7MDENG"))
            .unwrap();
        let bytes = STANDARD.decode(&sealed).unwrap();
        assert_eq!(secret.unseal(&bytes).unwrap(), b"wJalrXUtnFEMI/K7MDENG");
        assert!(SecretKey::generate(&mut OsRng).unseal(&bytes).is_err());
        // A fresh ephemeral key each time: the same value never seals alike.
        assert_ne!(
            public.seal(&Sensitive::new("x")).unwrap(),
            public.seal(&Sensitive::new("x")).unwrap()
        );
        assert!(PublicKey::parse("kid", "not base64!").is_none());
        assert!(PublicKey::parse("kid", &STANDARD.encode([1u8; 16])).is_none());
    }
}
