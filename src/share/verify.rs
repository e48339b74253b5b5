//! Proof that a browser may go on: link passwords (argon2id), mailed 6-digit codes, and the signed
//! cookies and form tokens that carry those proofs.
//!
//! - Passwords are hashed with argon2id; checking one runs on the blocking pool, at most a few at
//!   a time, so hashing cannot be used to exhaust the CPU (and attempts are throttled before).
//! - A link's current code is derived with the signing key from a nonce the OS CSPRNG made: the
//!   store holds only the nonce, never the code.
//! - Proof-of-work challenges (past a link's guessing budget) are HMAC-bound to link and
//!   generation, expire, and are checked with one HMAC and one SHA-256 before any hashing.
//! - `lg_dev` (device) and `lg_pw` (password passed, bound to link and generation) cookies and the
//!   forms' CSRF tokens are sealed with the signing key (HMAC, constant-time check).

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use http::HeaderMap;
use rand::Rng;
use sha2::Digest;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::model::link::{Link, LinkId};
use crate::model::token::Keyring;

pub const DEVICE_COOKIE: &str = "lg_dev";
pub const PASS_COOKIE: &str = "lg_pw";
/// How long a passed password is remembered by the browser.
const PASS_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long a verified password is remembered by this instance, and how many at most.
const MEMO_LIFETIME: Duration = Duration::from_secs(3600);
const MEMO_MAX: usize = 10_000;
/// How long a form may be left open before it must be reloaded.
const FORM_LIFETIME: Duration = Duration::from_secs(3600);
/// How long a download button's ticket lets a browser fetch (and resume) the document.
const DOWNLOAD_TICKET_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long the page images of one counted view may be fetched (a viewer left open that long
/// and then scrolled asks for them again through a new, counted view).
const PAGE_TICKET_LIFETIME: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub struct Verifier {
    keys: Keyring,
    hashing: Arc<Semaphore>,
    /// Passwords this instance verified lately, by keyed hash of link, generation and password,
    /// with the unix second each is forgotten. Scripts send the password with every request: a
    /// right one sent again skips argon2 and the attempt caps. Only right passwords are kept, so
    /// a guess matches one only if it would have passed anyway.
    memo: parking_lot::Mutex<std::collections::HashMap<String, i64>>,
    /// Mark cookies `Secure` (on by default for an https public URL).
    pub secure_cookies: bool,
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Hashes a new link password with argon2id (on the blocking pool).
pub async fn hash_password(password: &str) -> Result<String, VerifyError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| VerifyError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| VerifyError::Hash(e.to_string()))?
}

/// A fresh code nonce from the OS CSPRNG (128 bits, hex): the stored half of a mailed code.
pub fn new_code_nonce() -> String {
    let bytes: [u8; 16] = rand::rngs::OsRng.gen();
    crate::model::hex::encode(&bytes)
}

/// How long a proof-of-work challenge may be solved and used.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Why a proof of work was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    /// Not a solved challenge of this gateway for this link and generation.
    Invalid,
    /// A genuine challenge that is no longer good: solve a new one.
    Expired,
}

/// Leading zero bits of SHA-256(`text`).
pub fn zero_bits(text: &str) -> u32 {
    let digest = sha2::Sha256::digest(text.as_bytes());
    let mut zeros = 0;
    for byte in digest {
        zeros += byte.leading_zeros();
        if byte != 0 {
            break;
        }
    }
    zeros
}

/// A fresh device id (128 random bits, hex).
pub fn new_device_id() -> String {
    let bytes: [u8; 16] = rand::random();
    crate::model::hex::encode(&bytes)
}

/// The values of cookie `name` in the request (a browser may send several).
pub fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

