//! Legacy links in the formats of nginx's `secure_link` module, so links already sent keep
//! working when an operator puts linkgate where nginx was.
//!
//! Two modes, configured per store under `[stores.NAME.secure_link]` with nginx's own directive
//! text:
//! - **md5** (`secure_link` + `secure_link_md5`): the URL carries a base64url MD5 of an expression
//!   (`$secure_link_expires$uri$remote_addr secret`, …) and usually an expiry. Checked exactly as
//!   nginx 1.x does: the `secure_link` value is split at its first comma, the hash part is at most
//!   24 characters of nginx's lenient base64url (decoding stops at `=`, unused trailing bits are
//!   ignored) and must decode to 16 bytes; the expiry must be decimal digits only, greater than 0
//!   and fit a 64-bit time; the link is good while `now <= expires` (seconds).
//! - **secret** (`secure_link_secret`): URLs `/PREFIX/<md5 hex>/<link>` where the hex is
//!   `MD5(<link><secret>)` over the link exactly as sent (query included); hex in either case.
//!   The object key is the link as sent, undecoded and with its query (what nginx's documented
//!   `rewrite ^ /files/$secure_link` serves).
//!
//! In md5 mode the object key is the decoded path after the prefix (checked like any object key, so it cannot
//! leave the store). Hashes are compared in constant time. Every good legacy URL becomes a link
//! record (created on first use) whose id is a keyed hash of the URL's signed parts, so the
//! download counting (`max_downloads`), the state changes and the audit trail of native links apply
//! to it; it expires one second after the URL's `expires` (nginx's `now <= expires`).

use std::sync::Arc;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::model::link::{check_object_key, sanitize_filename, Document, Link, LinkId};

/// `created_by` of the link records made for legacy URLs (also the key id they carry, which can
/// never name a real key since `:` is not allowed there).
pub const CREATED_BY: &str = "nginx:secure_link";

/// `[stores.NAME.secure_link]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecureLink {
    /// URL path prefix of the legacy links, e.g. `/dl/` (nginx's `location`).
    pub prefix: String,
    /// nginx's `secure_link` value, e.g. `$arg_md5,$arg_expires` (md5 mode).
    #[serde(default)]
    pub secure_link: Option<String>,
    /// nginx's `secure_link_md5` expression, secret included (md5 mode).
    #[serde(default)]
    pub secure_link_md5: Option<String>,
    /// nginx's `secure_link_secret` word (secret mode).
    #[serde(default)]
    pub secure_link_secret: Option<String>,
    /// Downloads each legacy URL allows (counted like a native link's); absent: no limit.
    #[serde(default)]
    pub max_downloads: Option<u64>,
}

/// One piece of an nginx expression.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(Vec<u8>),
    Uri,
    Expires,
    RemoteAddr,
    /// `$arg_NAME`: the first query argument of that name (case-insensitive), raw.
    Arg(String),
}

/// Parses an nginx "complex value": text with `$name` or `${name}` variables.
fn parse_expression(text: &str) -> Result<Vec<Part>, String> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut literal = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            literal.push(bytes[i]);
            i += 1;
            continue;
        }
        let (name, next) = if bytes.get(i + 1) == Some(&b'{') {
            let end = text[i + 2..].find('}').ok_or("a `${` has no closing `}`")? + i + 2;
            (&text[i + 2..end], end + 1)
        } else {
            let len = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            (&text[i + 1..i + 1 + len], i + 1 + len)
        };
        let part = match name {
            "uri" => Part::Uri,
            "secure_link_expires" => Part::Expires,
            "remote_addr" => Part::RemoteAddr,
            "" => return Err("a `$` is not followed by a variable name".into()),
            other => match other.strip_prefix("arg_") {
                Some(arg) if !arg.is_empty() => Part::Arg(arg.to_string()),
                _ => {
                    return Err(format!(
                        "variable `${other}` is not supported (supported: $uri, $secure_link_expires, $remote_addr, $arg_NAME)"
                    ))
                }
            },
        };
        if !literal.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut literal)));
        }
        parts.push(part);
        i = next;
    }
    if !literal.is_empty() {
        parts.push(Part::Text(literal));
    }
    Ok(parts)
}

