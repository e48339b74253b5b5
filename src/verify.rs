//! Proof that a browser may go on: link passwords (argon2id), mailed 6-digit codes, and the signed
//! cookies and form tokens that carry those proofs.
//!
//! - Passwords are hashed with argon2id; checking one runs on the blocking pool, at most a few at
//!   a time, so hashing cannot be used to exhaust the CPU (and attempts are throttled before).
//! - Codes come from the OS CSPRNG, are stored only as a keyed hash bound to link and browser.
//! - `lg_dev` (device) and `lg_pw` (password passed, bound to link and generation) cookies and the
//!   forms' CSRF tokens are sealed with the signing key (HMAC, constant-time check).

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use http::HeaderMap;
use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::link::{Link, LinkId};
use crate::token::Keyring;

pub const DEVICE_COOKIE: &str = "lg_dev";
pub const PASS_COOKIE: &str = "lg_pw";
/// How long a passed password is remembered by the browser.
const PASS_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long a form may be left open before it must be reloaded.
const FORM_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub struct Verifier {
    keys: Keyring,
    hashing: Arc<Semaphore>,
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

/// A fresh 6-digit code from the OS CSPRNG.
pub fn new_code() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// A fresh device id (128 random bits, hex).
pub fn new_device_id() -> String {
    let bytes: [u8; 16] = rand::random();
    crate::hex::encode(&bytes)
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
            secure_cookies,
        }
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

    /// A code as stored: a keyed hash bound to the link and the browser that asked for it.
    pub fn code_hash(&self, link: &LinkId, device: &str, code: &str) -> String {
        self.keys
            .keyed_hash("code", &format!("{link}:{device}:{code}"))
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
        let until = now_secs() + PASS_LIFETIME.as_secs() as i64;
        let sealed = self
            .keys
            .seal("pass", &format!("{}:{}:{until}", link.id, link.generation));
        format!(
            "{PASS_COOKIE}={sealed}{}",
            self.attributes(path, Some(PASS_LIFETIME.as_secs()))
        )
    }

    /// Whether the request carries a valid password cookie for this link and generation.
    pub fn passed(&self, headers: &HeaderMap, link: &Link) -> bool {
        let now = now_secs();
        cookies(headers, PASS_COOKIE).any(|v| {
            let Some(payload) = self.keys.open("pass", v) else {
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
                && until.parse::<i64>().is_ok_and(|u| u > now)
        })
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
    fn codes_are_six_digits() {
        for _ in 0..1000 {
            let c = new_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
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
