//! The link record: what a share link grants, and the rules that decide whether it is good now.

use std::collections::BTreeMap;

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
        // One write of a stack buffer: this runs for every access-log line and audit event.
        let mut hex = [0u8; 2 * LinkId::LEN];
        crate::model::hex::write(&self.0, &mut hex);
        f.write_str(std::str::from_utf8(&hex).map_err(|_| std::fmt::Error)?)
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

/// What a link lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Right {
    /// Open inline in the browser (`Content-Disposition: inline`).
    View,
    /// Download the original (`Content-Disposition: attachment`).
    Download,
    /// Download a named alternate object (`download:<rendition>`, e.g. `download:lowres`).
    Rendition(String),
    /// Upload files into the link's folder.
    Upload,
    /// View inline and comment (the review page).
    Review,
    /// View inline and record a decision, approve or reject, with a comment.
    Approve,
}

/// Rendition names: 1 to 32 of `a-z 0-9 _ -`, starting with a letter or digit; `original`,
/// `view` and `download` are taken by the variants of the original, `page` and `thumbnail` by
/// the gateway's page images.
pub fn valid_rendition_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && !matches!(
            name,
            "original" | "view" | "download" | "page" | "thumbnail"
        )
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

/// The renditions the gateway makes itself (`[renditions.NAME]`), by name, with the file
/// extension of what each makes. Set once at start from the configuration; a link's
/// `download:NAME` right uses the document's stored rendition NAME when it has one, else this.
static GENERATED: std::sync::RwLock<BTreeMap<String, String>> =
    std::sync::RwLock::new(BTreeMap::new());

/// Declares the gateway's generated renditions (name → file extension).
pub fn set_generated(renditions: BTreeMap<String, String>) {
    if let Ok(mut g) = GENERATED.write() {
        *g = renditions;
    }
}

/// The file extension of generated rendition `name`, if the gateway makes one by that name.
pub fn generated_extension(name: &str) -> Option<String> {
    GENERATED.read().ok()?.get(name).cloned()
}

/// The file name a generated rendition of `original` is downloaded under (`report-lowres.pdf`).
pub fn generated_filename(original: &str, name: &str, ext: &str) -> String {
    let stem = original
        .rsplit_once('.')
        .map(|(s, _)| s)
        .filter(|s| !s.is_empty())
        .unwrap_or(original);
    format!("{stem}-{name}.{ext}")
}

impl Document {
    /// Whether the document has rendition `name`: stored with it, or made by the gateway.
    pub fn has_rendition(&self, name: &str) -> bool {
        self.renditions.contains_key(name) || generated_extension(name).is_some()
    }
}

impl Right {
    pub fn parse(text: &str) -> Option<Right> {
        match text {
            "view" => Some(Right::View),
            "download" => Some(Right::Download),
            "upload" => Some(Right::Upload),
            "review" => Some(Right::Review),
            "approve" => Some(Right::Approve),
            _ => {
                let name = text.strip_prefix("download:")?;
                valid_rendition_name(name).then(|| Right::Rendition(name.to_string()))
            }
        }
    }
}

impl std::fmt::Display for Right {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Right::View => f.write_str("view"),
            Right::Download => f.write_str("download"),
            Right::Rendition(name) => write!(f, "download:{name}"),
            Right::Upload => f.write_str("upload"),
            Right::Review => f.write_str("review"),
            Right::Approve => f.write_str("approve"),
        }
    }
}

impl Serialize for Right {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Right {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Right::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown right `{s}`")))
    }
}

/// A named alternate object of a document (a low-res PDF, a JPEG preview).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendition {
    pub object: String,
    pub filename: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The object's `ETag` when the link was created (see [`ChangePolicy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The object's `Last-Modified` when the link was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// One document a link shares: the object key in its store and the name shown to the recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub object: String,
    pub filename: String,
    /// Size in bytes, when the origin told it at creation (shown on the landing page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The object's `ETag` when the link was created (see [`ChangePolicy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The object's `Last-Modified` (an HTTP date) when the link was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// Named alternates, by rendition name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub renditions: BTreeMap<String, Rendition>,
}

impl Document {
    pub fn new(object: String, filename: String, size: Option<u64>) -> Document {
        Document {
            object,
            filename,
            size,
            etag: None,
            last_modified: None,
            renditions: BTreeMap::new(),
        }
    }
}

