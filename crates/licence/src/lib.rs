//! VitalTrends licence keys: what a subscriber pastes into the app, and what the relay's token
//! broker checks before it lets a device sign in to WHOOP through the VitalTrends service.
//!
//! A key is `VT1.<base64url payload>.<base64url signature>`: the payload is JSON ([`Claims`]:
//! licence id, plan, expiry, device limit), the signature is Ed25519 over the text
//! `VT1.<base64url payload>`. Anyone can read a key offline ([`decode`]), which is all the app
//! does (to show plan and expiry); only the relay, holding the public key, trusts one
//! ([`PublicKey::verify`]). The expiry in a key is the paid-through date when it was issued: the
//! relay's database is what says whether a licence is active now (renewals and revocations happen
//! there), so a key is never re-issued for a renewal.
//!
//! Key files are one line of text: `vt-licence-signing-key-1.<base64url 32-byte seed>` or
//! `vt-licence-public-key-1.<base64url 32-byte key>`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, Verifier as _};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The key format's prefix; a new format gets a new one.
pub const PREFIX: &str = "VT1";
const SIGNING_PREFIX: &str = "vt-licence-signing-key-1.";
const PUBLIC_PREFIX: &str = "vt-licence-public-key-1.";
/// Real keys are about 250 characters; anything far longer is not one (and is not parsed).
const MAX_KEY_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not shaped like a licence key (wrong prefix, parts, encoding or JSON).
    #[error("not a VitalTrends licence key")]
    Malformed,
    /// Shaped right, but not signed by the key the relay trusts (forged, tampered or from
    /// another deployment).
    #[error("the licence key's signature does not verify")]
    BadSignature,
    #[error("not a licence key file: {0}")]
    KeyFile(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a licence key says. Times are Unix seconds (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// `lic_` and 32 hex digits; how the relay's database knows the licence.
    pub id: String,
    /// A display name such as `personal`; the relay does not interpret it.
    pub plan: String,
    pub issued_at: i64,
    /// Paid through, as issued. The relay may know a later (renewed) or earlier (revoked) end.
    pub expires_at: i64,
    /// How many devices may be bound to this licence at once.
    pub max_devices: u32,
}

impl Claims {
    /// A new licence id with the given terms.
    pub fn new(plan: &str, issued_at: i64, expires_at: i64, max_devices: u32) -> Claims {
        Claims {
            id: new_id(),
            plan: plan.to_string(),
            issued_at,
            expires_at,
            max_devices,
        }
    }
}

/// A fresh random licence id.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("lic_{hex}")
}

/// Splits a key into its signed text, payload and signature bytes.
fn parts(key: &str) -> Result<(&str, Vec<u8>, Vec<u8>)> {
    let key = key.trim();
    if key.len() > MAX_KEY_LEN {
        return Err(Error::Malformed);
    }
    let (signed, sig) = key.rsplit_once('.').ok_or(Error::Malformed)?;
    let (prefix, payload) = signed.split_once('.').ok_or(Error::Malformed)?;
    if prefix != PREFIX {
        return Err(Error::Malformed);
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Error::Malformed)?;
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| Error::Malformed)?;
    Ok((signed, payload, sig))
}

/// Reads a key without checking its signature: for showing plan and expiry in the app, which has
/// no reason to distrust the key its own person pasted (the relay checks it on every use).
pub fn decode(key: &str) -> Result<Claims> {
    let (_, payload, _) = parts(key)?;
    serde_json::from_slice(&payload).map_err(|_| Error::Malformed)
}

/// The relay's verifying key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Checks the signature, then reads the claims. Does not look at the expiry: whether a
    /// licence is active is the relay database's call.
    pub fn verify(&self, key: &str) -> Result<Claims> {
        let (signed, payload, sig) = parts(key)?;
        let sig = Signature::from_slice(&sig).map_err(|_| Error::BadSignature)?;
        self.0
            .verify(signed.as_bytes(), &sig)
            .map_err(|_| Error::BadSignature)?;
        serde_json::from_slice(&payload).map_err(|_| Error::Malformed)
    }

    /// The one-line text form, as `licence keygen` prints it.
    pub fn to_text(&self) -> String {
        format!(
            "{PUBLIC_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(self.0.as_bytes())
        )
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// The operator's signing key. Its `Debug` never shows the key.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    pub fn generate() -> SigningKey {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The one-line text form written to the key file. A secret: never log it.
    pub fn to_text(&self) -> String {
        format!(
            "{SIGNING_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(self.0.to_bytes())
        )
    }

    /// A signed key carrying `claims`.
    pub fn issue(&self, claims: &Claims) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialise");
        let signed = format!("{PREFIX}.{}", URL_SAFE_NO_PAD.encode(payload));
        let sig = self.0.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({:?})", self.public_key())
    }
}