/// What a legacy request presents, as the expressions see it.
pub struct Request<'a> {
    /// The path as sent (percent-encoded).
    pub path: &'a str,
    /// The query as sent, without `?`.
    pub query: Option<&'a str>,
    /// The client's address as text (`$remote_addr`).
    pub remote_addr: &'a str,
}

/// nginx's `$arg_NAME`: the raw value of the first `NAME=` argument, name compared ignoring case.
pub fn arg<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

fn evaluate(parts: &[Part], req: &Request<'_>, uri: &[u8], expires: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    for part in parts {
        match part {
            Part::Text(t) => out.extend_from_slice(t),
            Part::Uri => out.extend_from_slice(uri),
            Part::Expires => out.extend_from_slice(expires),
            Part::RemoteAddr => out.extend_from_slice(req.remote_addr.as_bytes()),
            Part::Arg(name) => out.extend_from_slice(arg(req.query, name).unwrap_or("").as_bytes()),
        }
    }
    out
}

/// nginx's `ngx_decode_base64url`, quirks included: decoding stops at the first `=` (whatever
/// follows is ignored), `+` and `/` are refused, a length of 1 mod 4 is refused, and the unused low
/// bits of the last character are ignored. `None` where nginx answers `NGX_ERROR`.
pub fn nginx_base64url_decode(src: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'-' => Some(62),
            b'_' => Some(63),
            _ => None,
        }
    }
    let len = src.iter().position(|&c| c == b'=').unwrap_or(src.len());
    let digits: Vec<u8> = src[..len]
        .iter()
        .map(|&c| value(c))
        .collect::<Option<_>>()?;
    if len % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(len / 4 * 3 + 2);
    let mut chunks = digits.chunks_exact(4);
    for s in chunks.by_ref() {
        out.push(s[0] << 2 | s[1] >> 4);
        out.push(s[1] << 4 | s[2] >> 2);
        out.push(s[2] << 6 | s[3]);
    }
    let s = chunks.remainder();
    if s.len() > 1 {
        out.push(s[0] << 2 | s[1] >> 4);
    }
    if s.len() > 2 {
        out.push(s[1] << 4 | s[2] >> 2);
    }
    Some(out)
}

/// nginx's `ngx_atotm`: decimal digits only (no sign, no spaces), at least one, no overflow.
pub fn nginx_atotm(text: &[u8]) -> Option<i64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0i64, |acc, &c| {
        if !c.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(i64::from(c - b'0'))
    })
}

/// Percent-decodes a path as nginx's `$uri` holds it; `None` for a path nginx would rewrite
/// (`//`, `.` or `..` segments, before or after decoding) or that is not UTF-8 or has control
/// characters: legacy links never look like that, so such requests are refused, not normalised.
pub fn decoded_path(raw: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?
        .into_owned();
    let odd = |p: &str| {
        p.contains("//")
            || p.split('/').any(|s| s == "." || s == "..")
            || p.chars().any(char::is_control)
    };
    (!odd(raw) && !odd(&decoded) && decoded.starts_with('/')).then_some(decoded)
}

#[derive(Clone)]
enum Mode {
    Md5 { value: Vec<Part>, md5: Vec<Part> },
    Secret { secret: Vec<u8> },
}

/// A store's legacy-link rule, validated.
#[derive(Clone)]
pub struct SecureLink {
    pub store: String,
    /// Starts and ends with `/`.
    pub prefix: String,
    pub max_downloads: Option<u64>,
    mode: Mode,
    /// Derives link ids from a URL's signed parts (keyed with the legacy secret material).
    ids: Hmac<Sha256>,
}

impl std::fmt::Debug for SecureLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::Md5 { .. } => "md5",
            Mode::Secret { .. } => "secret",
        };
        f.debug_struct("SecureLink")
            .field("store", &self.store)
            .field("prefix", &self.prefix)
            .field("mode", &mode)
            .field("max_downloads", &self.max_downloads)
            .finish_non_exhaustive()
    }
}