impl Verifier {
    pub fn new(keys: Keyring, secure_cookies: bool) -> Verifier {
        let permits = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 8);
        Verifier {
            keys,
            hashing: Arc::new(Semaphore::new(permits)),
            memo: Default::default(),
            secure_cookies,
        }
    }

    fn memo_key(&self, link: &Link, password: &str) -> String {
        self.keys.keyed_hash(
            "password-memo",
            &format!("{}:{}:{password}", link.id, link.generation),
        )
    }

    /// Whether this instance verified `password` for this link and generation lately.
    pub fn remembered(&self, link: &Link, password: &str) -> bool {
        let key = self.memo_key(link, password);
        !key.is_empty()
            && self
                .memo
                .lock()
                .get(&key)
                .is_some_and(|until| *until > now_secs())
    }

    /// Remembers a password that passed the argon2 check.
    pub fn remember(&self, link: &Link, password: &str) {
        let key = self.memo_key(link, password);
        if key.is_empty() {
            return;
        }
        let now = now_secs();
        let mut memo = self.memo.lock();
        if memo.len() >= MEMO_MAX {
            memo.retain(|_, until| *until > now);
            if memo.len() >= MEMO_MAX {
                memo.clear();
            }
        }
        memo.insert(key, now + MEMO_LIFETIME.as_secs() as i64);
    }

    /// Checks a password against its argon2id hash, a few checks at a time.
    pub async fn check_password(&self, hash: &str, password: &str) -> bool {
        let Ok(_permit) = self.hashing.clone().acquire_owned().await else {
            return false;
        };
        let (hash, password) = (hash.to_string(), password.to_string());
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false)
    }

    /// The 6-digit code of a link's current code nonce, derived with the signing key: the store
    /// holds only the nonce, never the code. `None` without a signing key.
    pub fn code_of(&self, link: &LinkId, nonce: &str) -> Option<String> {
        let hash = self.keys.keyed_hash("code", &format!("{link}:{nonce}"));
        let value = u64::from_str_radix(hash.get(..16)?, 16).ok()?;
        Some(format!("{:06}", value % 1_000_000))
    }

    /// A proof-of-work challenge for this link and generation, `bits` hard, good for
    /// [`CHALLENGE_LIFETIME`]: `bits.until.nonce.mac` (the MAC binds link and generation).
    pub fn challenge(&self, link: &Link, bits: u32) -> String {
        let until = now_secs() + CHALLENGE_LIFETIME.as_secs() as i64;
        let nonce: u64 = rand::random();
        let payload = format!("{bits}.{until}.{nonce:016x}");
        let mac = self.challenge_mac(link, &payload);
        format!("{payload}.{mac}")
    }

    fn challenge_mac(&self, link: &Link, payload: &str) -> String {
        let hash = self
            .keys
            .keyed_hash("pow", &format!("{}:{}:{payload}", link.id, link.generation));
        hash.get(..32).unwrap_or_default().to_string()
    }

    /// Checks a proof `challenge:n` (cheap: one HMAC, one SHA-256): a genuine, unexpired challenge
    /// for this link and generation, with SHA-256(`challenge:n`) starting with its number of zero
    /// bits. Returns the challenge's nonce, which the caller spends once.
    pub fn check_proof(&self, link: &Link, proof: &str) -> Result<String, ProofError> {
        if proof.len() > 200 {
            return Err(ProofError::Invalid);
        }
        let (challenge, n) = proof.rsplit_once(':').ok_or(ProofError::Invalid)?;
        if n.is_empty() || n.len() > 20 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProofError::Invalid);
        }
        let (payload, mac) = challenge.rsplit_once('.').ok_or(ProofError::Invalid)?;
        let mut parts = payload.split('.');
        let (Some(bits), Some(until), Some(nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ProofError::Invalid);
        };
        let expected = self.challenge_mac(link, payload);
        if expected.is_empty()
            || !bool::from(subtle::ConstantTimeEq::ct_eq(
                expected.as_bytes(),
                mac.as_bytes(),
            ))
        {
            return Err(ProofError::Invalid);
        }
        let (Ok(bits), Ok(until)) = (bits.parse::<u32>(), until.parse::<i64>()) else {
            return Err(ProofError::Invalid);
        };
        if until <= now_secs() {
            return Err(ProofError::Expired);
        }
        if zero_bits(proof) < bits {
            return Err(ProofError::Invalid);
        }
        Ok(nonce.to_string())
    }

    fn attributes(&self, path: &str, max_age: Option<u64>) -> String {
        let mut a = format!("; Path={path}; HttpOnly; SameSite=Lax");
        if let Some(age) = max_age {
            a.push_str(&format!("; Max-Age={age}"));
        }
        if self.secure_cookies {
            a.push_str("; Secure");
        }
        a
    }

    /// `Set-Cookie` for a browser's device id (all links, one year).
    pub fn device_cookie(&self, device: &str) -> String {
        format!(
            "{DEVICE_COOKIE}={}{}",
            self.keys.seal("device", device),
            self.attributes("/", Some(365 * 86_400))
        )
    }

    /// The device id a request proves, if any.
    pub fn device_of(&self, headers: &HeaderMap) -> Option<String> {
        cookies(headers, DEVICE_COOKIE).find_map(|v| {
            let id = self.keys.open("device", v)?;
            (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
        })
    }

    /// `Set-Cookie` remembering that this browser passed the link's password (this generation).
    pub fn pass_cookie(&self, link: &Link, path: &str) -> String {
        let sealed = self.seal_for("pass", link, PASS_LIFETIME);
        format!(
            "{PASS_COOKIE}={sealed}{}",
            self.attributes(path, Some(PASS_LIFETIME.as_secs()))
        )
    }

    /// Whether the request carries a valid password cookie for this link and generation.
    pub fn passed(&self, headers: &HeaderMap, link: &Link) -> bool {
        cookies(headers, PASS_COOKIE).any(|v| self.opens_for("pass", v, link))
    }

    /// Seals `id:generation:until` of a link for `label`, good for `lifetime`.
    fn seal_for(&self, label: &str, link: &Link, lifetime: Duration) -> String {
        let until = now_secs() + lifetime.as_secs() as i64;
        self.keys
            .seal(label, &format!("{}:{}:{until}", link.id, link.generation))
    }

    /// Whether `sealed` is a genuine, unexpired value sealed by [`Self::seal_for`] for this
    /// link's generation.
    fn opens_for(&self, label: &str, sealed: &str, link: &Link) -> bool {
        let Some(payload) = self.keys.open(label, sealed) else {
            return false;
        };
        let mut parts = payload.split(':');
        let (Some(id), Some(generation), Some(until), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        id == link.id.to_string()
            && generation.parse::<u64>().ok() == Some(link.generation)
            && until.parse::<i64>().is_ok_and(|u| u > now_secs())
    }

    /// What the landing page's download button hands a browser (in the URL it is sent on to):
    /// proof that a person pressed the button, bound to the link's generation, good for a day so
    /// that the browser can resume the download. Scanners that only GET never get one.
    pub fn download_ticket(&self, link: &Link) -> String {
        self.seal_for("dl", link, DOWNLOAD_TICKET_LIFETIME)
    }

    /// Whether `ticket` is a genuine, unexpired download ticket of this link's generation.
    pub fn check_download_ticket(&self, ticket: &str, link: &Link) -> bool {
        self.opens_for("dl", ticket, link)
    }

    /// A page ticket: what the viewer page of a counted view puts in its page images' URLs, so
    /// that on a limited link page images come only through a view that was counted.
    pub fn page_ticket(&self, link: &Link) -> String {
        self.seal_for("pg", link, PAGE_TICKET_LIFETIME)
    }

    /// Whether `ticket` is a genuine, unexpired page ticket of this link's generation.
    pub fn check_page_ticket(&self, ticket: &str, link: &Link) -> bool {
        self.opens_for("pg", ticket, link)
    }

    /// A form token bound to link, browser and time; single use (checked by the caller with the
    /// returned nonce).
    pub fn csrf_token(&self, link: &LinkId, device: &str) -> String {
        let nonce: u64 = rand::random();
        let until = now_secs() + FORM_LIFETIME.as_secs() as i64;
        self.keys
            .seal("csrf", &format!("{link}:{device}:{until}:{nonce:016x}"))
    }

    /// The token's nonce when it is genuine, unexpired and bound to this link and browser.
    pub fn check_csrf(&self, token: &str, link: &LinkId, device: &str) -> Option<String> {
        let payload = self.keys.open("csrf", token)?;
        let mut parts = payload.split(':');
        let (Some(l), Some(d), Some(until), Some(nonce), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        (l == link.to_string() && d == device && until.parse::<i64>().is_ok_and(|u| u > now_secs()))
            .then(|| nonce.to_string())
    }
}

/// `j***@example.org`: enough for the recipient to recognise, little for anyone else.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((user, domain)) => {
            let first: String = user.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> Verifier {
        Verifier::new(Keyring::new("k", vec![("k".into(), vec![5u8; 32])]), true)
    }

    #[test]
    fn codes_are_six_digits_derived_from_the_nonce() {
        let v = verifier();
        let link = LinkId::random();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let nonce = new_code_nonce();
            let c = v.code_of(&link, &nonce).unwrap();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(
                v.code_of(&link, &nonce).unwrap(),
                c,
                "the same nonce gives the same code"
            );
            seen.insert(c);
        }
        assert!(seen.len() > 990, "codes spread over the range");
    }

    fn solve(challenge: &str, bits: u32) -> String {
        (0u64..)
            .map(|n| format!("{challenge}:{n}"))
            .find(|p| zero_bits(p) >= bits)
            .unwrap()
    }

    #[test]
    fn proofs_of_work_are_bound_solved_and_unexpired() {
        let v = verifier();
        let link = Link::new(
            "s",
            crate::model::link::Document::new("o".into(), "f".into(), None),
            "k",
            OffsetDateTime::now_utc(),
        );
        let challenge = v.challenge(&link, 8);
        let proof = solve(&challenge, 8);
        let nonce = v.check_proof(&link, &proof).unwrap();
        assert!(challenge.contains(&nonce));
        // Unsolved, tampered (easier bits), for another link or generation, garbage.
        let unsolved = (0u64..)
            .map(|n| format!("{challenge}:{n}"))
            .find(|p| zero_bits(p) == 0)
            .unwrap();
        assert_eq!(v.check_proof(&link, &unsolved), Err(ProofError::Invalid));
        let easier = challenge.replacen("8.", "0.", 1);
        assert_eq!(
            v.check_proof(&link, &format!("{easier}:0")),
            Err(ProofError::Invalid)
        );
        let mut other = link.clone();
        other.generation += 1;
        assert_eq!(v.check_proof(&other, &proof), Err(ProofError::Invalid));
        let mut another = link.clone();
        another.id = LinkId::random();
        assert_eq!(v.check_proof(&another, &proof), Err(ProofError::Invalid));
        for bad in [
            "",
            ":",
            "x:1",
            &format!("{challenge}:"),
            &format!("{challenge}:1a"),
            &"9".repeat(300),
        ] {
            assert_eq!(v.check_proof(&link, bad), Err(ProofError::Invalid), "{bad}");
        }
        // An expired challenge, genuinely signed.
        let payload = format!("0.{}.00000000000000aa", now_secs() - 1);
        let expired = format!("{payload}.{}:0", v.challenge_mac(&link, &payload));
        assert_eq!(v.check_proof(&link, &expired), Err(ProofError::Expired));
    }

    #[test]
    fn only_remembered_passwords_of_this_generation_match() {
        let v = verifier();
        let mut link = Link::new(
            "s",
            crate::model::link::Document::new("o".into(), "f".into(), None),
            "k",
            OffsetDateTime::now_utc(),
        );
        assert!(!v.remembered(&link, "pw"));
        v.remember(&link, "pw");
        assert!(v.remembered(&link, "pw"));
        assert!(!v.remembered(&link, "pw2"));
        link.generation += 1;
        assert!(
            !v.remembered(&link, "pw"),
            "a new generation (password change) forgets"
        );
    }

    #[test]
    fn device_cookie_round_trip_and_forgery() {
        let v = verifier();
        let id = new_device_id();
        let set = v.device_cookie(&id);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Secure"));
        let value = set.split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            format!("other=1; {value}").parse().unwrap(),
        );
        assert_eq!(v.device_of(&h), Some(id.clone()));
        let forged = value.replace(&id[..4], "ffff");
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, forged.parse().unwrap());
        assert_eq!(v.device_of(&h), None);
    }

    #[test]
    fn csrf_tokens_are_bound() {
        let v = verifier();
        let link = LinkId::random();
        let t = v.csrf_token(&link, "dev1");
        assert!(v.check_csrf(&t, &link, "dev1").is_some());
        assert!(v.check_csrf(&t, &link, "dev2").is_none());
        assert!(v.check_csrf(&t, &LinkId::random(), "dev1").is_none());
        assert!(v.check_csrf("garbage", &link, "dev1").is_none());
    }

    #[test]
    fn masking() {
        assert_eq!(mask_email("jane@example.org"), "j***@example.org");
        assert_eq!(mask_email("nope"), "***");
    }
}
