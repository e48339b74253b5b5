//! What counts as a download: bytes, not the shape of a request.
//!
//! The rule (docs/counting.md): for each link generation and each
//! document/variant of it (a *part*), the payload bytes that leave the gateway never exceed
//! `(max_downloads + ½) × size`. A client chooses the shape of its requests (ranges, aborts,
//! parallel connections), so nothing here looks at the shape: every byte a response sends is
//! paid for from the part's *account* before it is written.
//!
//! - An account holds the downloads counted for the part (`slots`), the bytes paid for so far
//!   (`charged`: drawn by responses, less what they gave back unsent) and the part's `size`.
//!   Its allowance is `slots × size + size / 2` (nothing without a slot).
//! - A response draws bytes in leases ([`Meter`]): the first at admission, sized to what it
//!   expects to send, then more while it streams. A draw that the allowance covers rides on the
//!   downloads already counted; one it does not cover counts a new download (while the link has
//!   any left), which adds `size` to the allowance; past the limit only what is left of the
//!   allowance is given, and then nothing: the response is cut off (or, before its head was
//!   written, refused with the uniform 404).
//! - When a response ends, what it drew and did not send is given back ([`Refund`]), off the
//!   request path. A download whose bytes are then covered by the downloads counted before it is
//!   uncounted again — so a request that failed before any byte was sent never counts, and a
//!   broken-off download leaves its bytes' worth of allowance for the resume.
//! - A response whose size the origin does not state (a chunked or close-delimited body) cannot
//!   be weighed against a size: it holds a download of its own (`own`), given back only if it
//!   sent nothing.
//!
//! HEAD, prefetches and the HTML pages never draw. Everything in this file is plain values; the
//! stores apply [`draw`] and [`refund`] atomically (the embedded one by calling them, Redis in a
//! script that mirrors them and is checked against them in tests).

use http::{HeaderMap, Method};

/// The most a response draws at admission (small documents are paid for in one draw).
pub const FIRST_LEASE: u64 = 1 << 20;
/// The least a response draws while it streams; leases grow with a quarter of what was sent.
pub const LEASE: u64 = 256 * 1024;

/// How a request relates to the download counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// HEAD: headers only, never counts.
    Head,
    /// A browser prefetch: gets no document and never counts.
    Prefetch,
    /// A GET of the whole body or of a Range starting at byte 0.
    Fresh,
    /// A GET of a Range that does not start at byte 0 (a resume or a further part): named so in
    /// events; it pays for its bytes like any other GET.
    Continuation,
}

pub fn classify(method: &Method, headers: &HeaderMap) -> Kind {
    if method == Method::HEAD {
        return Kind::Head;
    }
    let is_prefetch = |name: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.to_ascii_lowercase().contains("prefetch"))
        })
    };
    if is_prefetch("sec-purpose") || is_prefetch("purpose") || is_prefetch("x-moz") {
        return Kind::Prefetch;
    }
    match headers
        .get(http::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(single_range)
    {
        Some(ByteRange::From(0)) | Some(ByteRange::Span(0, _)) | None => Kind::Fresh,
        Some(_) => Kind::Continuation,
    }
}

/// One range of a `bytes=` Range header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `first-last`, inclusive.
    Span(u64, u64),
    /// `first-`.
    From(u64),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// The range of a Range header that names exactly one well-formed `bytes=` range; `None` for
/// anything else (no range, several ranges, other units, malformed).
pub fn single_range(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse::<u64>().ok()
        } else {
            None
        }
    };
    match (first.is_empty(), last.is_empty()) {
        (true, false) => Some(ByteRange::Suffix(number(last)?)),
        (false, true) => Some(ByteRange::From(number(first)?)),
        (false, false) => {
            let (a, b) = (number(first)?, number(last)?);
            (a <= b).then_some(ByteRange::Span(a, b))
        }
        (true, true) => None,
    }
}

/// Whether a Range header asks for several ranges: a counted download answers those with the
/// whole document instead (RFC 9110 lets a server ignore Range), so that no response is larger
/// than one copy.
pub fn is_multi_range(value: &str) -> bool {
    value
        .trim()
        .strip_prefix("bytes=")
        .is_some_and(|spec| spec.contains(','))
}

/// How many body bytes a GET expects, from its Range and the document's size when known.
pub fn expected_length(range: Option<&str>, size: Option<u64>) -> Option<u64> {
    let whole = size;
    let Some(range) = range.and_then(single_range) else {
        return whole;
    };
    match (range, size) {
        (ByteRange::Span(a, b), Some(s)) => Some(if a >= s { 0 } else { b.min(s - 1) - a + 1 }),
        // `bytes=0-18446744073709551615` of a document of unknown size: 2^64 bytes, one more
        // than a u64 holds (it overflowed; found by the `range` fuzz target).
        (ByteRange::Span(a, b), None) => Some((b - a).saturating_add(1)),
        (ByteRange::From(a), Some(s)) => Some(s.saturating_sub(a)),
        (ByteRange::Suffix(n), Some(s)) => Some(n.min(s)),
        (_, None) => None,
    }
}

/// A part's account in one link generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Account {
    /// Downloads counted for this part whose bytes are metered.
    pub slots: u64,
    /// Bytes drawn and not given back.
    pub charged: u64,
    /// The part's size; 0 while unknown.
    pub size: u64,
}

/// What `slots` downloads of a part of `size` bytes allow: each a copy, plus half a copy of
/// slack for a browser that restarts a download it broke off early.
pub fn allowance(slots: u64, size: u64) -> u64 {
    if slots == 0 || size == 0 {
        return 0;
    }
    slots.saturating_mul(size).saturating_add(size / 2)
}