/// A legacy URL whose signature is good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Legacy {
    pub id: LinkId,
    pub object: String,
    /// The URL's expiry (Unix seconds; good while `now <= expires`), if it has one.
    pub expires: Option<i64>,
}

/// Why a legacy URL is refused (logged; the recipient sees the uniform 404).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadUrl {
    BadPath,
    BadHash,
    BadExpiry,
    BadObject,
}

/// A `[stores.NAME.secure_link]` setting that cannot work: its key and why.
#[derive(Debug, thiserror::Error)]
#[error("config key `{key}`: {message}")]
pub struct RuleError {
    pub key: String,
    pub message: String,
}

impl SecureLink {
    /// Validates `[stores.NAME.secure_link]`; `key` is that table's name for messages.
    pub fn from_raw(key: &str, store: &str, raw: RawSecureLink) -> Result<SecureLink, RuleError> {
        let invalid = |k: &str, m: String| RuleError {
            key: format!("{key}.{k}"),
            message: m,
        };
        let prefix = raw.prefix;
        if !prefix.starts_with('/')
            || !prefix.ends_with('/')
            || prefix.len() < 3
            || decoded_path(&prefix).as_deref() != Some(prefix.as_str())
        {
            return Err(invalid("prefix", "must be a path like \"/dl/\": starting and ending with `/`, without `%`, `.` or `..` segments".into()));
        }
        if prefix.starts_with("/s/") {
            return Err(invalid(
                "prefix",
                "must not be under /s/, where linkgate's own links live".into(),
            ));
        }
        if raw.max_downloads == Some(0) {
            return Err(invalid(
                "max_downloads",
                "must be at least 1 (leave it out for no limit)".into(),
            ));
        }
        let (mode, material) = match (raw.secure_link, raw.secure_link_md5, raw.secure_link_secret) {
            (Some(value), Some(md5), None) => {
                let value_parts = parse_expression(&value).map_err(|m| invalid("secure_link", m))?;
                if value_parts.iter().any(|p| matches!(p, Part::Expires | Part::Uri)) {
                    return Err(invalid("secure_link", "must name where hash and expiry are, e.g. \"$arg_md5,$arg_expires\"".into()));
                }
                let md5_parts = parse_expression(&md5).map_err(|m| invalid("secure_link_md5", m))?;
                (Mode::Md5 { value: value_parts, md5: md5_parts }, format!("md5\0{value}\0{md5}"))
            }
            (None, None, Some(secret)) => {
                if secret.is_empty() {
                    return Err(invalid("secure_link_secret", "must not be empty".into()));
                }
                if prefix[1..prefix.len() - 1].contains('/') {
                    return Err(invalid("prefix", "must be one path segment like \"/p/\" with secure_link_secret (nginx takes the first segment)".into()));
                }
                (Mode::Secret { secret: secret.clone().into_bytes() }, format!("secret\0{secret}"))
            }
            _ => {
                return Err(RuleError {
                    key: key.to_string(),
                    message: "needs either `secure_link` and `secure_link_md5` (md5 mode) or `secure_link_secret` (secret mode)".into(),
                })
            }
        };
        let ids = Hmac::<Sha256>::new_from_slice(material.as_bytes()).map_err(|_| RuleError {
            key: key.to_string(),
            message: "cannot key the link ids".into(),
        })?;
        Ok(SecureLink {
            store: store.to_string(),
            prefix,
            max_downloads: raw.max_downloads,
            mode,
            ids,
        })
    }

    /// Checks a request under this rule at `now` (Unix seconds); `None` when its path is not
    /// under the prefix. An expired URL still answers `Legacy` (its `expires` says so), so that a
    /// link record that exists can record the refusal.
    pub fn check(&self, req: &Request<'_>) -> Option<Result<Legacy, BadUrl>> {
        let uri = decoded_path(req.path);
        let under = match &uri {
            Some(u) => u.starts_with(&self.prefix),
            None => req.path.starts_with(&self.prefix),
        };
        if !under {
            return None;
        }
        let Some(uri) = uri else {
            return Some(Err(BadUrl::BadPath));
        };
        Some(match &self.mode {
            Mode::Md5 { value, md5 } => self.check_md5(req, &uri, value, md5),
            Mode::Secret { secret } => self.check_secret(req, secret),
        })
    }

