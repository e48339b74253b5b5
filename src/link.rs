//! The link record: what a share link grants, and the rules that decide whether it is good now.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A link's identity: 16 random bytes, shown as 32 lowercase hex characters (safe in URLs, shell
/// arguments and Redis keys; never starts with `-`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId([u8; LinkId::LEN]);

impl LinkId {
    pub const LEN: usize = 16;

    pub fn random() -> LinkId {
        LinkId(rand::random())
    }

    pub fn from_slice(bytes: &[u8]) -> Option<LinkId> {
        Some(LinkId(bytes.try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8; LinkId::LEN] {
        &self.0
    }

    /// Parses the 32-character lowercase hex form; anything else is `None`.
    pub fn parse(text: &str) -> Option<LinkId> {
        let bytes = text.as_bytes();
        if bytes.len() != 2 * LinkId::LEN {
            return None;
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; LinkId::LEN];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Some(LinkId(out))
    }
}

impl std::fmt::Display for LinkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for LinkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkId({self})")
    }
}

impl Serialize for LinkId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LinkId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LinkId::parse(&s).ok_or_else(|| serde::de::Error::custom("invalid link id"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    Active,
    Deactivated,
    Cancelled,
}

/// What a link lets its holder do with its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// Open inline in the browser (`Content-Disposition: inline`).
    View,
    /// Download the original (`Content-Disposition: attachment`).
    Download,
}

impl Right {
    pub fn parse(text: &str) -> Option<Right> {
        match text {
            "view" => Some(Right::View),
            "download" => Some(Right::Download),
            _ => None,
        }
    }
}

/// One document a link shares: the object key in its store and the name shown to the recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub object: String,
    pub filename: String,
    /// Size in bytes, when the origin told it at creation (shown on the landing page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// The person a link is for: their browsers are verified (first device trusted, others by code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Where codes go. Without one, every browser may only view the document inline.
    #[serde(default)]
    pub email: Option<String>,
    /// Ask for a mailed code even on the first browser.
    #[serde(default)]
    pub require_code: bool,
}

/// A share link as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub id: LinkId,
    pub store: String,
    pub documents: Vec<Document>,
    pub rights: Vec<Right>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub max_downloads: Option<u64>,
    pub state: LinkState,
    /// Bumped when password, expiry or limit change; the download counter belongs to one generation.
    pub generation: u64,
    /// Key id that signed the link's token.
    pub key_id: String,
    pub created_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub cancelled_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub cancelled_at: Option<OffsetDateTime>,
    /// argon2id PHC string; never shown by the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Recipient>,
    /// Device ids of the recipient's verified browsers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_devices: Vec<String>,
}

impl Link {
    /// A new, active, first-generation link to one document that grants `download`, with no
    /// expiry, limit, password or recipient (set those fields after).
    pub fn new(store: &str, document: Document, key_id: &str, created_at: OffsetDateTime) -> Link {
        Link {
            id: LinkId::random(),
            store: store.to_string(),
            documents: vec![document],
            rights: vec![Right::Download],
            expires_at: None,
            max_downloads: None,
            state: LinkState::Active,
            generation: 1,
            key_id: key_id.to_string(),
            created_by: None,
            created_at,
            cancelled_by: None,
            cancelled_at: None,
            password_hash: None,
            recipient: None,
            trusted_devices: Vec::new(),
        }
    }

    /// Whether the link can serve a recipient at `now`, ignoring the download limit.
    pub fn is_open(&self, now: OffsetDateTime) -> bool {
        self.state == LinkState::Active && self.expires_at.is_none_or(|e| now < e)
    }

    pub fn allows(&self, right: Right) -> bool {
        self.rights.contains(&right)
    }

    /// Whether a browser meets a landing page first (and the download starts from there).
    pub fn has_pages(&self) -> bool {
        self.password_hash.is_some() || self.recipient.is_some()
    }

    /// The kind of share, as listed to integrators.
    pub fn kind(&self) -> &'static str {
        match (&self.recipient, &self.password_hash) {
            (Some(_), _) => "guest",
            (None, Some(_)) => "password",
            (None, None) => "link",
        }
    }
}

/// Display names: `\ / : * ? " < > |` and control characters become `_`; surrounding whitespace
/// and dots are trimmed so a name can never be a path component like `..`.
pub fn sanitize_filename(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| match c {
            '\\' | '/' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c.is_whitespace() || c == '.');
    if trimmed.is_empty() {
        "download".to_string()
    } else {
        trimmed.chars().take(255).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_id_text_round_trip() {
        let id = LinkId::random();
        assert_eq!(LinkId::parse(&id.to_string()), Some(id));
        assert_eq!(LinkId::parse("short"), None);
        assert_eq!(LinkId::parse(&"g".repeat(32)), None);
        assert_eq!(LinkId::parse(&id.to_string().to_uppercase()), None);
    }

    #[test]
    fn filenames_are_sanitised() {
        assert_eq!(sanitize_filename(r#"a\b/c:d*e?f"g<h>i|j"#), "a_b_c_d_e_f_g_h_i_j");
        assert_eq!(sanitize_filename("x\r\nSet-Cookie: a=b"), "x__Set-Cookie_ a=b");
        assert_eq!(sanitize_filename(".."), "download");
        assert_eq!(sanitize_filename("  report.pdf "), "report.pdf");
        assert_eq!(sanitize_filename("Überweisung €.pdf"), "Überweisung €.pdf");
    }
}
