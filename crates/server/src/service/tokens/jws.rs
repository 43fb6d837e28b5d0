//! ES256 compact JWS (RFC 7515 §7.1, RFC 7518 §3.4) and EC public JWKs (RFC 7517,
//! RFC 7518 §6.2), implemented directly on P-256 ECDSA (`infra::ecdsa`) so the verifier accepts exactly one
//! algorithm: a header naming anything but `ES256` (`none`, `HS256`, ...) is refused
//! before any key is looked at, which closes the algorithm-confusion doors.

use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::infra::ecdsa::{P256Signer, P256Verifier};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Why a compact JWS was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// The header names another algorithm than ES256.
    #[error("algorithm not allowed")]
    Algorithm,
    /// No key with the header's `kid`.
    #[error("unknown key id")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

/// Signs `claims` as a compact JWS with header `{"alg":"ES256","typ":"JWT","kid":kid}`.
///
/// # Errors
/// Only when the system random source fails.
pub fn sign(
    key: &P256Signer,
    kid: &str,
    claims: &[u8],
) -> Result<String, ring::error::Unspecified> {
    let header = serde_json::to_vec(&Header {
        alg: "ES256".to_owned(),
        typ: Some("JWT".to_owned()),
        kid: Some(kid.to_owned()),
    })
    .expect("header serializes");
    let mut out = format!("{}.{}", B64URL.encode(header), B64URL.encode(claims));
    let signature = key.sign_fixed(out.as_bytes())?;
    out.push('.');
    out.push_str(&B64URL.encode(signature));
    Ok(out)
}

/// The `kid` of a compact JWS whose header names ES256, without verifying anything.
///
/// # Errors
/// `Malformed`, `Algorithm`, `UnknownKey` (no `kid`).
pub fn es256_kid(token: &str) -> Result<String, JwsError> {
    es256_header(token)?.kid.ok_or(JwsError::UnknownKey)
}

fn es256_header(token: &str) -> Result<Header, JwsError> {
    let header = token.split('.').next().ok_or(JwsError::Malformed)?;
    let header: Header = B64URL
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(JwsError::Malformed)?;
    if header.alg != "ES256" {
        return Err(JwsError::Algorithm);
    }
    Ok(header)
}

/// Verifies a compact ES256 JWS under `key` and returns its payload bytes.
///
/// # Errors
/// `Malformed`, `Algorithm`, `Signature`.
pub fn verify(token: &str, key: &P256Verifier) -> Result<Vec<u8>, JwsError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    es256_header(token)?;
    let signature = B64URL.decode(signature).map_err(|_| JwsError::Signature)?;
    let signing_input = &token[..header.len() + 1 + payload.len()];
    if !key.verify_fixed(signing_input.as_bytes(), &signature) {
        return Err(JwsError::Signature);
    }
    B64URL.decode(payload).map_err(|_| JwsError::Malformed)
}

/// An EC public key as a JWK (RFC 7517 §4, RFC 7518 §6.2.1).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct EcJwk {
    /// `EC`.
    pub kty: String,
    /// `P-256`.
    pub crv: String,
    /// X coordinate, base64url, 32 bytes.
    pub x: String,
    /// Y coordinate, base64url, 32 bytes.
    pub y: String,
    /// Key id (the JWS header's `kid`).
    pub kid: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// `ES256`.
    pub alg: String,
}

impl EcJwk {
    /// The JWK of a P-256 public key.
    pub fn from_key(key: &P256Verifier, kid: &str) -> Self {
        let point = key.sec1();
        // SEC1 uncompressed: 0x04 ‖ X(32) ‖ Y(32).
        let (x, y) = point[1..].split_at(32);
        Self {
            kty: "EC".to_owned(),
            crv: "P-256".to_owned(),
            x: B64URL.encode(x),
            y: B64URL.encode(y),
            kid: kid.to_owned(),
            use_: "sig".to_owned(),
            alg: "ES256".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> P256Signer {
        P256Signer::from_scalar(&[byte; 32]).unwrap()
    }

    #[test]
    fn round_trip_and_every_forgery_is_refused() {
        let signer = key(1);
        let token = sign(&signer, "k1", br#"{"sub":"a"}"#).unwrap();
        let verifying = signer.verifier();
        assert_eq!(verify(&token, &verifying).unwrap(), br#"{"sub":"a"}"#);
        assert_eq!(es256_kid(&token).unwrap(), "k1");

        // Wrong key.
        assert_eq!(verify(&token, &key(2).verifier()), Err(JwsError::Signature));
        // Modified claims under the original signature.
        let parts: Vec<&str> = token.split('.').collect();
        let altered = format!(
            "{}.{}.{}",
            parts[0],
            B64URL.encode(br#"{"sub":"b"}"#),
            parts[2]
        );
        assert_eq!(verify(&altered, &verifying), Err(JwsError::Signature));
        // alg: none with an empty signature.
        let none = format!(
            "{}.{}.",
            B64URL.encode(br#"{"alg":"none","kid":"k1"}"#),
            parts[1]
        );
        assert_eq!(verify(&none, &verifying), Err(JwsError::Algorithm));
        // HS256 keyed with the public key bytes (algorithm confusion).
        let header = B64URL.encode(br#"{"alg":"HS256","kid":"k1"}"#);
        let input = format!("{header}.{}", parts[1]);
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(verifying.sec1()).unwrap();
        hmac::Mac::update(&mut mac, input.as_bytes());
        let hs = format!(
            "{input}.{}",
            B64URL.encode(hmac::Mac::finalize(mac).into_bytes())
        );
        assert_eq!(verify(&hs, &verifying), Err(JwsError::Algorithm));
        // Structure.
        assert_eq!(verify("a.b", &verifying), Err(JwsError::Malformed));
        assert_eq!(
            verify(&format!("{token}.x"), &verifying),
            Err(JwsError::Malformed)
        );
    }

    /// RFC 7515 Appendix A.3 (JWS using ECDSA P-256 SHA-256): the published token verifies
    /// under the published JWK, and fails once its payload changes.
    #[test]
    fn rfc7515_a3_example_verifies() {
        let mut sec1 = vec![4u8];
        sec1.extend(
            B64URL
                .decode("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU")
                .unwrap(),
        );
        sec1.extend(
            B64URL
                .decode("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0")
                .unwrap(),
        );
        let key = P256Verifier::from_sec1(&sec1).unwrap();
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
        let payload = verify(token, &key).unwrap();
        assert!(payload.starts_with(b"{\"iss\":\"joe\""));
        let tampered = token.replacen(".eyJpc3MiOiJqb2", ".eyJpc3MiOiJqb3", 1);
        assert!(verify(&tampered, &key).is_err());
    }

    #[test]
    fn jwk_coordinates_are_the_sec1_point() {
        let signer = key(3);
        let jwk = EcJwk::from_key(&signer.verifier(), "k");
        let mut sec1 = vec![4u8];
        sec1.extend(B64URL.decode(&jwk.x).unwrap());
        sec1.extend(B64URL.decode(&jwk.y).unwrap());
        assert_eq!(P256Verifier::from_sec1(&sec1).unwrap(), signer.verifier());
        assert_eq!(serde_json::to_value(&jwk).unwrap()["use"], "sig");
    }
}
