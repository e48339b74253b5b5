//! Link tokens: the secret in a share URL.
//!
//! Layout (version 1), before base64url without padding:
//! `version (1) | key-id length (1) | key id | link id (16) | HMAC-SHA256 (32)`.
//! The MAC covers a domain-separation label and every byte before it, so the version, key id and
//! link id are all authenticated. Verification is constant time and never panics: any malformed,
//! unknown-version, unknown-key, tampered or truncated token is just `None`.
//!
//! Keys may carry a retirement time (`[keys.retire]`): from that second on, nothing signed or
//! sealed with the key verifies any more (tokens, cookies, form tokens). The check runs after the
//! MAC, on every token, so a retired key costs the same work as a live one.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::link::LinkId;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const LABEL: &[u8] = b"linkgate/token/v1\0";
const MAC_LEN: usize = 32;
const MAX_KID: usize = 32;
/// Longest token text accepted; anything longer is rejected before decoding.
pub const MAX_TOKEN_CHARS: usize = ((2 + MAX_KID + LinkId::LEN + MAC_LEN) * 4).div_ceil(3);

/// Whether `kid` is an acceptable key id: 1..=32 of `A-Z a-z 0-9 _ -`.
pub fn valid_key_id(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The signing key and every key that verifies, by key id. Key bytes never appear in `Debug`.
#[derive(Clone)]
pub struct Keyring {
    signing: Arc<str>,
    keys: Arc<HashMap<Box<[u8]>, HmacSha256>>,
    /// Unix second from which a key no longer verifies anything; absent: never retired.
    retire: Arc<HashMap<Box<[u8]>, i64>>,
}

/// The current Unix time in seconds.
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<_> = self
            .keys
            .keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        ids.sort();
        let mut retire: Vec<_> = self
            .retire
            .iter()
            .map(|(k, t)| (String::from_utf8_lossy(k).into_owned(), *t))
            .collect();
        retire.sort();
        f.debug_struct("Keyring")
            .field("signing", &self.signing)
            .field("key_ids", &ids)
            .field("retire", &retire)
            .finish()
    }
}

impl Keyring {
    /// `secrets` are (key id, key bytes); the caller has checked that `signing` is among them.
    pub fn new(signing: &str, secrets: Vec<(String, Vec<u8>)>) -> Keyring {
        let keys = secrets
            .into_iter()
            .filter_map(|(kid, key)| {
                let mac = HmacSha256::new_from_slice(&key).ok()?;
                Some((kid.into_bytes().into_boxed_slice(), mac))
            })
            .collect();
        Keyring {
            signing: signing.into(),
            keys: Arc::new(keys),
            retire: Arc::default(),
        }
    }

    /// The same keys with retirement times: (key id, Unix second from which it verifies nothing).
    /// The caller has checked that the signing key is not among them.
    pub fn with_retirements(mut self, retire: Vec<(String, i64)>) -> Keyring {
        self.retire = Arc::new(
            retire
                .into_iter()
                .map(|(kid, at)| (kid.into_bytes().into_boxed_slice(), at))
                .collect(),
        );
        self
    }

    /// When key `kid` retires (Unix seconds), if it does.
    pub fn retires_at(&self, kid: &str) -> Option<i64> {
        self.retire.get(kid.as_bytes()).copied()
    }

    /// Whether key `kid` still verifies at `now` (Unix seconds).
    fn live_at(&self, kid: &[u8], now: i64) -> bool {
        self.retire.get(kid).is_none_or(|&at| now < at)
    }

    pub fn signing_key_id(&self) -> &str {
        &self.signing
    }

    /// The token for `link` under the signing key.
    pub fn sign(&self, link: &LinkId) -> String {
        self.sign_with(&self.signing, link).unwrap_or_default()
    }

    /// The token for `link` under key `kid`, if that key is known and not retired (a retired
    /// key's tokens would not verify, so none are handed out).
    pub fn sign_with(&self, kid: &str, link: &LinkId) -> Option<String> {
        let mac = self.keys.get(kid.as_bytes())?;
        if !self.live_at(kid.as_bytes(), now_secs()) {
            return None;
        }
        let mut raw = Vec::with_capacity(2 + kid.len() + LinkId::LEN + MAC_LEN);
        raw.push(VERSION);
        raw.push(kid.len() as u8);
        raw.extend_from_slice(kid.as_bytes());
        raw.extend_from_slice(link.as_bytes());
        let mut mac = mac.clone();
        mac.update(LABEL);
        mac.update(&raw);
        raw.extend_from_slice(&mac.finalize().into_bytes());
        Some(URL_SAFE_NO_PAD.encode(raw))
    }