/// Where and how a link with the `upload` right accepts files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadSpec {
    /// Object-key prefix uploads land under (a checked key, without the trailing `/`).
    pub folder: String,
    /// Replace an object of the same name (otherwise a clash is refused with 409).
    #[serde(default)]
    pub overwrite: bool,
    /// How many files the link accepts in all (the "expected count").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<u64>,
    /// Largest file accepted, in bytes (at most the policy's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Media types accepted (`application/pdf`, `image/*`); the policy's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_types: Option<Vec<String>>,
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
    /// How mails and pages address them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What a link does when a document's object changed at its store since the link was created
/// (its `ETag`/`Last-Modified` differ from those recorded then).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangePolicy {
    /// Serve the object as it is now (and record `document.changed` once per new version).
    #[default]
    ServeLatest,
    /// Serve only the version the link was created for: the store is asked conditionally
    /// (`If-Match`, or `If-Unmodified-Since`) and a changed object is refused with a page.
    Refuse,
}

impl ChangePolicy {
    pub fn parse(text: &str) -> Option<ChangePolicy> {
        match text {
            "serve_latest" => Some(ChangePolicy::ServeLatest),
            "refuse" => Some(ChangePolicy::Refuse),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ChangePolicy::ServeLatest => "serve_latest",
            ChangePolicy::Refuse => "refuse",
        }
    }
}

/// Whether and where a link stamps its recipient's identity (see `docs/documents.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Watermark {
    /// No stamp.
    #[default]
    Off,
    /// The viewer's page images are stamped.
    Viewer,
    /// The viewer's page images, and downloaded PDFs and images (originals and renditions).
    All,
}

impl Watermark {
    pub fn parse(text: &str) -> Option<Watermark> {
        match text {
            "off" => Some(Watermark::Off),
            "viewer" => Some(Watermark::Viewer),
            "all" => Some(Watermark::All),
            _ => None,
        }
    }

    fn is_off(&self) -> bool {
        *self == Watermark::Off
    }
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
    /// Set when the link grants `upload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadSpec>,
    /// Files received through the link (or being received: claimed before the body arrives).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uploads: u64,
    /// Where this link's events are also delivered (besides `[webhooks]`); secret never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<crate::model::webhook::WebhookTarget>,
    /// Mailed once, on the link's first completed download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_sender: Option<String>,
    /// Review decisions (`approve` right), one per recipient or browser, final once recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
    /// The share this link was sent in (one link per recipient), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    /// What a changed document means for this link.
    #[serde(default)]
    pub on_change: ChangePolicy,
    /// Identity watermarks on what the link shows or hands out.
    #[serde(default, skip_serializing_if = "Watermark::is_off")]
    pub watermark: Watermark,
    /// When an admin last changed the link's state, expiry or limit (the `status_since` of an
    /// active or deactivated link; `created_at` before any such change).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub status_changed_at: Option<OffsetDateTime>,
}

/// Most decisions one link keeps (one per recipient or browser).
pub const MAX_DECISIONS: usize = 100;