    fn check_md5(
        &self,
        req: &Request<'_>,
        uri: &str,
        value: &[Part],
        md5: &[Part],
    ) -> Result<Legacy, BadUrl> {
        let value = evaluate(value, req, uri.as_bytes(), b"");
        let (hash_text, expires_text) = match value.iter().position(|&c| c == b',') {
            Some(i) => (&value[..i], Some(&value[i + 1..])),
            None => (&value[..], None),
        };
        let expires = match expires_text {
            Some(t) => match nginx_atotm(t) {
                Some(e) if e > 0 => Some(e),
                _ => return Err(BadUrl::BadExpiry),
            },
            None => None,
        };
        if hash_text.len() > 24 {
            return Err(BadUrl::BadHash);
        }
        let given = nginx_base64url_decode(hash_text)
            .filter(|h| h.len() == 16)
            .ok_or(BadUrl::BadHash)?;
        let signed = evaluate(md5, req, uri.as_bytes(), expires_text.unwrap_or(b""));
        let expected = Md5::digest(&signed);
        if !bool::from(expected.as_slice().ct_eq(&given)) {
            return Err(BadUrl::BadHash);
        }
        let object = uri[self.prefix.len()..].to_string();
        check_object_key(&object).map_err(|_| BadUrl::BadObject)?;
        Ok(Legacy {
            id: self.id_of(&[uri.as_bytes(), expires_text.unwrap_or(b""), &given]),
            object,
            expires,
        })
    }

    fn check_secret(&self, req: &Request<'_>, secret: &[u8]) -> Result<Legacy, BadUrl> {
        // nginx reads the URI as sent: `/prefix/<32 hex>/<link, query included>`.
        let rest = &req.path[self.prefix.len()..];
        let (hex, link_path) = rest.split_once('/').ok_or(BadUrl::BadPath)?;
        if hex.len() != 32 || link_path.is_empty() {
            return Err(BadUrl::BadHash);
        }
        let mut signed = Vec::with_capacity(link_path.len() + 64);
        signed.extend_from_slice(link_path.as_bytes());
        if let Some(q) = req.query {
            signed.push(b'?');
            signed.extend_from_slice(q.as_bytes());
        }
        let mut given = [0u8; 16];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| BadUrl::BadHash)?;
            given[i] = u8::from_str_radix(text, 16).map_err(|_| BadUrl::BadHash)?;
        }
        let mut md5 = Md5::new();
        md5.update(&signed);
        md5.update(secret);
        if !bool::from(md5.finalize().as_slice().ct_eq(&given)) {
            return Err(BadUrl::BadHash);
        }
        // nginx's `rewrite ^ /files/$secure_link` takes the link as sent, undecoded and with its
        // query, as the file name; so does linkgate (`%` and `?` reach the origin encoded).
        let object = String::from_utf8(signed).map_err(|_| BadUrl::BadObject)?;
        if decoded_path(&format!("/{object}")).is_none() {
            return Err(BadUrl::BadObject);
        }
        check_object_key(&object).map_err(|_| BadUrl::BadObject)?;
        Ok(Legacy {
            id: self.id_of(&[object.as_bytes(), &given]),
            object,
            expires: None,
        })
    }

    fn id_of(&self, parts: &[&[u8]]) -> LinkId {
        let mut mac = self.ids.clone();
        mac.update(b"linkgate/secure_link/id\0");
        mac.update(self.store.as_bytes());
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        let out = mac.finalize().into_bytes();
        LinkId::from_slice(&out[..LinkId::LEN]).unwrap_or_else(LinkId::random)
    }

    /// The link record for a good legacy URL, as created on its first use.
    pub fn record(&self, legacy: &Legacy, now: OffsetDateTime) -> Link {
        let name = legacy.object.rsplit('/').next().unwrap_or(&legacy.object);
        let doc = Document::new(legacy.object.clone(), sanitize_filename(name), None);
        let mut link = Link::new(&self.store, doc, CREATED_BY, now);
        link.id = legacy.id;
        link.created_by = Some(CREATED_BY.to_string());
        link.max_downloads = self.max_downloads;
        link.expires_at = legacy
            .expires
            .and_then(|e| OffsetDateTime::from_unix_timestamp(e.saturating_add(1)).ok());
        link
    }
}