    /// Verifies a token and returns the link id it carries.
    pub fn verify(&self, token: &str) -> Option<LinkId> {
        self.verify_at(token, now_secs())
    }

    /// [`Keyring::verify`] at a given time (Unix seconds): a token whose key is retired by then
    /// is refused.
    pub fn verify_at(&self, token: &str, now: i64) -> Option<LinkId> {
        if token.len() > MAX_TOKEN_CHARS || token.len() < 4 {
            return None;
        }
        let mut buf = [0u8; 2 + MAX_KID + LinkId::LEN + MAC_LEN + 3];
        let n = URL_SAFE_NO_PAD
            .decode_slice(token.as_bytes(), &mut buf)
            .ok()?;
        let raw = &buf[..n];
        let (&version, rest) = raw.split_first()?;
        if version != VERSION {
            return None;
        }
        let (&kid_len, rest) = rest.split_first()?;
        let kid_len = kid_len as usize;
        if kid_len == 0 || kid_len > MAX_KID || rest.len() != kid_len + LinkId::LEN + MAC_LEN {
            return None;
        }
        let (kid, rest) = rest.split_at(kid_len);
        let (link, tag) = rest.split_at(LinkId::LEN);
        let mut mac = self.keys.get(kid)?.clone();
        mac.update(LABEL);
        mac.update(&raw[..raw.len() - MAC_LEN]);
        // `verify_slice` compares in constant time.
        let genuine = mac.verify_slice(tag).is_ok();
        // The retirement check comes after the MAC, so retired and live keys cost the same.
        if !(genuine & self.live_at(kid, now)) {
            return None;
        }
        LinkId::from_slice(link)
    }

    /// An HMAC under key `kid`, primed with a domain (`seal`, `hash`) and a purpose label, so
    /// values made for one purpose never verify for another.
    fn labelled(&self, kid: &[u8], domain: &[u8], label: &str, data: &str) -> Option<HmacSha256> {
        let mut mac = self.keys.get(kid)?.clone();
        mac.update(b"linkgate/");
        mac.update(domain);
        mac.update(b"/");
        mac.update(label.as_bytes());
        mac.update(b"\0");
        mac.update(data.as_bytes());
        Some(mac)
    }

    /// Seals `payload` for a purpose (`label`): `payload.kid.mac`, the MAC over label and payload
    /// under the signing key. Used for cookies and form tokens; the payload is readable, not secret.
    pub fn seal(&self, label: &str, payload: &str) -> String {
        let Some(mac) = self.labelled(self.signing.as_bytes(), b"seal", label, payload) else {
            return String::new();
        };
        format!(
            "{payload}.{}.{}",
            self.signing,
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    /// The payload of a sealed value, if its MAC verifies (in constant time) under a known key.
    pub fn open<'a>(&self, label: &str, sealed: &'a str) -> Option<&'a str> {
        if sealed.len() > 1024 {
            return None;
        }
        let (rest, tag) = sealed.rsplit_once('.')?;
        let (payload, kid) = rest.rsplit_once('.')?;
        let mut tag_bytes = [0u8; MAC_LEN + 2];
        let n = URL_SAFE_NO_PAD
            .decode_slice(tag.as_bytes(), &mut tag_bytes)
            .ok()?;
        let mac = self.labelled(kid.as_bytes(), b"seal", label, payload)?;
        let genuine = mac.verify_slice(&tag_bytes[..n]).is_ok();
        (genuine & self.live_at(kid.as_bytes(), now_secs())).then_some(payload)
    }

    /// A keyed hash (hex) of `data` for a purpose, e.g. a mailed code as stored.
    pub fn keyed_hash(&self, label: &str, data: &str) -> String {
        let Some(mac) = self.labelled(self.signing.as_bytes(), b"hash", label, data) else {
            return String::new();
        };
        crate::model::hex::encode(&mac.finalize().into_bytes())
    }