/// A recorded review decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// `approved` or `rejected`.
    pub decision: String,
    pub comment: String,
    /// The recipient's address when the link has one, else `browser:` and a digest of the
    /// browser's device id.
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Link {
    /// A new, active, first-generation link to one document that grants `download`, with no
    /// expiry, limit, password or recipient (set those fields after).
    pub fn new(store: &str, document: Document, key_id: &str, created_at: OffsetDateTime) -> Link {
        Link::with_documents(store, vec![document], key_id, created_at)
    }

    /// Like [`Link::new`] for any number of documents (none for an upload-only link).
    pub fn with_documents(
        store: &str,
        documents: Vec<Document>,
        key_id: &str,
        created_at: OffsetDateTime,
    ) -> Link {
        Link {
            id: LinkId::random(),
            store: store.to_string(),
            documents,
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
            upload: None,
            uploads: 0,
            webhook: None,
            notify_sender: None,
            decisions: Vec::new(),
            share: None,
            on_change: ChangePolicy::ServeLatest,
            watermark: Watermark::Off,
            status_changed_at: None,
        }
    }

    /// Whether the link can serve a recipient at `now`, ignoring the download limit.
    pub fn is_open(&self, now: OffsetDateTime) -> bool {
        self.state == LinkState::Active && self.expires_at.is_none_or(|e| now < e)
    }

    /// Whether the link grants `right`; `review` and `approve` include viewing inline.
    pub fn allows(&self, right: &Right) -> bool {
        self.rights.contains(right)
            || (*right == Right::View
                && (self.rights.contains(&Right::Review) || self.rights.contains(&Right::Approve)))
    }

    /// Whether the link's recipients may comment (`review` or `approve`).
    pub fn takes_comments(&self) -> bool {
        self.rights.contains(&Right::Review) || self.rights.contains(&Right::Approve)
    }

    /// Whether a password or a recipient's device check stands before the documents.
    pub fn has_checks(&self) -> bool {
        self.password_hash.is_some() || self.recipient.is_some()
    }

    /// Whether a browser meets a landing page first (and downloads or uploads start from there):
    /// links with a gate, several documents, uploads, or a download limit (so that a mail
    /// scanner's or a chat preview's visit never uses up a download).
    pub fn has_pages(&self) -> bool {
        self.has_checks()
            || self.documents.len() > 1
            || self.allows(&Right::Upload)
            || self.max_downloads.is_some()
            || self.takes_comments()
    }

    /// Whether a browser's download must come from the landing page's button (a POST): a
    /// limited link that no password or device check protects.
    pub fn needs_button(&self) -> bool {
        self.max_downloads.is_some() && !self.has_checks()
    }

    /// Which document and variant a request names, or why it may not have it.
    pub fn resolve(&self, selection: &Selection) -> Result<Target, Refusal> {
        let index = match selection.doc {
            Some(n) if n >= 1 && n <= self.documents.len() => n - 1,
            Some(_) => return Err(Refusal::NoSuchDocument),
            None if self.documents.len() == 1 => 0,
            None if self.documents.is_empty() => return Err(Refusal::NoSuchDocument),
            None => return Err(Refusal::Several),
        };
        let doc = &self.documents[index];
        let variant = match &selection.variant {
            Some(v) => v.clone(),
            None => self.default_variant(doc).ok_or(Refusal::NotGranted(
                "This link does not allow opening its documents.",
            ))?,
        };
        let original = |inline: bool| Target {
            index,
            object: doc.object.clone(),
            filename: doc.filename.clone(),
            inline,
            variant: if inline {
                "view".to_string()
            } else {
                "download".to_string()
            },
            size: doc.size,
            etag: doc.etag.clone(),
            last_modified: doc.last_modified.clone(),
        };
        match variant {
            Variant::Original if self.allows(&Right::Download) => Ok(original(false)),
            Variant::Original => Err(Refusal::NotGranted(
                "This link does not allow downloading the original.",
            )),
            Variant::View if self.allows(&Right::View) => Ok(original(true)),
            Variant::View => Err(Refusal::NotGranted(
                "This link does not allow viewing documents in the browser.",
            )),
            Variant::Rendition(name) => {
                if !self.allows(&Right::Rendition(name.clone())) {
                    return Err(Refusal::NotGranted(
                        "This link does not allow downloading that version of the document.",
                    ));
                }
                let Some(r) = doc.renditions.get(&name) else {
                    // Made by the gateway from the original (`[renditions.NAME]`).
                    let ext = generated_extension(&name).ok_or(Refusal::NoSuchDocument)?;
                    return Ok(Target {
                        index,
                        object: doc.object.clone(),
                        filename: generated_filename(&doc.filename, &name, &ext),
                        inline: false,
                        variant: format!("download:{name}"),
                        size: None,
                        etag: doc.etag.clone(),
                        last_modified: doc.last_modified.clone(),
                    });
                };
                Ok(Target {
                    index,
                    object: r.object.clone(),
                    filename: r.filename.clone(),
                    inline: false,
                    variant: format!("download:{name}"),
                    size: r.size,
                    etag: r.etag.clone(),
                    last_modified: r.last_modified.clone(),
                })
            }
        }
    }

    /// What a request that names no variant gets: the original if it may be downloaded, else
    /// viewed, else the first granted rendition this document has.
    fn default_variant(&self, doc: &Document) -> Option<Variant> {
        if self.allows(&Right::Download) {
            return Some(Variant::Original);
        }
        if self.allows(&Right::View) {
            return Some(Variant::View);
        }
        self.rights.iter().find_map(|r| match r {
            Right::Rendition(name) if doc.has_rendition(name) => {
                Some(Variant::Rendition(name.clone()))
            }
            _ => None,
        })
    }

    /// The variants of a document this link grants, in the order a landing page offers them.
    pub fn offered(&self, doc: &Document) -> Vec<Variant> {
        let mut out = Vec::new();
        if self.allows(&Right::Download) {
            out.push(Variant::Original);
        }
        if self.allows(&Right::View) {
            out.push(Variant::View);
        }
        for r in &self.rights {
            if let Right::Rendition(name) = r {
                if doc.has_rendition(name) {
                    out.push(Variant::Rendition(name.clone()));
                }
            }
        }
        out
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

/// Which variant of a document a request asks for (`?as=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variant {
    Original,
    View,
    Rendition(String),
}

impl Variant {
    pub fn parse(text: &str) -> Option<Variant> {
        match text {
            "original" | "download" => Some(Variant::Original),
            "view" => Some(Variant::View),
            name if valid_rendition_name(name) => Some(Variant::Rendition(name.to_string())),
            _ => None,
        }
    }

    /// The value of `?as=` that asks for this variant.
    pub fn query_value(&self) -> &str {
        match self {
            Variant::Original => "original",
            Variant::View => "view",
            Variant::Rendition(name) => name,
        }
    }
}

/// What a recipient's request names: `?doc=N` (1-based) and `?as=original|view|<rendition>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub doc: Option<usize>,
    pub variant: Option<Variant>,
}

