//! Attacks on access-token verification: each must be refused, never accepted and never a panic.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::keys::{JWT_RING, generate_ring_entry, parse_ring};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn codec() -> (JwtCodec, Arc<KeyRing>) {
    let ring = Arc::new(
        parse_ring(
            &format!(
                "{},{}",
                generate_ring_entry("k2", 32),
                generate_ring_entry("k1", 32)
            ),
            JWT_RING,
        )
        .expect("ring"),
    );
    (
        JwtCodec::new(ring.clone(), "https://ts.example", "tradesignal-api"),
        ring,
    )
}

fn claims() -> AccessClaims {
    let t = now();
    AccessClaims {
        iss: "https://ts.example".into(),
        aud: "tradesignal-api".into(),
        sub: "user-1".into(),
        sid: "session-1".into(),
        jti: "jti-1".into(),
        iat: t,
        nbf: t,
        exp: t + 900,
        auth_time: t,
        amr: vec!["pwd".into()],
        role: "user".into(),
        tier: "free".into(),
        fgp: "fp".into(),
        sv: 1,
        evf: true,
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Signs arbitrary header and payload JSON with `key` (HS256), the way an attacker with or without the
/// key would build a token.
fn forge(header: &Value, payload: &Value, key: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(payload));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("hmac key");
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn good_header() -> Value {
    json!({"alg": "HS256", "typ": "at+jwt", "kid": "k2"})
}

fn payload() -> Value {
    serde_json::to_value(claims()).expect("claims json")
}

fn active_key(ring: &KeyRing) -> Vec<u8> {
    keys::material(ring.active()).to_vec()
}

#[test]
fn a_token_round_trips_and_older_keys_still_verify() {
    let (codec, ring) = codec();
    let token = codec.issue(&claims()).expect("issue");
    assert_eq!(codec.verify(&token).expect("verify"), claims());
    // A token signed by the second (older) key of the ring verifies too.
    let mut header = good_header();
    header["kid"] = json!("k1");
    let old = forge(
        &header,
        &payload(),
        keys::material(ring.get("k1").expect("k1")),
    );
    assert!(codec.verify(&old).is_ok());
    let parts: Vec<&str> = token.split('.').collect();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["kid"], "k2");
    assert_eq!(header["alg"], "HS256");
}

#[test]
fn alg_none_in_every_casing_is_refused() {
    let (codec, _) = codec();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let token = format!(
            "{}.{}.",
            b64(&json!({"alg": alg, "typ": "at+jwt", "kid": "k2"})),
            b64(&payload())
        );
        assert!(codec.verify(&token).is_err(), "{alg}");
        let signed = format!(
            "{}.{}.c2ln",
            b64(&json!({"alg": alg, "typ": "at+jwt", "kid": "k2"})),
            b64(&payload())
        );
        assert!(codec.verify(&signed).is_err(), "{alg} with a signature");
    }
}

#[test]
fn other_algorithms_are_refused() {
    let (codec, ring) = codec();
    for alg in ["HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA"] {
        let token = forge(
            &json!({"alg": alg, "typ": "at+jwt", "kid": "k2"}),
            &payload(),
            &active_key(&ring),
        );
        assert!(codec.verify(&token).is_err(), "{alg}");
    }
}

#[test]
fn wrong_key_and_modified_payload_are_refused() {
    let (codec, ring) = codec();
    assert!(matches!(
        codec.verify(&forge(&good_header(), &payload(), &[7u8; 32])),
        Err(TokenError::Invalid(_))
    ));
    let token = codec.issue(&claims()).expect("issue");
    let parts: Vec<&str> = token.split('.').collect();
    let mut modified = payload();
    modified["role"] = json!("super_admin");
    let tampered = format!("{}.{}.{}", parts[0], b64(&modified), parts[2]);
    assert!(codec.verify(&tampered).is_err());
    // Signature stripped or from another token.
    assert!(
        codec
            .verify(&format!("{}.{}.", parts[0], parts[1]))
            .is_err()
    );
    let other = forge(&good_header(), &json!({"x": 1}), &active_key(&ring));
    let spliced = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        other.split('.').nth(2).expect("sig")
    );
    assert!(codec.verify(&spliced).is_err());
}