/// Every store's legacy-link rule.
#[derive(Debug, Clone, Default)]
pub struct LegacyLinks {
    rules: Arc<Vec<SecureLink>>,
}

impl LegacyLinks {
    pub fn new(rules: Vec<SecureLink>) -> LegacyLinks {
        LegacyLinks {
            rules: Arc::new(rules),
        }
    }

    /// No store accepts legacy URLs (native links then never pay for the check).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule whose prefix the request is under, and its verdict.
    pub fn check(&self, req: &Request<'_>) -> Option<(&SecureLink, Result<Legacy, BadUrl>)> {
        self.rules
            .iter()
            .find_map(|rule| rule.check(req).map(|verdict| (rule, verdict)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn md5_rule(md5: &str) -> SecureLink {
        let raw = RawSecureLink {
            prefix: "/dl/".into(),
            secure_link: Some("$arg_md5,$arg_expires".into()),
            secure_link_md5: Some(md5.into()),
            secure_link_secret: None,
            max_downloads: None,
        };
        SecureLink::from_raw("stores.docs.secure_link", "docs", raw).unwrap()
    }

    fn sign(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(Md5::digest(text.as_bytes()))
    }

    fn req<'a>(path: &'a str, query: &'a str) -> Request<'a> {
        Request {
            path,
            query: Some(query),
            remote_addr: "127.0.0.1",
        }
    }

    #[test]
    fn a_good_md5_link_names_its_object_and_expiry() {
        let rule = md5_rule("$secure_link_expires$uri$remote_addr s3cret");
        let q = format!(
            "md5={}&expires=2000000000",
            sign("2000000000/dl/a/b c.pdf127.0.0.1 s3cret")
        );
        let legacy = rule.check(&req("/dl/a/b%20c.pdf", &q)).unwrap().unwrap();
        assert_eq!(legacy.object, "a/b c.pdf");
        assert_eq!(legacy.expires, Some(2_000_000_000));
        let other_client = Request {
            remote_addr: "10.0.0.1",
            ..req("/dl/a/b%20c.pdf", &q)
        };
        assert_eq!(rule.check(&other_client), Some(Err(BadUrl::BadHash)));
        assert_eq!(
            rule.check(&req("/elsewhere/a", &q)),
            None,
            "not under the prefix"
        );
    }

    #[test]
    fn nginx_base64url_quirks() {
        let h = sign("x");
        assert_eq!(h.len(), 22);
        let bytes = Md5::digest(b"x").to_vec();
        assert_eq!(nginx_base64url_decode(h.as_bytes()), Some(bytes.clone()));
        assert_eq!(
            nginx_base64url_decode(format!("{h}==").as_bytes()),
            Some(bytes.clone()),
            "padding"
        );
        assert_eq!(
            nginx_base64url_decode(format!("{h}=!").as_bytes()),
            Some(bytes.clone()),
            "anything after = is ignored"
        );
        let mut loose = h.clone().into_bytes();
        loose[21] = if loose[21] == b'A' {
            b'B'
        } else {
            loose[21] ^ 1
        };
        // The last character's low 4 bits are unused: nginx ignores them.
        assert_eq!(
            nginx_base64url_decode(&loose).map(|d| d[15] >> 4 == bytes[15] >> 4),
            Some(true)
        );
        assert_eq!(
            nginx_base64url_decode(b"a+b/"),
            None,
            "standard alphabet refused"
        );
        assert_eq!(nginx_base64url_decode(b"abcde"), None, "1 mod 4");
        assert_eq!(nginx_base64url_decode(b""), Some(vec![]));
    }

    #[test]
    fn expiry_edge_cases_match_nginx() {
        assert_eq!(nginx_atotm(b"0001"), Some(1));
        assert_eq!(nginx_atotm(b""), None);
        assert_eq!(nginx_atotm(b"+5"), None);
        assert_eq!(nginx_atotm(b"-5"), None);
        assert_eq!(nginx_atotm(b" 5"), None);
        assert_eq!(nginx_atotm(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(nginx_atotm(b"9223372036854775808"), None);
        let rule = md5_rule("$secure_link_expires$uri k");
        let q = |e: &str| format!("md5={}&expires={e}", sign(&format!("{e}/dl/f k")));
        assert_eq!(
            rule.check(&req("/dl/f", &q("0"))),
            Some(Err(BadUrl::BadExpiry)),
            "0 is refused"
        );
        assert_eq!(
            rule.check(&req("/dl/f", &q("12x"))),
            Some(Err(BadUrl::BadExpiry))
        );
        assert_eq!(
            rule.check(&req("/dl/f", &format!("md5={}", sign("/dl/f k")))),
            Some(Err(BadUrl::BadExpiry)),
            "missing"
        );
        let leading = rule
            .check(&req("/dl/f", &q("01700000000")))
            .unwrap()
            .unwrap();
        assert_eq!(
            leading.expires,
            Some(1_700_000_000),
            "leading zeros are signed as written"
        );
    }

    #[test]
    fn tampering_paths_and_hash_lengths_are_refused() {
        let good = sign("/dl/f k");
        let rule = SecureLink::from_raw(
            "t",
            "docs",
            RawSecureLink {
                prefix: "/dl/".into(),
                secure_link: Some("$arg_md5".into()),
                secure_link_md5: Some("$uri k".into()),
                secure_link_secret: None,
                max_downloads: None,
            },
        )
        .unwrap();
        assert!(
            rule.check(&req("/dl/f", &format!("md5={good}")))
                .unwrap()
                .is_ok(),
            "no expiry configured"
        );
        assert!(
            rule.check(&req("/dl/f", &format!("MD5={good}")))
                .unwrap()
                .is_ok(),
            "argument names ignore case"
        );
        assert_eq!(
            rule.check(&req("/dl/f", &format!("md5={good}A"))),
            Some(Err(BadUrl::BadHash))
        );
        assert_eq!(
            rule.check(&req("/dl/f", &format!("md5={good}===="))),
            Some(Err(BadUrl::BadHash)),
            "over 24 characters"
        );
        assert!(
            rule.check(&req("/dl/f", &format!("md5={good}==")))
                .unwrap()
                .is_ok(),
            "24 with padding"
        );
        assert_eq!(
            rule.check(&req("/dl/g", &format!("md5={good}"))),
            Some(Err(BadUrl::BadHash))
        );
        assert_eq!(
            rule.check(&req("/dl/../f", &format!("md5={good}"))),
            Some(Err(BadUrl::BadPath))
        );
        assert_eq!(
            rule.check(&req("/dl/%2e%2e/f", &format!("md5={good}"))),
            Some(Err(BadUrl::BadPath))
        );
        assert_eq!(
            rule.check(&req("/dl//f", &format!("md5={good}"))),
            Some(Err(BadUrl::BadPath))
        );
        assert_eq!(
            rule.check(&req("/dl/f%00", &format!("md5={good}"))),
            Some(Err(BadUrl::BadPath))
        );
    }

    #[test]
    fn secret_mode_matches_nginx_secure_link_secret() {
        let raw = RawSecureLink {
            prefix: "/p/".into(),
            secure_link: None,
            secure_link_md5: None,
            secure_link_secret: Some("word".into()),
            max_downloads: Some(2),
        };
        let rule = SecureLink::from_raw("t", "docs", raw).unwrap();
        let hex: String = Md5::digest(b"a/report.pdfword")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let ok = rule
            .check(&Request {
                path: &format!("/p/{hex}/a/report.pdf"),
                query: None,
                remote_addr: "x",
            })
            .unwrap()
            .unwrap();
        assert_eq!(ok.object, "a/report.pdf");
        let upper = rule.check(&Request {
            path: &format!("/p/{}/a/report.pdf", hex.to_uppercase()),
            query: None,
            remote_addr: "x",
        });
        assert_eq!(
            upper.map(|v| v.map(|l| l.id)),
            Some(Ok(ok.id)),
            "hex in either case, same link"
        );
        let bad = rule.check(&Request {
            path: &format!("/p/{hex}/a/other.pdf"),
            query: None,
            remote_addr: "x",
        });
        assert_eq!(bad, Some(Err(BadUrl::BadHash)));
        let with_query = rule.check(&Request {
            path: &format!("/p/{hex}/a/report.pdf"),
            query: Some("x=1"),
            remote_addr: "x",
        });
        assert_eq!(
            with_query,
            Some(Err(BadUrl::BadHash)),
            "the query is signed too"
        );
        let hex_q: String = Md5::digest(b"a/report.pdf?x=1word")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let signed_query = rule.check(&Request {
            path: &format!("/p/{hex_q}/a/report.pdf"),
            query: Some("x=1"),
            remote_addr: "x",
        });
        assert_eq!(
            signed_query.map(|v| v.map(|l| l.object)),
            Some(Ok("a/report.pdf?x=1".to_string())),
            "nginx serves it as a file name"
        );
        assert_eq!(
            rule.record(&ok, OffsetDateTime::UNIX_EPOCH).max_downloads,
            Some(2)
        );
    }

    #[test]
    fn ids_are_stable_and_records_expire_a_second_after_the_url() {
        let rule = md5_rule("$secure_link_expires$uri k");
        let q = format!("md5={}&expires=2000000000", sign("2000000000/dl/f k"));
        let a = rule.check(&req("/dl/f", &q)).unwrap().unwrap();
        let b = md5_rule("$secure_link_expires$uri k")
            .check(&req("/dl/f", &q))
            .unwrap()
            .unwrap();
        assert_eq!(a.id, b.id);
        let other_secret = md5_rule("$secure_link_expires$uri k2");
        let q2 = format!("md5={}&expires=2000000000", sign("2000000000/dl/f k2"));
        assert_ne!(
            other_secret.check(&req("/dl/f", &q2)).unwrap().unwrap().id,
            a.id
        );
        let record = rule.record(&a, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(
            record.expires_at.map(|e| e.unix_timestamp()),
            Some(2_000_000_001)
        );
        assert!(
            record.is_open(OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap()),
            "good while now <= expires"
        );
        assert!(!record.is_open(OffsetDateTime::from_unix_timestamp(2_000_000_001).unwrap()));
        assert_eq!(record.created_by.as_deref(), Some(CREATED_BY));
    }

    #[test]
    fn config_mistakes_are_named() {
        let raw = |prefix: &str, md5: Option<&str>, secret: Option<&str>| RawSecureLink {
            prefix: prefix.into(),
            secure_link: md5.map(|_| "$arg_md5,$arg_expires".into()),
            secure_link_md5: md5.map(Into::into),
            secure_link_secret: secret.map(Into::into),
            max_downloads: None,
        };
        let err = |r| {
            SecureLink::from_raw("stores.docs.secure_link", "docs", r)
                .unwrap_err()
                .to_string()
        };
        assert!(err(raw("/s/", Some("$uri k"), None)).contains("prefix"));
        assert!(err(raw("dl", Some("$uri k"), None)).contains("prefix"));
        assert!(err(raw("/dl/", Some("$uri $host k"), None)).contains("$host"));
        assert!(err(raw("/dl/", None, None)).contains("secure_link_md5"));
        assert!(err(raw("/a/b/", None, Some("w"))).contains("one path segment"));
        assert_eq!(
            parse_expression("${uri}x$arg_a").unwrap(),
            vec![Part::Uri, Part::Text(b"x".to_vec()), Part::Arg("a".into())]
        );
    }
}