impl Selection {
    /// Reads the query; `None` when `doc` or `as` is present but unreadable.
    pub fn from_query(query: Option<&str>) -> Option<Selection> {
        let mut sel = Selection::default();
        let Some(query) = query else { return Some(sel) };
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "doc" if sel.doc.is_none() => {
                    if value.is_empty()
                        || value.len() > 6
                        || !value.bytes().all(|b| b.is_ascii_digit())
                    {
                        return None;
                    }
                    sel.doc = Some(value.parse().ok()?);
                }
                "as" if sel.variant.is_none() => sel.variant = Some(Variant::parse(value)?),
                _ => {}
            }
        }
        Some(sel)
    }
}

/// The object a request is served, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// 0-based position of the document in the link.
    pub index: usize,
    pub object: String,
    pub filename: String,
    pub inline: bool,
    /// `download`, `view` or `download:<rendition>` (for events and logs).
    pub variant: String,
    /// The object's size when the link knows it (measured when the link was created).
    pub size: Option<u64>,
    /// The object's `ETag` and `Last-Modified` recorded when the link was created.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Why a request does not get a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such document or rendition.
    NoSuchDocument,
    /// The link shares several documents and the request named none.
    Several,
    /// The document exists but this link does not grant that use of it.
    NotGranted(&'static str),
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

/// Why an object key is refused.
pub fn check_object_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() || key.len() > 1024 {
        return Err("must be 1 to 1024 bytes");
    }
    if key.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters");
    }
    if key.contains('\\') {
        return Err("must not contain a backslash");
    }
    let key = key.strip_prefix('/').unwrap_or(key);
    for segment in key.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err("must not contain empty, `.` or `..` path segments");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keys_are_refused() {
        for bad in [
            "", "../x", "a/../b", "a//b", "./a", "a/.", "a\\..\\b", "a\nb", "a/",
        ] {
            assert!(check_object_key(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "/a/b.pdf", "..a", "a..b/c", "%2e%2e"] {
            assert!(check_object_key(good).is_ok(), "{good:?}");
        }
    }

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
        assert_eq!(
            sanitize_filename(r#"a\b/c:d*e?f"g<h>i|j"#),
            "a_b_c_d_e_f_g_h_i_j"
        );
        assert_eq!(
            sanitize_filename("x\r\nSet-Cookie: a=b"),
            "x__Set-Cookie_ a=b"
        );
        assert_eq!(sanitize_filename(".."), "download");
        assert_eq!(sanitize_filename("  report.pdf "), "report.pdf");
        assert_eq!(sanitize_filename("Überweisung €.pdf"), "Überweisung €.pdf");
    }

    fn two_documents(rights: &[&str]) -> Link {
        let mut a = Document::new("a.pdf".into(), "A.pdf".into(), Some(10));
        a.renditions.insert(
            "lowres".into(),
            Rendition {
                object: "a-low.pdf".into(),
                filename: "A-low.pdf".into(),
                size: None,
                etag: None,
                last_modified: None,
            },
        );
        let b = Document::new("b.pdf".into(), "B.pdf".into(), None);
        let mut link = Link::with_documents("s", vec![a, b], "k", OffsetDateTime::now_utc());
        link.rights = rights.iter().map(|r| Right::parse(r).unwrap()).collect();
        link
    }

    fn sel(query: &str) -> Selection {
        Selection::from_query(Some(query)).unwrap()
    }

    #[test]
    fn rights_round_trip_as_text() {
        for text in [
            "view",
            "download",
            "upload",
            "download:lowres",
            "download:jpeg-2",
        ] {
            assert_eq!(Right::parse(text).unwrap().to_string(), text);
        }
        for bad in [
            "",
            "delete",
            "download:",
            "download:Low",
            "download:view",
            "download:-x",
            "download:a/b",
        ] {
            assert!(Right::parse(bad).is_none(), "{bad}");
        }
        let json =
            serde_json::to_string(&vec![Right::View, Right::Rendition("lowres".into())]).unwrap();
        assert_eq!(json, r#"["view","download:lowres"]"#);
        assert!(serde_json::from_str::<Vec<Right>>(r#"["bogus"]"#).is_err());
    }

    #[test]
    fn a_request_gets_the_document_and_variant_it_names_if_granted() {
        let link = two_documents(&["download", "download:lowres"]);
        assert_eq!(link.resolve(&Selection::default()), Err(Refusal::Several));
        let t = link.resolve(&sel("doc=2")).unwrap();
        assert_eq!(
            (t.index, t.object.as_str(), t.inline, t.variant.as_str()),
            (1, "b.pdf", false, "download")
        );
        let t = link.resolve(&sel("doc=1&as=lowres")).unwrap();
        assert_eq!(
            (t.object.as_str(), t.filename.as_str()),
            ("a-low.pdf", "A-low.pdf")
        );
        assert_eq!(
            link.resolve(&sel("doc=2&as=lowres")),
            Err(Refusal::NoSuchDocument),
            "b has no lowres"
        );
        assert!(matches!(
            link.resolve(&sel("doc=1&as=view")),
            Err(Refusal::NotGranted(_))
        ));
        assert!(matches!(
            link.resolve(&sel("doc=1&as=jpeg")),
            Err(Refusal::NotGranted(_))
        ));
        for out_of_range in ["doc=0", "doc=3"] {
            assert_eq!(
                link.resolve(&sel(out_of_range)),
                Err(Refusal::NoSuchDocument)
            );
        }
        assert!(Selection::from_query(Some("doc=x")).is_none());
        assert!(Selection::from_query(Some("as=..")).is_none());
    }

    #[test]
    fn the_default_variant_follows_the_rights() {
        let view_only = two_documents(&["view"]);
        let t = view_only.resolve(&sel("doc=1")).unwrap();
        assert!(t.inline, "view only: inline");
        assert!(matches!(
            view_only.resolve(&sel("doc=1&as=original")),
            Err(Refusal::NotGranted(_))
        ));
        let lowres_only = two_documents(&["download:lowres"]);
        assert_eq!(
            lowres_only.resolve(&sel("doc=1")).unwrap().object,
            "a-low.pdf"
        );
        assert!(matches!(
            lowres_only.resolve(&sel("doc=2")),
            Err(Refusal::NotGranted(_))
        ));
        assert_eq!(
            lowres_only.offered(&lowres_only.documents[0]),
            vec![Variant::Rendition("lowres".into())]
        );
        let upload_only = Link {
            rights: vec![Right::Upload],
            ..Link::with_documents("s", vec![], "k", OffsetDateTime::now_utc())
        };
        assert_eq!(
            upload_only.resolve(&Selection::default()),
            Err(Refusal::NoSuchDocument)
        );
        assert!(
            upload_only.has_pages(),
            "an upload link has a page with the form"
        );
    }

    #[test]
    fn review_rights_parse_and_include_viewing() {
        for (text, right) in [("review", Right::Review), ("approve", Right::Approve)] {
            assert_eq!(Right::parse(text), Some(right.clone()));
            assert_eq!(right.to_string(), text);
        }
        let mut l = Link::new(
            "docs",
            Document::new("a.pdf".into(), "a.pdf".into(), None),
            "k1",
            OffsetDateTime::UNIX_EPOCH,
        );
        l.rights = vec![Right::Review];
        assert!(l.allows(&Right::View) && l.takes_comments() && l.has_pages());
        assert!(!l.allows(&Right::Download) && !l.allows(&Right::Approve));
        l.rights = vec![Right::Download];
        assert!(!l.allows(&Right::View) && !l.takes_comments());
        // Links stored before these fields load with none of them.
        let mut old = serde_json::to_value(&l).unwrap();
        for f in ["webhook", "notify_sender", "decisions"] {
            old.as_object_mut().unwrap().remove(f);
        }
        let back: Link = serde_json::from_value(old).unwrap();
        assert!(
            back.webhook.is_none() && back.notify_sender.is_none() && back.decisions.is_empty()
        );
    }
}