    /// The key id a (verified) token was signed with; `None` for anything unparsable.
    pub fn key_id_of(token: &str) -> Option<String> {
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        let len = *raw.get(1)? as usize;
        raw.get(2..2 + len)
            .map(|k| String::from_utf8_lossy(k).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::new(
            "k2",
            vec![("k1".into(), vec![1u8; 32]), ("k2".into(), vec![2u8; 32])],
        )
    }

    #[test]
    fn round_trip_and_length() {
        let r = ring();
        let id = LinkId::random();
        let t = r.sign(&id);
        assert!(t.len() < 100, "token is {} chars", t.len());
        assert_eq!(r.verify(&t), Some(id));
        assert_eq!(Keyring::key_id_of(&t).as_deref(), Some("k2"));
    }

    #[test]
    fn old_key_still_verifies_unknown_key_does_not() {
        let id = LinkId::random();
        let old = ring().sign_with("k1", &id).unwrap();
        assert_eq!(ring().verify(&old), Some(id));
        let only_k2 = Keyring::new("k2", vec![("k2".into(), vec![2u8; 32])]);
        assert_eq!(only_k2.verify(&old), None);
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let r = ring();
        let t = r.sign(&LinkId::random());
        let raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        for i in 0..raw.len() {
            for bit in 0..8 {
                let mut m = raw.clone();
                m[i] ^= 1 << bit;
                assert_eq!(
                    r.verify(&URL_SAFE_NO_PAD.encode(&m)),
                    None,
                    "byte {i} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn truncated_padded_and_garbage_tokens_are_rejected() {
        let r = ring();
        let t = r.sign(&LinkId::random());
        for n in 0..t.len() {
            assert_eq!(r.verify(&t[..n]), None);
        }
        assert_eq!(r.verify(&format!("{t}=")), None);
        assert_eq!(r.verify(&format!("{t}A")), None);
        assert_eq!(r.verify(&"A".repeat(10_000)), None);
        assert_eq!(r.verify("../../etc/passwd"), None);
        assert_eq!(r.verify("é"), None);
    }

    #[test]
    fn sealed_values_open_only_untouched_and_for_their_purpose() {
        let r = ring();
        let sealed = r.seal("device", "abc.def");
        assert_eq!(r.open("device", &sealed), Some("abc.def"));
        assert_eq!(r.open("pass", &sealed), None, "bound to its purpose");
        assert_eq!(r.open("device", &sealed.replace("abc", "abd")), None);
        assert_eq!(r.open("device", &format!("{sealed}x")), None);
        assert_eq!(r.open("device", "no dots"), None);
        assert_eq!(r.open("device", ".."), None);
        let other = Keyring::new("k2", vec![("k2".into(), vec![3u8; 32])]);
        assert_eq!(other.open("device", &sealed), None);
        assert_ne!(
            r.keyed_hash("code", "123456"),
            r.keyed_hash("code", "123457")
        );
    }

    #[test]
    fn a_retired_key_stops_verifying_at_its_second_and_others_never_do() {
        let r = ring().with_retirements(vec![("k1".into(), 2_000_000_000)]);
        let id = LinkId::random();
        let old = r.sign_with("k1", &id).unwrap();
        let new = r.sign(&id);
        assert_eq!(
            r.verify_at(&old, 1_999_999_999),
            Some(id),
            "the last second before retirement"
        );
        assert_eq!(
            r.verify_at(&old, 2_000_000_000),
            None,
            "retired from that second on"
        );
        assert_eq!(r.verify_at(&old, 2_100_000_000), None);
        assert_eq!(
            r.verify_at(&new, 2_100_000_000),
            Some(id),
            "the signing key is unaffected"
        );
        assert_eq!(r.retires_at("k1"), Some(2_000_000_000));
        assert_eq!(r.retires_at("k2"), None);
        let retired_now = ring().with_retirements(vec![("k1".into(), 0)]);
        assert_eq!(
            retired_now.sign_with("k1", &id),
            None,
            "no tokens are made with a retired key"
        );
    }

    #[test]
    fn values_sealed_with_a_retired_key_no_longer_open() {
        let old = Keyring::new(
            "k1",
            vec![("k1".into(), vec![1u8; 32]), ("k2".into(), vec![2u8; 32])],
        );
        let sealed = old.seal("device", "abc");
        let rotated = Keyring::new(
            "k2",
            vec![("k1".into(), vec![1u8; 32]), ("k2".into(), vec![2u8; 32])],
        );
        assert_eq!(rotated.open("device", &sealed), Some("abc"));
        let retired = rotated.with_retirements(vec![("k1".into(), 0)]);
        assert_eq!(retired.open("device", &sealed), None);
        assert_eq!(
            retired.open("device", &retired.seal("device", "abc")),
            Some("abc")
        );
    }

    #[test]
    fn other_version_is_rejected() {
        let r = ring();
        let mut raw = URL_SAFE_NO_PAD.decode(r.sign(&LinkId::random())).unwrap();
        raw[0] = 2;
        assert_eq!(r.verify(&URL_SAFE_NO_PAD.encode(&raw)), None);
    }
}
