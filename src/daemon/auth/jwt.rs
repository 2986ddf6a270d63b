//! JSON Web Tokens (compact JWS) checked against the issuer's keys
//! (a JWKS): the signature with the key the header's `kid` names, by an
//! asymmetric algorithm that key allows (RS256, PS256, ES256, EdDSA,
//! verified with `ring`, the TLS stack's own primitives), then `iss`,
//! `aud`, `exp` and `nbf`. `none`, the HMAC algorithms and anything
//! else are refused before a key is looked at, so a token signed with a
//! public key as an HMAC secret never verifies.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::{Map, Value};

/// The largest token read.
const TOKEN_LIMIT: usize = 16 * 1024;

/// The signature algorithms accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Ps256,
    Es256,
    EdDsa,
}

impl Alg {
    fn parse(name: &str) -> Option<Alg> {
        match name {
            "RS256" => Some(Alg::Rs256),
            "PS256" => Some(Alg::Ps256),
            "ES256" => Some(Alg::Es256),
            "EdDSA" | "Ed25519" => Some(Alg::EdDsa),
            _ => None,
        }
    }
}

/// A public key from the issuer's JWKS.
#[derive(Debug, Clone)]
enum PublicKey {
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed P-256 point (`04 || x || y`).
    P256(Vec<u8>),
    Ed25519(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Jwk {
    kid: String,
    /// The algorithm the JWK names, when it names one.
    alg: Option<Alg>,
    key: PublicKey,
}

impl Jwk {
    /// Whether this key may verify a signature made with `alg`.
    fn allows(&self, alg: Alg) -> bool {
        let by_type = match self.key {
            PublicKey::Rsa { .. } => matches!(alg, Alg::Rs256 | Alg::Ps256),
            PublicKey::P256(_) => alg == Alg::Es256,
            PublicKey::Ed25519(_) => alg == Alg::EdDsa,
        };
        by_type && self.alg.is_none_or(|a| a == alg)
    }

    fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
        match (&self.key, alg) {
            (PublicKey::Rsa { n, e }, Alg::Rs256 | Alg::Ps256) => {
                let params = if alg == Alg::Rs256 {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                signature::RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .is_ok()
            }
            (PublicKey::P256(point), Alg::Es256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            (PublicKey::Ed25519(x), Alg::EdDsa) => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, sig)
                .is_ok(),
            _ => false,
        }
    }
}

/// The issuer's signing keys: those of its JWKS that verify signatures
/// by an accepted algorithm (others, encryption keys, keys without a
/// `kid`, are left out).
#[derive(Debug, Clone, Default)]
pub struct Keys(Vec<Jwk>);

/// Why a JWKS cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("the issuer's JWKS is not a JSON key set")]
pub struct KeysError(#[source] serde_json::Error);

impl Keys {
    /// Reads a JWKS document.
    ///
    /// # Errors
    /// It is not JSON with a `keys` array.
    pub fn parse(json: &[u8]) -> Result<Keys, KeysError> {
        #[derive(serde::Deserialize)]
        struct Set {
            keys: Vec<Map<String, Value>>,
        }
        let set: Set = serde_json::from_slice(json).map_err(KeysError)?;
        Ok(Keys(set.keys.iter().filter_map(jwk).collect()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn find(&self, kid: &str) -> Option<&Jwk> {
        self.0.iter().find(|k| k.kid == kid)
    }
}

/// One JWK as a signing key, when it is one druppie can use.
fn jwk(fields: &Map<String, Value>) -> Option<Jwk> {
    let text = |name: &str| fields.get(name).and_then(Value::as_str);
    let bytes = |name: &str| text(name).and_then(|t| URL_SAFE_NO_PAD.decode(t).ok());
    if text("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let alg = match text("alg") {
        Some(name) => Some(Alg::parse(name)?),
        None => None,
    };
    let key = match (text("kty")?, text("crv")) {
        ("RSA", _) => {
            let strip = |b: Vec<u8>| {
                let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
                b[start..].to_vec()
            };
            PublicKey::Rsa {
                n: strip(bytes("n")?),
                e: strip(bytes("e")?),
            }
        }
        ("EC", Some("P-256")) => {
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            PublicKey::P256([&[4u8][..], &x, &y].concat())
        }
        ("OKP", Some("Ed25519")) => {
            let x = bytes("x")?;
            if x.len() != 32 {
                return None;
            }
            PublicKey::Ed25519(x)
        }
        _ => return None,
    };
    Some(Jwk {
        kid: text("kid")?.to_owned(),
        alg,
        key,
    })
}

/// What a token must say to be accepted.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    /// Now, in seconds since the Unix epoch.
    pub now: i64,
    /// Clock difference forgiven on `exp` and `nbf`, in seconds.
    pub leeway: i64,
}

/// Why a token is refused. Messages never quote the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the token is not a signed JWT: {0}")]
    Malformed(&'static str),
    #[error("the token's algorithm `{0}` is not accepted (RS256, PS256, ES256 or EdDSA only)")]
    Algorithm(String),
    #[error("the token is signed with a key the issuer does not publish (kid `{0}`)")]
    UnknownKey(String),
    #[error("the token's key does not allow {0:?}")]
    KeyAlgorithm(Alg),
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token was issued by another issuer")]
    Issuer,
    #[error("the token is meant for another audience")]
    Audience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYet,
    #[error("the token names no subject")]
    NoSubject,
}

/// A verified token's claims.
#[derive(Debug, Clone)]
pub struct Claims {
    pub subject: String,
    pub all: Map<String, Value>,
}

/// Checks `token` against `keys` and `expect`.
///
/// # Errors
/// Why the token is refused; [`Refused::UnknownKey`] means the issuer
/// may have rotated its keys (fetch them again, then retry once).
pub fn verify(token: &str, keys: &Keys, expect: &Expect<'_>) -> Result<Claims, Refused> {
    if token.len() > TOKEN_LIMIT {
        return Err(Refused::Malformed("it is larger than 16 KiB"));
    }
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refused::Malformed("it does not have three parts"));
    };
    let decode = |part: &str, what: &'static str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| Refused::Malformed(what))
    };
    let header: Map<String, Value> =
        serde_json::from_slice(&decode(head, "its header is not base64url")?)
            .map_err(|_| Refused::Malformed("its header is not a JSON object"))?;
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(Refused::Malformed("its header names no algorithm"))?;
    let alg = Alg::parse(alg_name).ok_or_else(|| Refused::Algorithm(alg_name.to_owned()))?;
    if header.contains_key("crit") {
        return Err(Refused::Malformed("its header has critical extensions"));
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(Refused::Malformed("its header names no key (kid)"))?;
    let key = keys
        .find(kid)
        .ok_or_else(|| Refused::UnknownKey(kid.to_owned()))?;
    if !key.allows(alg) {
        return Err(Refused::KeyAlgorithm(alg));
    }
    let signature = decode(sig, "its signature is not base64url")?;
    let signed = &token[..head.len() + 1 + body.len()];
    if !key.verify(alg, signed.as_bytes(), &signature) {
        return Err(Refused::Signature);
    }
    let all: Map<String, Value> =
        serde_json::from_slice(&decode(body, "its claims are not base64url")?)
            .map_err(|_| Refused::Malformed("its claims are not a JSON object"))?;
    check_claims(all, expect)
}

fn check_claims(all: Map<String, Value>, expect: &Expect<'_>) -> Result<Claims, Refused> {
    if all.get("iss").and_then(Value::as_str) != Some(expect.issuer) {
        return Err(Refused::Issuer);
    }
    let audience_ok = match all.get("aud") {
        Some(Value::String(a)) => a == expect.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expect.audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(Refused::Audience);
    }
    let time = |name: &str| all.get(name).and_then(Value::as_f64).map(|t| t as i64);
    match time("exp") {
        Some(exp) if expect.now <= exp.saturating_add(expect.leeway) => {}
        Some(_) => return Err(Refused::Expired),
        None => return Err(Refused::Malformed("it has no expiry (exp)")),
    }
    if all.contains_key("nbf") {
        match time("nbf") {
            Some(nbf) if nbf <= expect.now.saturating_add(expect.leeway) => {}
            Some(_) => return Err(Refused::NotYet),
            None => return Err(Refused::Malformed("its nbf is not a time")),
        }
    }
    let subject = all
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(Refused::NoSubject)?
        .to_owned();
    Ok(Claims { subject, all })
}

#[cfg(test)]
pub(crate) mod testing {
    //! Keys made in the test and tokens signed with them.

    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair as _};

    /// An ES256 key pair made now, with its JWK.
    pub(crate) struct TestKey {
        pub kid: String,
        pair: EcdsaKeyPair,
    }

    impl TestKey {
        pub(crate) fn new(kid: &str) -> TestKey {
            let rng = SystemRandom::new();
            let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("a key");
            TestKey {
                kid: kid.to_owned(),
                pair: EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("its own key"),
            }
        }

        pub(crate) fn jwk(&self) -> Value {
            let point = self.pair.public_key().as_ref();
            serde_json::json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            })
        }

        /// The uncompressed public point, as an attacker would find it.
        pub(crate) fn public(&self) -> Vec<u8> {
            self.pair.public_key().as_ref().to_vec()
        }

        pub(crate) fn sign(&self, claims: &Value) -> String {
            let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
            let input = format!("{}.{}", b64(&header), b64(claims));
            let sig = self
                .pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .expect("signs");
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }
    }