impl Account {
    /// An account whose bytes were lost (a restart of the embedded store, or an account dropped
    /// from memory): its downloads stay, and everything they allow counts as drawn, so no
    /// allowance is ever granted twice.
    pub fn spent(slots: u64, size: u64) -> Account {
        Account {
            slots,
            charged: allowance(slots, size),
            size,
        }
    }

    pub fn allowance(&self) -> u64 {
        allowance(self.slots, self.size)
    }

    /// Bytes that may still be drawn without counting a download.
    pub fn credit(&self) -> u64 {
        self.allowance().saturating_sub(self.charged)
    }
}

/// What a response asks of its part's account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ask {
    /// Bytes the response still expects to send: a draw rides on the counted downloads only if
    /// the allowance covers all of them.
    pub need: u64,
    /// Bytes to pay for now (at most `need`).
    pub bytes: u64,
    /// The part's size as this response knows it; 0 when unknown.
    pub size: u64,
    /// Only asks whether anything may still be sent (HEAD, or a GET whose size is not known
    /// yet): takes nothing.
    pub probe: bool,
    /// A response of unknown size: it gives back the `need` bytes it drew before, then takes a
    /// download of its own, unmetered.
    pub own: bool,
    /// All of `need` must be covered (by the allowance or a new download), or nothing is given:
    /// a response whose head is not written yet is refused cleanly rather than cut short.
    pub whole: bool,
    /// Downloads this gateway instance would take at once as a [`Block`]; 0: an ordinary draw.
    /// The store gives a block only as the rules allow ([`block_size`]) and otherwise applies the
    /// draw as if `block` were 0 (with `probe`, a block taken ahead of need: refused, it takes
    /// nothing).
    pub block: u64,
}

/// What a draw got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drawn {
    /// `bytes` paid for (maybe fewer than asked, past the limit); `counted` when this draw counted
    /// a new download; `used` is the link's count after it.
    Granted {
        bytes: u64,
        counted: bool,
        used: u64,
    },
    /// The draw asked for a block and got one: `slots` downloads counted and their whole copies
    /// (`slots × size` bytes) paid for, for this instance to hand out ([`Block`]). The draw's own
    /// bytes were not taken: the caller takes them from the block.
    Block { slots: u64, used: u64 },
    /// Nothing may be sent.
    Exhausted,
    /// The caller's copy of the link is stale (its generation or state changed, or it is gone).
    Stale,
}

/// Applies `ask` to a part's account and the link's download count (`used`, all parts and own
/// downloads together) under the limit `max`. The stores run this atomically.
pub fn draw(used: &mut u64, max: u64, account: &mut Account, ask: &Ask) -> Drawn {
    if ask.size > 0 && (account.size == 0 || ask.size < account.size) {
        // The smallest size seen: a document replaced by a smaller one never buys extra copies.
        account.size = ask.size;
    }
    if ask.block > 0 && !ask.own && ask.size > 0 && ask.size == account.size {
        let slots = block_size(*used, max, ask.block);
        if slots > 0 {
            *used += slots;
            account.slots += slots;
            account.charged = account
                .charged
                .saturating_add(slots.saturating_mul(account.size));
            return Drawn::Block { slots, used: *used };
        }
    }
    if ask.own {
        // What the response drew before it knew its size was unknown goes back first.
        refund(used, account, ask.need, 0);
        if *used >= max {
            return Drawn::Exhausted;
        }
        *used += 1;
        return Drawn::Granted {
            bytes: 0,
            counted: true,
            used: *used,
        };
    }
    if ask.probe {
        // Something may still be sent while a download is left, or while the last one is not
        // complete (its allowance holds more than the half copy of slack).
        return if *used < max || account.credit() > account.size / 2 {
            Drawn::Granted {
                bytes: 0,
                counted: false,
                used: *used,
            }
        } else {
            Drawn::Exhausted
        };
    }
    let bytes = ask.bytes;
    if account.size > 0
        && account.charged.saturating_add(ask.need.max(bytes)) <= account.allowance()
    {
        account.charged += bytes;
        return Drawn::Granted {
            bytes,
            counted: false,
            used: *used,
        };
    }
    if *used < max {
        // A new download adds a copy's worth (a copy and a half for the first) to the allowance.
        *used += 1;
        account.slots += 1;
        let given = bytes.min(account.credit());
        account.charged += given;
        return Drawn::Granted {
            bytes: given,
            counted: true,
            used: *used,
        };
    }
    let left = account.credit();
    if left > 0 && bytes > 0 && !ask.whole {
        let given = bytes.min(left);
        account.charged += given;
        return Drawn::Granted {
            bytes: given,
            counted: false,
            used: *used,
        };
    }
    Drawn::Exhausted
}

/// Downloads a gateway instance asks for in a document's first block.
pub const BLOCK_DOWNLOADS: u64 = 256;
/// The most downloads it asks for in one block, however fast they go.
pub const BLOCK_MOST: u64 = 16_384;
/// A block that lasted less than this (from its take to the next one) was too small for the
/// demand: the next asks for twice as many. One that lasted more than four times this was too
/// large: the next asks for half. So at any rate a block lasts about this long, and the next one
/// is taken (at half use) that much ahead of need, whatever the store's latency at that moment.
pub const BLOCK_LASTS: std::time::Duration = std::time::Duration::from_millis(250);
/// A block takes at most this fraction (1/n) of the downloads left, so that other instances
/// still find some, and the last ones are always counted one at a time.
pub const BLOCK_SHARE: u64 = 16;
/// The fewest downloads worth a block: a link with fewer than `BLOCK_SHARE × BLOCK_MIN` left
/// is counted one download per round trip, exactly as it is shown.
pub const BLOCK_MIN: u64 = 8;
/// Documents up to this size are counted in blocks (each of their responses is paid for in one
/// draw).
pub const BLOCK_MAX_SIZE: u64 = FIRST_LEASE;