#[test]
fn time_claims_are_enforced() {
    let (codec, ring) = codec();
    let key = active_key(&ring);
    let mut expired = payload();
    expired["exp"] = json!(now() - 120);
    assert_eq!(
        codec.verify(&forge(&good_header(), &expired, &key)),
        Err(TokenError::Expired)
    );
    let mut future = payload();
    future["nbf"] = json!(now() + 600);
    assert!(codec.verify(&forge(&good_header(), &future, &key)).is_err());
    // Within the leeway is fine.
    let mut slight = payload();
    slight["nbf"] = json!(now() + 5);
    assert!(codec.verify(&forge(&good_header(), &slight, &key)).is_ok());
}

#[test]
fn issuer_audience_and_type_must_match() {
    let (codec, ring) = codec();
    let key = active_key(&ring);
    for (claim, value) in [("iss", "https://evil.example"), ("aud", "another-api")] {
        let mut p = payload();
        p[claim] = json!(value);
        assert!(
            codec.verify(&forge(&good_header(), &p, &key)).is_err(),
            "{claim}"
        );
    }
    for typ in [json!("JWT"), json!("rt+jwt"), Value::Null] {
        let mut h = good_header();
        h["typ"] = typ.clone();
        assert_eq!(
            codec.verify(&forge(&h, &payload(), &key)),
            Err(TokenError::Type),
            "{typ}"
        );
    }
}

#[test]
fn every_claim_is_required_and_unknown_claims_refused() {
    let (codec, ring) = codec();
    let key = active_key(&ring);
    for claim in [
        "iss",
        "aud",
        "sub",
        "sid",
        "jti",
        "iat",
        "nbf",
        "exp",
        "auth_time",
        "amr",
        "role",
        "tier",
        "fgp",
        "sv",
    ] {
        let mut p = payload();
        p.as_object_mut().expect("object").remove(claim);
        assert!(
            codec.verify(&forge(&good_header(), &p, &key)).is_err(),
            "missing {claim}"
        );
    }
    let mut extra = payload();
    extra["admin"] = json!(true);
    assert!(codec.verify(&forge(&good_header(), &extra, &key)).is_err());
}

#[test]
fn key_headers_pointing_elsewhere_are_refused_without_fetching() {
    let (codec, ring) = codec();
    let key = active_key(&ring);
    for (name, value) in [
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("jwk", json!({"kty": "oct", "k": "AAAA"})),
    ] {
        let mut h = good_header();
        h[name] = value;
        assert!(
            codec.verify(&forge(&h, &payload(), &key)).is_err(),
            "{name}"
        );
    }
}

#[test]
fn hostile_kids_are_unknown_keys() {
    let (codec, ring) = codec();
    for kid in ["../../etc/passwd", "k2' OR '1'='1", "k2\u{0}", "", "K2"] {
        let mut h = good_header();
        h["kid"] = json!(kid);
        assert_eq!(
            codec.verify(&forge(&h, &payload(), &active_key(&ring))),
            Err(TokenError::UnknownKey),
            "{kid:?}"
        );
    }
    let mut h = good_header();
    h.as_object_mut().expect("object").remove("kid");
    assert_eq!(
        codec.verify(&forge(&h, &payload(), &active_key(&ring))),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn wrong_shapes_and_sizes_are_refused() {
    let (codec, _) = codec();
    let token = codec.issue(&claims()).expect("issue");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(
        codec.verify(&format!("{}.{}", parts[0], parts[1])),
        Err(TokenError::Malformed)
    );
    assert_eq!(
        codec.verify(&format!("{token}.extra")),
        Err(TokenError::Malformed)
    );
    assert_eq!(
        codec.verify(&"a".repeat(1 << 20)),
        Err(TokenError::TooLarge)
    );
    // An opaque refresh token is not a JWT.
    assert_eq!(
        codec.verify(&crate::tokens::OpaqueToken::generate().token),
        Err(TokenError::Malformed)
    );
    assert!(codec.verify("").is_err());
}

proptest! {
    #[test]
    fn verification_never_panics(s in "\\PC{0,600}") {
        let (codec, _) = codec();
        prop_assert!(codec.verify(&s).is_err());
    }

    #[test]
    fn three_random_segments_never_verify(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,200}", c in "[A-Za-z0-9_-]{0,60}") {
        let (codec, _) = codec();
        let token = format!("{a}.{b}.{c}");
        prop_assert!(codec.verify(&token).is_err());
    }
}
