//! The cryptography of Web Push, on `ring`: the server's VAPID key and the
//! JWT that proves a push comes from us (RFC 8292), and the `aes128gcm`
//! encryption of a payload to one browser's keys (RFC 8291, RFC 8188).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use ring::{aead, agreement, hkdf};

/// An uncompressed P-256 public key: 0x04, then X and Y.
pub const PUBLIC_KEY_LEN: usize = 65;
/// The authentication secret a browser gives with its subscription.
pub const AUTH_LEN: usize = 16;
/// The record size written in the header: the whole payload is one record.
const RECORD_SIZE: u32 = 4096;
/// The largest plaintext one record carries (the tag and the delimiter
/// take 17 bytes of a record).
pub const MAX_PLAINTEXT: usize = RECORD_SIZE as usize - 17;
/// How long a VAPID token is valid (RFC 8292 allows at most 24 h).
const TOKEN_LIFETIME_SECS: u64 = 12 * 3600;

/// The server's VAPID key pair.
pub struct Vapid {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

#[derive(Debug, thiserror::Error)]
#[error("the cryptography failed: {0}")]
pub struct CryptoError(&'static str);

impl Vapid {
    /// A new key pair, as PKCS#8 to keep.
    pub fn generate() -> Result<Vec<u8>, CryptoError> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| CryptoError("cannot make a VAPID key"))
    }

    /// The key pair kept as PKCS#8.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Vapid, CryptoError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|_| CryptoError("the stored VAPID key is not a P-256 key"))?;
        Ok(Vapid { pair, rng })
    }

    /// The public key, base64url without padding: what browsers take as
    /// `applicationServerKey` and what `k=` carries.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.pair.public_key().as_ref())
    }

    /// The `Authorization` header for a push to `endpoint`: a JWT for the
    /// endpoint's origin signed with ES256, and our public key.
    pub fn authorization(
        &self,
        endpoint: &hyper::Uri,
        contact: &str,
        now_secs: u64,
    ) -> Result<String, CryptoError> {
        let scheme = endpoint.scheme_str().unwrap_or("https");
        let authority = endpoint
            .authority()
            .ok_or(CryptoError("the endpoint has no host"))?;
        let claims = serde_json::json!({
            "aud": format!("{scheme}://{authority}"),
            "exp": now_secs + TOKEN_LIFETIME_SECS,
            "sub": contact,
        });
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        let signature = self
            .pair
            .sign(&self.rng, signed.as_bytes())
            .map_err(|_| CryptoError("cannot sign the VAPID token"))?;
        Ok(format!(
            "vapid t={signed}.{}, k={}",
            URL_SAFE_NO_PAD.encode(signature.as_ref()),
            self.public_key()
        ))
    }
}

/// Whether `p256dh` is a point on P-256 (found by agreeing a key with it).
pub fn valid_public_key(p256dh: &[u8]) -> bool {
    if p256dh.len() != PUBLIC_KEY_LEN || p256dh[0] != 0x04 {
        return false;
    }
    let rng = SystemRandom::new();
    let Ok(mine) = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng) else {
        return false;
    };
    let theirs = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, p256dh);
    agreement::agree_ephemeral(mine, &theirs, |_| ()).is_ok()
}

/// Encrypts `plaintext` for the browser with public key `p256dh` and
/// secret `auth` (RFC 8291 §3.4), as the body of one push: the header
/// (salt, record size, our ephemeral public key) and one record.
pub fn encrypt(plaintext: &[u8], p256dh: &[u8], auth: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(CryptoError("the payload is larger than one record"));
    }
    let rng = SystemRandom::new();
    let ephemeral = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
        .map_err(|_| CryptoError("cannot make an ephemeral key"))?;
    let ours = ephemeral
        .compute_public_key()
        .map_err(|_| CryptoError("cannot make an ephemeral key"))?;
    let theirs = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, p256dh);
    let shared = agreement::agree_ephemeral(ephemeral, &theirs, <[u8]>::to_vec)
        .map_err(|_| CryptoError("the browser's key is not a P-256 point"))?;
    // IKM = HKDF(auth, ecdh_secret, "WebPush: info" 0 ua_public as_public)
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(p256dh);
    key_info.extend_from_slice(ours.as_ref());
    let ikm: [u8; 32] = hkdf_once(auth, &shared, &key_info)?;
    let mut salt = [0u8; 16];
    rng.fill(&mut salt)
        .map_err(|_| CryptoError("no randomness"))?;
    let cek: [u8; 16] = hkdf_once(&salt, &ikm, b"Content-Encoding: aes128gcm\0")?;
    let nonce: [u8; 12] = hkdf_once(&salt, &ikm, b"Content-Encoding: nonce\0")?;
    // One record, the last: the plaintext, then the delimiter 0x02.
    let mut record = Vec::with_capacity(plaintext.len() + 17);
    record.extend_from_slice(plaintext);
    record.push(2);
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_128_GCM, &cek)
            .map_err(|_| CryptoError("bad content key"))?,
    );
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::empty(),
        &mut record,
    )
    .map_err(|_| CryptoError("cannot encrypt"))?;
    let mut body = Vec::with_capacity(16 + 4 + 1 + PUBLIC_KEY_LEN + record.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(PUBLIC_KEY_LEN as u8);
    body.extend_from_slice(ours.as_ref());
    body.extend_from_slice(&record);
    Ok(body)
}

/// HKDF-SHA-256 extract with `salt` and `ikm`, then expand with `info` to
/// `N` bytes.
fn hkdf_once<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> Result<[u8; N], CryptoError> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let mut out = [0u8; N];
    prk.expand(&[info], Len(N))
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| CryptoError("HKDF failed"))?;
    Ok(out)
}