/// How many of the `asked` downloads a block gets when `used` of `max` are counted: a
/// sixteenth of what is left, at most `asked`, and none below [`BLOCK_MIN`].
pub fn block_size(used: u64, max: u64, asked: u64) -> u64 {
    let slots = asked.min(max.saturating_sub(used) / BLOCK_SHARE);
    if slots >= BLOCK_MIN {
        slots
    } else {
        0
    }
}

/// The downloads to ask for in the next block of a document whose last block asked for `asked`
/// and was taken `lasted` before this one: see [`BLOCK_LASTS`].
pub fn next_block_ask(asked: u64, lasted: std::time::Duration) -> u64 {
    if lasted < BLOCK_LASTS {
        asked.saturating_mul(2).min(BLOCK_MOST)
    } else if lasted > BLOCK_LASTS * 4 {
        (asked / 2).max(BLOCK_DOWNLOADS)
    } else {
        asked
    }
}

/// An instance's block on a part's account: `slots` downloads the store counted and paid for in
/// full (`slots × size` bytes), handed out here without a store round trip, by the same rules as
/// the store's but without its half copy of slack (the account keeps that once). What it did not
/// hand out goes back to the store as a refund of [`Block::unused`] bytes, which uncounts the
/// downloads those bytes covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub slots: u64,
    pub size: u64,
    /// Downloads handed out so far.
    pub handed: u64,
    /// Bytes handed out and not given back.
    pub charged: u64,
}

impl Block {
    pub fn new(slots: u64, size: u64) -> Block {
        Block {
            slots,
            size,
            handed: 0,
            charged: 0,
        }
    }

    /// Serves an ordinary draw of a known size whole (`Some(counted)`), or `None` when the
    /// block cannot (the caller asks the store).
    pub fn draw(&mut self, ask: &Ask) -> Option<bool> {
        if ask.probe || ask.own || ask.block > 0 || ask.size == 0 || ask.size != self.size {
            return None;
        }
        let want = ask.need.max(ask.bytes);
        let after = self.charged.checked_add(want)?;
        if after <= self.handed.saturating_mul(self.size) {
            self.charged += ask.bytes;
            return Some(false);
        }
        if self.handed < self.slots && after <= (self.handed + 1).saturating_mul(self.size) {
            self.handed += 1;
            self.charged += ask.bytes;
            return Some(true);
        }
        None
    }

    /// Gives back `bytes` a response drew from this block and did not send; uncounts the last
    /// downloads handed out while the ones before cover what stays charged. Returns how many.
    pub fn refund(&mut self, bytes: u64) -> u64 {
        self.charged = self.charged.saturating_sub(bytes);
        let mut freed = 0;
        while self.handed > 0 && self.charged <= (self.handed - 1).saturating_mul(self.size) {
            self.handed -= 1;
            freed += 1;
        }
        freed
    }

    /// Bytes the store was paid that this block did not hand out.
    pub fn unused(&self) -> u64 {
        self.slots
            .saturating_mul(self.size)
            .saturating_sub(self.charged)
    }
}

/// Gives back `bytes` drawn and not sent, and `own` downloads of unknown size that sent nothing;
/// then uncounts the part's last downloads while the ones before them cover what stays charged.
/// Returns how many downloads were uncounted.
pub fn refund(used: &mut u64, account: &mut Account, bytes: u64, own: u64) -> u64 {
    account.charged = account.charged.saturating_sub(bytes);
    let mut freed = own.min(*used);
    *used -= freed;
    while account.slots > 0
        && *used > 0
        && account.charged <= allowance(account.slots - 1, account.size)
    {
        account.slots -= 1;
        *used -= 1;
        freed += 1;
    }
    freed
}

/// One response's metering: what it drew, what it sent, and what it must draw next.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    /// Bytes drawn for this response.
    leased: u64,
    sent: u64,
    /// Body length of the response, once its head is known.
    length: Option<u64>,
    /// What admission expected to send (`None`: it did not know and only probed).
    expected: Option<u64>,
    /// The part's size as known to this response (0: unknown).
    size: u64,
    /// The response holds a download of its own (unknown size): no leases.
    own: bool,
    /// A draw of this response counted a download.
    counted: bool,
    /// The head went out: from now on a draw may give fewer bytes than asked (the rest of the
    /// allowance), and the response is cut where they end.
    pub streaming: bool,
}

impl Meter {
    /// The draw that admits a GET: the first lease when the document's size is known, else a
    /// probe. `expected` is what the request expects to send ([`expected_length`]).
    pub fn admission(expected: Option<u64>, size: Option<u64>) -> (Meter, Ask) {
        let meter = Meter {
            expected,
            size: size.unwrap_or(0),
            ..Meter::default()
        };
        let ask = match expected {
            Some(need) if meter.size > 0 => Ask {
                need,
                bytes: need.min(FIRST_LEASE),
                size: meter.size,
                whole: true,
                ..Ask::default()
            },
            _ => Ask {
                probe: true,
                size: meter.size,
                ..Ask::default()
            },
        };
        (meter, ask)
    }