/// What a key file holds: the relay accepts either (a public key is enough to verify, and is
/// what a relay that never issues licences should be given); issuing needs the signing key.
#[derive(Debug)]
pub enum KeyFile {
    Signing(SigningKey),
    Public(PublicKey),
}

impl KeyFile {
    /// Parses a key file's text (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<KeyFile> {
        let text = text.trim();
        let decode32 = |b64: &str| -> Result<[u8; 32]> {
            let bytes = URL_SAFE_NO_PAD
                .decode(b64)
                .map_err(|_| Error::KeyFile("not base64url"))?;
            bytes.try_into().map_err(|_| Error::KeyFile("not 32 bytes"))
        };
        if let Some(b64) = text.strip_prefix(SIGNING_PREFIX) {
            let seed = decode32(b64)?;
            return Ok(KeyFile::Signing(SigningKey(
                ed25519_dalek::SigningKey::from_bytes(&seed),
            )));
        }
        if let Some(b64) = text.strip_prefix(PUBLIC_PREFIX) {
            let bytes = decode32(b64)?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| Error::KeyFile("not an Ed25519 public key"))?;
            return Ok(KeyFile::Public(PublicKey(key)));
        }
        Err(Error::KeyFile(
            "expected vt-licence-signing-key-1.… or vt-licence-public-key-1.…",
        ))
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            KeyFile::Signing(k) => k.public_key(),
            KeyFile::Public(k) => k.clone(),
        }
    }

    pub fn signing_key(&self) -> Option<&SigningKey> {
        match self {
            KeyFile::Signing(k) => Some(k),
            KeyFile::Public(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims::new("personal", 1_800_000_000, 1_802_592_000, 3)
    }

    #[test]
    fn issued_keys_verify_and_decode_offline() {
        let sk = SigningKey::generate();
        let c = claims();
        let key = sk.issue(&c);
        assert!(key.starts_with("VT1."));
        assert_eq!(key.matches('.').count(), 2);
        assert_eq!(sk.public_key().verify(&key).unwrap(), c);
        assert_eq!(decode(&key).unwrap(), c);
        assert_eq!(decode(&format!("  {key}\n")).unwrap(), c);
        assert!(c.id.starts_with("lic_") && c.id.len() == 36);
    }

    #[test]
    fn tampered_forged_and_foreign_keys_are_refused() {
        let sk = SigningKey::generate();
        let key = sk.issue(&claims());
        let pk = sk.public_key();
        // Another deployment's key.
        let other = SigningKey::generate().issue(&claims());
        assert_eq!(pk.verify(&other), Err(Error::BadSignature));
        // A payload changed under the same signature (more devices).
        let (_, rest) = key.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let mut more = claims();
        more.max_devices = 99;
        let forged = format!(
            "VT1.{}.{sig}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&more).unwrap())
        );
        assert_eq!(pk.verify(&forged), Err(Error::BadSignature));
        assert_eq!(decode(&forged).unwrap().max_devices, 99, "decode trusts");
        for bad in [
            "",
            "VT1",
            "VT1.x",
            "VT2.e30.AA",
            "VT1.!!.AA",
            &"A".repeat(5000),
        ] {
            assert_eq!(pk.verify(bad), Err(Error::Malformed), "{bad:.20}");
        }
        // A signature of the wrong length.
        let short = format!("{}.AAAA", key.rsplit_once('.').unwrap().0);
        assert_eq!(pk.verify(&short), Err(Error::BadSignature));
    }

    #[test]
    fn key_files_round_trip_and_hide_the_secret() {
        let sk = SigningKey::generate();
        let text = sk.to_text();
        let parsed = KeyFile::parse(&format!("{text}\n")).unwrap();
        assert_eq!(parsed.public_key(), sk.public_key());
        assert!(parsed.signing_key().is_some());
        let public = KeyFile::parse(&sk.public_key().to_text()).unwrap();
        assert!(public.signing_key().is_none());
        let key = sk.issue(&claims());
        assert!(public.public_key().verify(&key).is_ok());
        let secret_part = text.strip_prefix(SIGNING_PREFIX).unwrap();
        assert!(!format!("{sk:?}").contains(secret_part));
        assert!(!format!("{parsed:?}").contains(secret_part));
        assert!(KeyFile::parse("hello").is_err());
        assert!(KeyFile::parse("vt-licence-public-key-1.AAAA").is_err());
    }
}