    pub(crate) fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
    }

    pub(crate) fn keys(of: &[&TestKey]) -> Keys {
        let set = serde_json::json!({"keys": of.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
        Keys::parse(&serde_json::to_vec(&set).expect("json")).expect("a JWKS")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{TestKey, b64, keys};
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "https://id.example.org/realms/druppie";
    const NOW: i64 = 1_800_000_000;

    fn expect() -> Expect<'static> {
        Expect {
            issuer: ISSUER,
            audience: "druppie",
            now: NOW,
            leeway: 60,
        }
    }

    fn claims() -> Value {
        json!({"iss": ISSUER, "aud": "druppie", "sub": "ana", "exp": NOW + 300,
               "iat": NOW, "groups": ["team-permits"]})
    }

    fn with(field: &str, value: Value) -> Value {
        let mut c = claims();
        c[field] = value;
        c
    }

    #[test]
    fn a_token_signed_by_the_issuer_for_this_audience_verifies() {
        let key = TestKey::new("k1");
        let got = verify(&key.sign(&claims()), &keys(&[&key]), &expect()).expect("valid");
        assert_eq!(got.subject, "ana");
        assert_eq!(got.all["groups"], json!(["team-permits"]));
        let listed = with("aud", json!(["account", "druppie"]));
        assert!(verify(&key.sign(&listed), &keys(&[&key]), &expect()).is_ok());
    }

    #[test]
    fn expired_wrong_audience_wrong_issuer_and_future_tokens_are_refused() {
        let key = TestKey::new("k1");
        let set = keys(&[&key]);
        let check = |c: Value| verify(&key.sign(&c), &set, &expect()).map(|c| c.subject);
        assert_eq!(check(with("exp", json!(NOW - 61))), Err(Refused::Expired));
        assert!(check(with("exp", json!(NOW - 30))).is_ok(), "within leeway");
        assert_eq!(check(with("aud", json!("other"))), Err(Refused::Audience));
        assert_eq!(check(with("aud", json!(["other"]))), Err(Refused::Audience));
        assert_eq!(
            check(with("iss", json!("https://evil.example.org"))),
            Err(Refused::Issuer)
        );
        assert_eq!(check(with("nbf", json!(NOW + 600))), Err(Refused::NotYet));
        let mut no_exp = claims();
        no_exp.as_object_mut().expect("object").remove("exp");
        assert!(matches!(check(no_exp), Err(Refused::Malformed(_))));
        assert_eq!(check(with("sub", json!(""))), Err(Refused::NoSubject));
    }

    #[test]
    fn a_signature_by_another_key_under_the_issuers_kid_is_refused() {
        let key = TestKey::new("k1");
        let impostor = TestKey::new("k1");
        let token = impostor.sign(&claims());
        assert_eq!(
            verify(&token, &keys(&[&key]), &expect()).map(|_| ()),
            Err(Refused::Signature)
        );
        // Claims changed after signing.
        let good = key.sign(&claims());
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(&with("sub", json!("root"))),
            parts[2]
        );
        assert_eq!(
            verify(&forged, &keys(&[&key]), &expect()).map(|_| ()),
            Err(Refused::Signature)
        );
    }

    #[test]
    fn alg_none_and_hmac_with_the_public_key_as_secret_are_refused() {
        use hmac::Mac as _;
        let key = TestKey::new("k1");
        let set = keys(&[&key]);
        let none = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "kid": "k1"})),
            b64(&claims())
        );
        assert_eq!(
            verify(&none, &set, &expect()).map(|_| ()),
            Err(Refused::Algorithm("none".into()))
        );
        // Algorithm confusion: HS256 keyed with the published public key.
        for secret in [key.public(), serde_json::to_vec(&key.jwk()).expect("json")] {
            let input = format!(
                "{}.{}",
                b64(&json!({"alg": "HS256", "kid": "k1"})),
                b64(&claims())
            );
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&secret).expect("any key");
            mac.update(input.as_bytes());
            let token = format!(
                "{input}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            );
            assert_eq!(
                verify(&token, &set, &expect()).map(|_| ()),
                Err(Refused::Algorithm("HS256".into()))
            );
        }
    }

    #[test]
    fn an_unknown_kid_is_told_apart_so_the_keys_can_be_fetched_again() {
        let key = TestKey::new("k1");
        let rotated = TestKey::new("k2");
        assert_eq!(
            verify(&rotated.sign(&claims()), &keys(&[&key]), &expect()).map(|_| ()),
            Err(Refused::UnknownKey("k2".into()))
        );
        assert!(
            verify(
                &rotated.sign(&claims()),
                &keys(&[&key, &rotated]),
                &expect()
            )
            .is_ok()
        );
    }

    #[test]
    fn a_key_is_used_only_with_the_algorithm_its_type_and_jwk_allow() {
        let key = TestKey::new("k1");
        let input = format!(
            "{}.{}",
            b64(&json!({"alg": "RS256", "kid": "k1"})),
            b64(&claims())
        );
        assert_eq!(
            verify(&format!("{input}.AAAA"), &keys(&[&key]), &expect()).map(|_| ()),
            Err(Refused::KeyAlgorithm(Alg::Rs256))
        );
        let set = Keys::parse(
            br#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"},{"kty":"EC","crv":"P-256","use":"enc","kid":"e","x":"","y":""}]}"#,
        )
        .expect("a JWKS");
        assert!(set.is_empty(), "symmetric and encryption keys are left out");
    }

    #[test]
    fn rs256_and_ps256_tokens_verify_with_an_rsa_jwk() {
        let dir = tempfile::tempdir().expect("tmp");
        // OpenSSL writes a DER private key as PKCS#1 (RSAPrivateKey).
        let der = dir.path().join("rsa.der");
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .args(["-outform", "DER", "-out"])
            .arg(&der)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pair = signature::RsaKeyPair::from_der(&std::fs::read(&der).expect("key"))
            .expect("an RSA key");
        let public: signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        let jwks = json!({"keys": [{"kty": "RSA", "kid": "r1",
            "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e)}]});
        let set = Keys::parse(&serde_json::to_vec(&jwks).expect("json")).expect("JWKS");
        for (alg, padding) in [
            (
                "RS256",
                &signature::RSA_PKCS1_SHA256 as &dyn signature::RsaEncoding,
            ),
            ("PS256", &signature::RSA_PSS_SHA256),
        ] {
            let input = format!(
                "{}.{}",
                b64(&json!({"alg": alg, "kid": "r1"})),
                b64(&claims())
            );
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(
                padding,
                &ring::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .expect("signs");
            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
            assert!(verify(&token, &set, &expect()).is_ok(), "{alg}");
        }
    }
}