    /// Records what a draw got; `false` when the response may not go on. Before the head is
    /// written, a draw that gives less than asked refuses the response (a clean 404 rather than a
    /// body cut short); the part it gave goes back with the refund.
    pub fn drawn(&mut self, ask: &Ask, got: Drawn) -> bool {
        match got {
            Drawn::Granted { bytes, counted, .. } => {
                if ask.own {
                    // The store took back what was drawn before.
                    self.leased = 0;
                    self.own = true;
                }
                self.leased += bytes;
                self.counted |= counted;
                self.streaming || bytes >= ask.bytes
            }
            Drawn::Exhausted => {
                if ask.own {
                    self.leased = 0;
                }
                false
            }
            // A block is turned into draws by its holder before a meter sees them.
            Drawn::Block { .. } | Drawn::Stale => false,
        }
    }

    /// Once the response's head is known (`length` of its body, the document's `size`, each
    /// when stated): the draw to make before the head is written, if any.
    pub fn begin(&mut self, length: Option<u64>, size: Option<u64>) -> Option<Ask> {
        self.length = length;
        if let Some(s) = size.filter(|s| *s > 0) {
            self.size = if self.size == 0 { s } else { self.size.min(s) };
        }
        match length {
            Some(0) => None,
            Some(l) if self.size > 0 => {
                let covered = self.expected.is_some_and(|e| e >= l) && self.leased > 0;
                (!covered).then(|| {
                    let need = l.saturating_sub(self.leased);
                    Ask {
                        need,
                        bytes: need.min(FIRST_LEASE),
                        size: self.size,
                        whole: true,
                        ..Ask::default()
                    }
                })
            }
            _ => Some(Ask {
                own: true,
                need: self.leased,
                ..Ask::default()
            }),
        }
    }

    /// Before writing `chunk` bytes: the draw that must come first, if the lease does not cover
    /// them.
    pub fn before_write(&self, chunk: u64) -> Option<Ask> {
        if self.own {
            return None;
        }
        let short = (self.sent + chunk).saturating_sub(self.leased);
        if short == 0 {
            return None;
        }
        let ahead = LEASE.max(self.sent / 4);
        let ahead = match self.length {
            Some(l) => ahead.min(l.saturating_sub(self.leased)),
            None => ahead,
        };
        let bytes = short.max(ahead);
        Some(Ask {
            need: bytes,
            bytes,
            size: self.size,
            ..Ask::default()
        })
    }

    /// How many of `chunk` bytes the lease covers now.
    pub fn covered(&self, chunk: u64) -> u64 {
        if self.own {
            return chunk;
        }
        chunk.min(self.leased.saturating_sub(self.sent))
    }

    pub fn wrote(&mut self, n: u64) {
        self.sent += n;
    }

    pub fn counted(&self) -> bool {
        self.counted
    }

    /// What goes back when the response is over: unsent bytes, and its own download if it sent
    /// nothing. `None` when there is nothing to give back and no count to reconsider.
    pub fn settle(&self) -> Option<(u64, u64)> {
        // A download of its own was not metered: whatever was drawn before goes back.
        let unsent = if self.own {
            self.leased
        } else {
            self.leased.saturating_sub(self.sent)
        };
        let own = u64::from(self.own && self.sent == 0);
        (unsent > 0 || own > 0 || (self.counted && self.sent == 0)).then_some((unsent, own))
    }
}

/// Which account of a link a response is metered against: the object it sends, so that viewing
/// and downloading the same bytes (or two documents naming one object) share one allowance.
pub fn part_of(object: &str) -> String {
    use sha2::Digest;
    crate::model::hex::encode(&sha2::Sha256::digest(object.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(method: Method, headers: &[(&'static str, &'static str)]) -> Kind {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, v.parse().unwrap());
        }
        classify(&method, &map)
    }

    #[test]
    fn classification() {
        assert_eq!(kind(Method::HEAD, &[]), Kind::Head);
        assert_eq!(kind(Method::GET, &[]), Kind::Fresh);
        assert_eq!(
            kind(Method::GET, &[("sec-purpose", "prefetch;prerender")]),
            Kind::Prefetch
        );
        assert_eq!(
            kind(Method::GET, &[("purpose", "prefetch")]),
            Kind::Prefetch
        );
        assert_eq!(kind(Method::GET, &[("range", "bytes=0-99")]), Kind::Fresh);
        assert_eq!(
            kind(Method::GET, &[("range", "bytes=0-9, 50-60")]),
            Kind::Fresh
        );
        assert_eq!(
            kind(Method::GET, &[("range", "bytes=100-")]),
            Kind::Continuation
        );
        assert_eq!(
            kind(Method::GET, &[("range", "bytes=-100")]),
            Kind::Continuation
        );
        assert_eq!(kind(Method::GET, &[("range", "items=5-")]), Kind::Fresh);
        assert_eq!(kind(Method::GET, &[("range", "bytes=x-")]), Kind::Fresh);
    }

    #[test]
    fn ranges_and_expected_lengths() {
        assert_eq!(single_range("bytes=5-9"), Some(ByteRange::Span(5, 9)));
        assert_eq!(single_range("bytes=9-5"), None);
        assert_eq!(single_range("bytes=5-,0-"), None);
        assert!(is_multi_range("bytes=5-,0-"));
        assert!(!is_multi_range("bytes=5-"));
        assert_eq!(expected_length(None, Some(100)), Some(100));
        assert_eq!(expected_length(Some("bytes=10-19"), Some(100)), Some(10));
        assert_eq!(expected_length(Some("bytes=90-200"), Some(100)), Some(10));
        assert_eq!(expected_length(Some("bytes=-30"), Some(100)), Some(30));
        assert_eq!(expected_length(Some("bytes=-300"), Some(100)), Some(100));
        assert_eq!(expected_length(Some("bytes=40-"), Some(100)), Some(60));
        assert_eq!(expected_length(Some("bytes=40-"), None), None);
        assert_eq!(expected_length(Some("bytes=0-9"), None), Some(10));
        assert_eq!(expected_length(Some("bytes=5-,0-"), Some(100)), Some(100));
        assert_eq!(
            expected_length(Some("bytes=0-18446744073709551615"), None),
            Some(u64::MAX)
        );
        assert_eq!(
            expected_length(Some("bytes=1-18446744073709551615"), None),
            Some(u64::MAX)
        );
    }

    #[test]
    fn a_first_download_counts_and_a_second_whole_copy_counts_again() {
        let (mut used, mut acct) = (0, Account::default());
        let ask = Ask {
            need: 100,
            bytes: 100,
            size: 100,
            ..Ask::default()
        };
        assert_eq!(
            draw(&mut used, 2, &mut acct, &ask),
            Drawn::Granted {
                bytes: 100,
                counted: true,
                used: 1
            }
        );
        assert_eq!(
            draw(&mut used, 2, &mut acct, &ask),
            Drawn::Granted {
                bytes: 100,
                counted: true,
                used: 2
            }
        );
        // 200 charged of 250 allowed: 50 more bytes, then nothing.
        assert_eq!(
            draw(&mut used, 2, &mut acct, &ask),
            Drawn::Granted {
                bytes: 50,
                counted: false,
                used: 2
            }
        );
        assert_eq!(draw(&mut used, 2, &mut acct, &ask), Drawn::Exhausted);
    }

    #[test]
    fn a_request_that_sent_nothing_is_uncounted() {
        let (mut used, mut acct) = (0, Account::default());
        let ask = Ask {
            need: 100,
            bytes: 100,
            size: 100,
            ..Ask::default()
        };
        draw(&mut used, 1, &mut acct, &ask);
        assert_eq!(refund(&mut used, &mut acct, 100, 0), 1);
        assert_eq!((used, acct.slots, acct.charged), (0, 0, 0));
    }

    #[test]
    fn an_early_break_leaves_its_allowance_for_the_restart() {
        let (mut used, mut acct) = (0, Account::default());
        let ask = Ask {
            need: 100,
            bytes: 100,
            size: 100,
            ..Ask::default()
        };
        draw(&mut used, 1, &mut acct, &ask);
        assert_eq!(refund(&mut used, &mut acct, 60, 0), 0); // 40 bytes were sent
        assert_eq!(
            draw(&mut used, 1, &mut acct, &ask),
            Drawn::Granted {
                bytes: 100,
                counted: false,
                used: 1
            }
        );
    }

    #[test]
    fn own_downloads_count_and_are_given_back_only_unsent() {
        let (mut used, mut acct) = (0, Account::default());
        let own = Ask {
            own: true,
            ..Ask::default()
        };
        assert_eq!(
            draw(&mut used, 1, &mut acct, &own),
            Drawn::Granted {
                bytes: 0,
                counted: true,
                used: 1
            }
        );
        assert_eq!(draw(&mut used, 1, &mut acct, &own), Drawn::Exhausted);
        assert_eq!(refund(&mut used, &mut acct, 0, 1), 1);
        assert_eq!(used, 0);
    }

    #[test]
    fn probes_take_nothing() {
        let (mut used, mut acct) = (
            1,
            Account {
                slots: 1,
                charged: 150,
                size: 100,
            },
        );
        assert_eq!(
            draw(
                &mut used,
                1,
                &mut acct,
                &Ask {
                    probe: true,
                    ..Ask::default()
                }
            ),
            Drawn::Exhausted
        );
        acct.charged = 100;
        assert_eq!(
            draw(
                &mut used,
                1,
                &mut acct,
                &Ask {
                    probe: true,
                    ..Ask::default()
                }
            ),
            Drawn::Exhausted,
            "a complete download"
        );
        acct.charged = 40;
        assert!(matches!(
            draw(
                &mut used,
                1,
                &mut acct,
                &Ask {
                    probe: true,
                    ..Ask::default()
                }
            ),
            Drawn::Granted { bytes: 0, .. }
        ));
        assert_eq!(acct.charged, 40);
    }

    #[test]
    fn a_meter_draws_ahead_and_gives_back_the_rest() {
        let (mut meter, ask) = Meter::admission(Some(10 << 20), Some(10 << 20));
        assert_eq!(ask.bytes, FIRST_LEASE);
        assert!(meter.drawn(
            &ask,
            Drawn::Granted {
                bytes: FIRST_LEASE,
                counted: true,
                used: 1
            }
        ));
        assert_eq!(meter.begin(Some(10 << 20), Some(10 << 20)), None);
        assert_eq!(meter.before_write(FIRST_LEASE), None);
        meter.wrote(FIRST_LEASE);
        let next = meter.before_write(64 * 1024).unwrap();
        assert_eq!(next.bytes, LEASE);
        assert!(meter.drawn(
            &next,
            Drawn::Granted {
                bytes: LEASE,
                counted: false,
                used: 1
            }
        ));
        meter.wrote(1000);
        assert_eq!(meter.settle(), Some((LEASE - 1000, 0)));
        assert!(meter.counted());
    }

    #[test]
    fn a_meter_of_unknown_size_holds_its_own_download() {
        let (mut meter, ask) = Meter::admission(None, None);
        assert!(ask.probe);
        assert!(meter.drawn(
            &ask,
            Drawn::Granted {
                bytes: 0,
                counted: false,
                used: 0
            }
        ));
        let own = meter.begin(None, None).unwrap();
        assert!(own.own);
        assert!(meter.drawn(
            &own,
            Drawn::Granted {
                bytes: 0,
                counted: true,
                used: 1
            }
        ));
        assert_eq!(meter.before_write(1 << 30), None);
        assert_eq!(meter.covered(1 << 30), 1 << 30);
        assert_eq!(meter.settle(), Some((0, 1)));
        meter.wrote(5);
        assert_eq!(meter.settle(), None);
    }

    #[test]
    fn a_response_longer_than_admission_expected_draws_before_its_head() {
        // If-Range that did not match: the origin sends the whole document.
        let (mut meter, ask) = Meter::admission(Some(10), Some(100));
        assert!(meter.drawn(
            &ask,
            Drawn::Granted {
                bytes: 10,
                counted: true,
                used: 1
            }
        ));
        let more = meter.begin(Some(100), Some(100)).unwrap();
        assert_eq!((more.need, more.bytes), (90, 90));
    }

    /// The adversary of the counting rules: random sequences of requests of every shape, on
    /// parallel connections, broken off at any byte, with refunds landing late or never
    /// (restarts), on one part of a link. Whatever it does, the bytes that leave never exceed
    /// `(max + ½) × size`.
    mod adversary {
        use super::super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Shape {
            Whole,
            Span(u64, u64),
            From(u64),
            Suffix(u64),
            /// Several ranges: answered with the whole document.
            Multi,
            /// A range with an `If-Range` that does not match: the whole document comes back.
            StaleIfRange(u64),
        }

        #[derive(Debug, Clone)]
        enum Op {
            Open { shape: Shape, hint: bool },
            Write { conn: usize, n: u64 },
            Abort { conn: usize },
            Flush,
            Restart,
        }

        fn shape(size: u64) -> impl Strategy<Value = Shape> {
            let s = size.max(1);
            prop_oneof![
                Just(Shape::Whole),
                (0..s + 2, 0..s + 2).prop_map(|(a, b)| Shape::Span(a.min(b), a.max(b))),
                (0..s + 2).prop_map(Shape::From),
                (1..s + 2).prop_map(Shape::Suffix),
                Just(Shape::Multi),
                (0..s).prop_map(Shape::StaleIfRange),
            ]
        }

        fn ops(size: u64) -> impl Strategy<Value = Vec<Op>> {
            let op = prop_oneof![
                3 => (shape(size), any::<bool>()).prop_map(|(shape, hint)| Op::Open { shape, hint }),
                6 => (0usize..6, 1..size.max(2) * 2).prop_map(|(conn, n)| Op::Write { conn, n }),
                2 => (0usize..6).prop_map(|conn| Op::Abort { conn }),
                2 => Just(Op::Flush),
                1 => Just(Op::Restart),
            ];
            proptest::collection::vec(op, 1..120)
        }

        /// The gateway's side of one response, as the proxy drives a [`Meter`].
        struct Conn {
            meter: Meter,
            left: u64,
        }

        struct World {
            size: u64,
            max: u64,
            used: u64,
            account: Account,
            conns: Vec<Conn>,
            pending: Vec<(u64, u64)>,
            sent: u64,
            /// A restart forgets the in-memory account (the embedded store) or keeps it (Redis).
            forgets: bool,
        }

        impl World {
            fn draw(&mut self, ask: &Ask) -> Drawn {
                draw(&mut self.used, self.max, &mut self.account, ask)
            }

            fn settle(&mut self, meter: &Meter) {
                if let Some(back) = meter.settle() {
                    self.pending.push(back);
                }
            }

            fn open(&mut self, shape: &Shape, hint: bool) {
                let s = self.size;
                let (range, length) = match *shape {
                    Shape::Whole | Shape::Multi => (None, s),
                    Shape::Span(a, b) => (
                        Some(format!("bytes={a}-{b}")),
                        if a >= s { 0 } else { b.min(s - 1) - a + 1 },
                    ),
                    Shape::From(a) => (Some(format!("bytes={a}-")), s.saturating_sub(a)),
                    Shape::Suffix(n) => (Some(format!("bytes=-{n}")), n.min(s)),
                    Shape::StaleIfRange(a) => (Some(format!("bytes={a}-")), s),
                };
                let hint = hint.then_some(s);
                let (mut meter, ask) =
                    Meter::admission(expected_length(range.as_deref(), hint), hint);
                let got = self.draw(&ask);
                if !meter.drawn(&ask, got) {
                    self.settle(&meter);
                    return;
                }
                if let Some(ask) = meter.begin(Some(length), Some(s)) {
                    let got = self.draw(&ask);
                    if !meter.drawn(&ask, got) {
                        self.settle(&meter);
                        return;
                    }
                }
                meter.streaming = true;
                self.conns.push(Conn {
                    meter,
                    left: length,
                });
            }

            fn write(&mut self, conn: usize, n: u64) {
                if conn >= self.conns.len() {
                    return;
                }
                let chunk = n.min(self.conns[conn].left);
                if let Some(ask) = self.conns[conn].meter.before_write(chunk) {
                    let got = self.draw(&ask);
                    if !self.conns[conn].meter.drawn(&ask, got) {
                        let c = self.conns.remove(conn);
                        self.settle(&c.meter);
                        return;
                    }
                }
                let c = &mut self.conns[conn];
                let covered = c.meter.covered(chunk);
                c.meter.wrote(covered);
                c.left -= covered;
                self.sent += covered;
                if covered < chunk || c.left == 0 {
                    let c = self.conns.remove(conn);
                    self.settle(&c.meter);
                }
            }

            fn run(&mut self, op: &Op) {
                match op {
                    Op::Open { shape, hint } => self.open(shape, *hint),
                    Op::Write { conn, n } => self.write(*conn, *n),
                    Op::Abort { conn } if *conn < self.conns.len() => {
                        let c = self.conns.remove(*conn);
                        self.settle(&c.meter);
                    }
                    Op::Abort { .. } => {}
                    Op::Flush => {
                        for (bytes, own) in std::mem::take(&mut self.pending) {
                            refund(&mut self.used, &mut self.account, bytes, own);
                        }
                    }
                    Op::Restart => {
                        self.conns.clear();
                        self.pending.clear();
                        if self.forgets {
                            self.account = Account::spent(self.account.slots, self.account.size);
                        }
                    }
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
            #[test]
            fn no_sequence_of_requests_takes_out_more_than_the_limit(
                size in prop_oneof![1u64..64, 64u64..5_000_000],
                max in 1u64..4,
                forgets in any::<bool>(),
                ops in (1u64..5_000_000).prop_flat_map(ops),
            ) {
                let mut world = World { size, max, used: 0, account: Account::default(), conns: Vec::new(), pending: Vec::new(), sent: 0, forgets };
                for op in &ops {
                    world.run(op);
                    prop_assert!(world.sent <= max * size + size / 2, "sent {} of {size} bytes with max {max}", world.sent);
                    prop_assert!(world.used <= max);
                }
            }
        }

        fn world(size: u64) -> World {
            World {
                size,
                max: 1,
                used: 0,
                account: Account::default(),
                conns: Vec::new(),
                pending: Vec::new(),
                sent: 0,
                forgets: false,
            }
        }

        /// Streams connection 0 to its end in chunks of `chunk` bytes.
        fn finish(w: &mut World, chunk: u64) {
            while !w.conns.is_empty() {
                w.write(0, chunk);
            }
        }

        proptest! {
            #[test]
            fn a_download_broken_off_anywhere_and_resumed_completes_on_a_limit_of_one(
                size in 1u64..50_000_000, cut in 0.0f64..1.0, hint in any::<bool>()
            ) {
                let mut w = world(size);
                w.open(&Shape::Whole, hint);
                let at = (size as f64 * cut) as u64;
                if at > 0 { w.write(0, at); }
                w.run(&Op::Abort { conn: 0 });
                w.run(&Op::Flush);
                let got = w.sent;
                w.open(&Shape::From(got), hint);
                finish(&mut w, 64 * 1024);
                prop_assert_eq!(w.sent, size);
                prop_assert_eq!(w.used, 1);
            }

            #[test]
            fn a_browser_restarting_from_zero_after_an_early_break_completes_on_a_limit_of_one(
                size in 2u64..50_000_000, cut in 0.0f64..0.5, hint in any::<bool>()
            ) {
                let mut w = world(size);
                w.open(&Shape::Whole, hint);
                let at = (size as f64 * cut) as u64;
                if at > 0 { w.write(0, at); }
                w.run(&Op::Abort { conn: 0 });
                w.run(&Op::Flush);
                let first = w.sent;
                w.open(&Shape::Whole, hint);
                finish(&mut w, 64 * 1024);
                prop_assert_eq!(w.sent - first, size);
                prop_assert_eq!(w.used, 1);
            }

            #[test]
            fn a_download_manager_with_parallel_ranges_completes_on_a_limit_of_one(
                size in 2_000_000u64..200_000_000, parts in 2u64..16
            ) {
                // aria2's way: one whole GET, then bounded ranges (at least 1 MiB each, its
                // smallest split) on further connections, the first connection cut where the
                // second part starts, its unsent lease given back as it ends.
                let parts = parts.min(size / (1 << 20)).max(2);
                let mut w = world(size);
                w.open(&Shape::Whole, true);
                let piece = size / parts;
                for p in 1..parts {
                    let end = if p == parts - 1 { size - 1 } else { (p + 1) * piece - 1 };
                    w.open(&Shape::Span(p * piece, end), true);
                }
                prop_assert_eq!(w.conns.len() as u64, parts);
                // Round-robin chunks; the first connection is broken off once it has sent its part.
                let (chunk, mut first) = (64 * 1024, 0u64);
                let mut first_alive = true;
                while !w.conns.is_empty() {
                    for i in (0..w.conns.len()).rev() {
                        if i == 0 && first_alive {
                            let n = chunk.min(piece - first);
                            let before = w.sent;
                            w.write(0, n);
                            first += w.sent - before;
                            if first >= piece {
                                w.run(&Op::Abort { conn: 0 });
                                w.run(&Op::Flush);
                                first_alive = false;
                            }
                        } else {
                            w.write(i, chunk);
                        }
                    }
                }
                prop_assert!(w.sent >= size);
                prop_assert_eq!(w.used, 1);
            }
        }
    }

    fn whole(size: u64) -> Ask {
        Ask {
            need: size,
            bytes: size,
            size,
            whole: true,
            ..Ask::default()
        }
    }

    #[test]
    fn blocks_grow_while_they_go_fast_and_shrink_when_they_go_slow() {
        let ms = std::time::Duration::from_millis;
        assert_eq!(next_block_ask(BLOCK_DOWNLOADS, ms(10)), 2 * BLOCK_DOWNLOADS);
        assert_eq!(next_block_ask(BLOCK_MOST, ms(10)), BLOCK_MOST);
        assert_eq!(next_block_ask(1024, ms(250)), 1024);
        assert_eq!(next_block_ask(1024, ms(1000)), 1024);
        assert_eq!(next_block_ask(1024, ms(1001)), 512);
        assert_eq!(next_block_ask(BLOCK_DOWNLOADS, ms(60_000)), BLOCK_DOWNLOADS);
        // From the first ask to the most in a few fast blocks, and back.
        let mut ask = BLOCK_DOWNLOADS;
        for _ in 0..6 {
            ask = next_block_ask(ask, ms(1));
        }
        assert_eq!(ask, BLOCK_MOST);
        for _ in 0..6 {
            ask = next_block_ask(ask, ms(5_000));
        }
        assert_eq!(ask, BLOCK_DOWNLOADS);
    }

    #[test]
    fn a_block_takes_a_sixteenth_of_what_is_left_and_never_the_last_downloads() {
        assert_eq!(block_size(0, 1_000_000, BLOCK_DOWNLOADS), BLOCK_DOWNLOADS);
        assert_eq!(block_size(0, 100_000, BLOCK_MOST), 6_250);
        assert_eq!(block_size(0, 1_000_000, BLOCK_MOST), BLOCK_MOST);
        assert_eq!(block_size(0, 320, BLOCK_DOWNLOADS), 20);
        assert_eq!(block_size(0, 128, BLOCK_DOWNLOADS), 8);
        assert_eq!(block_size(0, 127, BLOCK_DOWNLOADS), 0);
        assert_eq!(block_size(900, 1000, BLOCK_DOWNLOADS), 0);
        assert_eq!(block_size(2000, 1000, BLOCK_DOWNLOADS), 0);
        assert_eq!(block_size(0, u64::MAX, u64::MAX), u64::MAX / BLOCK_SHARE);
    }

    #[test]
    fn a_store_draw_that_asks_a_block_counts_and_pays_whole_copies() {
        let (mut used, mut account) = (0, Account::default());
        let ask = Ask {
            block: 64,
            ..whole(100)
        };
        assert_eq!(
            draw(&mut used, 10_000, &mut account, &ask),
            Drawn::Block {
                slots: 64,
                used: 64
            }
        );
        assert_eq!((account.slots, account.charged), (64, 6400));
        // Credit is what it was: the half copy of slack, once.
        assert_eq!(account.credit(), 50);
        // Taken ahead of need (a probe): refused, it takes nothing.
        let ahead = Ask {
            probe: true,
            block: 64,
            size: 100,
            ..Ask::default()
        };
        let (mut used, mut account) = (0, Account::default());
        assert!(matches!(
            draw(&mut used, 100, &mut account, &ahead),
            Drawn::Granted {
                bytes: 0,
                counted: false,
                used: 0
            }
        ));
        assert_eq!((used, account.slots, account.charged), (0, 0, 0));
        // Too few left: an ordinary draw.
        assert!(matches!(
            draw(&mut used, 100, &mut account, &ask),
            Drawn::Granted {
                bytes: 100,
                counted: true,
                used: 1
            }
        ));
    }

    #[test]
    fn a_block_hands_out_its_downloads_and_no_byte_more() {
        let mut block = Block::new(3, 100);
        for n in 1..=3 {
            assert_eq!(block.draw(&whole(100)), Some(true), "download {n}");
        }
        assert_eq!(block.draw(&whole(100)), None);
        assert_eq!(block.unused(), 0);
        // A response that sent 40 of its bytes gives 60 back: a range rides on them, a whole
        // copy does not fit.
        assert_eq!(block.refund(60), 0);
        let range = Ask {
            need: 40,
            bytes: 40,
            ..whole(100)
        };
        assert_eq!(block.draw(&range), Some(false));
        assert_eq!(block.draw(&whole(100)), None);
        // Two that sent nothing give their downloads back.
        assert_eq!(block.refund(180), 2);
        assert_eq!((block.handed, block.charged), (1, 100));
        assert_eq!(block.draw(&whole(100)), Some(true));
        assert_eq!(block.draw(&whole(100)), Some(true));
        assert_eq!(block.draw(&whole(100)), None);
        assert_eq!(block.unused(), 0);
        // Probes, downloads of unknown size, other sizes and nested blocks go to the store.
        let mut block = Block::new(3, 100);
        for ask in [
            Ask {
                probe: true,
                ..whole(100)
            },
            Ask {
                own: true,
                ..whole(100)
            },
            Ask {
                block: 8,
                ..whole(100)
            },
            whole(99),
            whole(0),
        ] {
            assert_eq!(block.draw(&ask), None, "{ask:?}");
        }
        assert_eq!(block.unused(), 300);
    }

    /// Whatever a client does with in blocks downloads (ranges, aborts at any byte, repeats), the
    /// bytes handed out never exceed the in blocks copies, and what goes back plus what stays
    /// charged is exactly what the store was paid.
    #[test]
    fn a_block_never_gives_more_than_it_was_paid_for() {
        let mut seed = 0x2545f4914f6cdd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let size = 1 + next(5000);
            let mut block = Block::new(1 + next(64), size);
            let mut open: Vec<u64> = Vec::new();
            for _ in 0..300 {
                if next(3) == 0 && !open.is_empty() {
                    let drawn = open.swap_remove(next(open.len() as u64) as usize);
                    block.refund(next(drawn + 1));
                } else {
                    let need = next(size + 1);
                    let ask = Ask {
                        need,
                        bytes: need,
                        size,
                        whole: true,
                        ..Ask::default()
                    };
                    if block.draw(&ask).is_some() {
                        open.push(need);
                    }
                }
                assert!(block.charged <= block.handed * size);
                assert!(block.handed <= block.slots);
                assert_eq!(block.unused() + block.charged, block.slots * size);
            }
        }
    }
}
