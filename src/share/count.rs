//! Count: a limited link's response draws every byte it sends from its document's account in the
//! link state before writing it (the rules are [`crate::model::counting`]). [`Metered`] is the
//! response's side of that: the first draw at admission (the one round trip on the request
//! path), more while the body streams, and what goes back when it ends.
//!
//! Small documents of links with many downloads left are counted from [`Blocks`]: this instance
//! takes a block of downloads from the store in one round trip and hands them out locally (the
//! rules are [`crate::model::counting::Block`]), so a counted download costs no round trip once a
//! block is held; what a block did not hand out goes back to the store once it is idle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::docstore::Allowance;
use crate::model::counting::{
    next_block_ask, Ask, Block, Drawn, Meter, BLOCK_DOWNLOADS, BLOCK_MAX_SIZE,
};
use crate::model::link::{Link, LinkId};
use crate::share::gate::Counting;
use crate::state::queues::Refund;
use crate::state::{Draw, LinkStore, StoreError, WriteId};

/// A response of a limited link, metered against its part's account in the link store.
pub struct Metered {
    store: Arc<dyn LinkStore>,
    counting: Arc<Counting>,
    /// The link as the request loaded it: a block is used only by requests that loaded the same
    /// copy of the link (a change to the link, or the end of its cache entry, ends that).
    link: Arc<Link>,
    draw: Draw,
    pub meter: Meter,
    /// The link's download count as the last granted draw saw it (the link is used up when it
    /// reached the limit).
    pub used: u64,
    /// The block this response drew from (one at most), and the bytes it drew from it.
    block: Option<u64>,
    from_block: u64,
}

impl Metered {
    /// Admits a GET that expects `expected` bytes of a part whose size the link may know: the
    /// one store round trip on the request path.
    #[allow(clippy::too_many_arguments)]
    pub async fn admit(
        store: Arc<dyn LinkStore>,
        counting: Arc<Counting>,
        link: Arc<Link>,
        max: u64,
        part: String,
        expected: Option<u64>,
        size: Option<u64>,
    ) -> Result<(Metered, Drawn), StoreError> {
        let (meter, ask) = Meter::admission(expected, size);
        let draw = Draw {
            id: link.id,
            generation: link.generation,
            max,
            part,
            ask,
            take: None,
        };
        let mut metered = Metered {
            store,
            counting,
            link,
            draw,
            meter,
            used: 0,
            block: None,
            from_block: 0,
        };
        let (got, go_on) = metered.ask(ask).await?;
        Ok((metered, if go_on { got } else { Drawn::Exhausted }))
    }

    /// Makes a draw; `Ok(false)` when the response may not go on.
    async fn ask(&mut self, mut ask: Ask) -> Result<(Drawn, bool), StoreError> {
        if ask.own && self.from_block > 0 {
            // The store gives back what it was drawn; what came from the block goes back there
            // (or, if the block went back already, it is in the store's account now).
            if let Some(epoch) = self.block {
                if self
                    .counting
                    .blocks
                    .refund(&self.draw, epoch, self.from_block)
                {
                    ask.need = ask.need.saturating_sub(self.from_block);
                }
            }
            self.from_block = 0;
            self.block = None;
        }
        self.draw.ask = ask;
        let got = match self.draw_from_block().await? {
            Some(got) => got,
            None => self.store.draw(&self.draw).await?,
        };
        if let Drawn::Granted { used, .. } = got {
            self.used = used;
        }
        let go_on = self.meter.drawn(&ask, got);
        Ok((got, go_on))
    }

    /// Serves the draw from this instance's block on the part, taking one first if there is
    /// none; `None` when the draw goes to the store as it is.
    async fn draw_from_block(&mut self) -> Result<Option<Drawn>, StoreError> {
        let ask = self.draw.ask;
        if ask.probe || ask.own || ask.size == 0 || ask.size > BLOCK_MAX_SIZE {
            return Ok(None);
        }
        for _ in 0..3 {
            match self
                .counting
                .blocks
                .serve(&self.link, &self.draw, self.block)
            {
                Local::Served {
                    counted,
                    used,
                    epoch,
                    renew,
                } => {
                    if let Some(downloads) = renew {
                        // Half of the block is handed out: the next one is taken now, in the
                        // background, so that requests do not wait for it. Only a block: if the
                        // store refuses it, nothing is drawn.
                        tokio::spawn(self.take_block(true, downloads));
                    }
                    self.block = Some(epoch);
                    self.from_block += ask.bytes;
                    return Ok(Some(Drawn::Granted {
                        bytes: ask.bytes,
                        counted,
                        used,
                    }));
                }
                Local::Store => return Ok(None),
                Local::Wait(mut ready) => {
                    // Another request is taking the block: wait for it rather than ask the store.
                    let _ = ready.changed().await;
                }
                Local::Fetch(downloads) => {
                    // Taken in a task of its own: a request that goes away while the store
                    // answers must not lose the downloads the store counted for the block.
                    let fetched = tokio::spawn(self.take_block(false, downloads))
                        .await
                        .map_err(|e| {
                            StoreError::Unavailable(format!("taking a block stopped: {e}"))
                        })??;
                    if !matches!(fetched, Drawn::Block { .. }) {
                        // The store applied the draw as an ordinary one.
                        return Ok(Some(fetched));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Asks the store for a block of (at most) `downloads` on this draw's part and puts it in
    /// place. Unless `ahead`, the store applies the draw itself when it refuses the block.
    fn take_block(
        &self,
        ahead: bool,
        downloads: u64,
    ) -> impl std::future::Future<Output = Result<Drawn, StoreError>> {
        let (store, counting, link) =
            (self.store.clone(), self.counting.clone(), self.link.clone());
        let mut draw = self.draw.clone();
        draw.ask.block = downloads;
        draw.take = Some(WriteId::new());
        if ahead {
            draw.ask = Ask {
                probe: true,
                size: draw.ask.size,
                block: downloads,
                ..Ask::default()
            };
        }
        async move {
            let got = store.draw(&draw).await;
            if let (Err(_), Some(take)) = (&got, draw.take) {
                // The answer is lost, not necessarily the take: the store may have counted the
                // block's downloads after all. Give them back (or void the take, if it lands
                // later), as any refund, off the request path until the store takes it.
                counting.queue_refund(lost_take(&draw, take));
            }
            let old = match &got {
                Ok(Drawn::Block { slots, used }) => {
                    counting.blocks.install(&link, &draw, *slots, *used)
                }
                other => counting
                    .blocks
                    .fetched(&draw, matches!(other, Ok(Drawn::Stale))),
            };
            if let Some(old) = old {
                counting.queue_refund(old);
            }
            got
        }
    }

    /// The head is about to be written: later draws may give part of what they ask.
    fn streaming(&mut self) {
        self.meter.streaming = true;
    }

    /// What goes back to the account now that the response is over: what it drew from a block
    /// goes back to the block here (while it is held), the rest is for the store.
    pub fn refund(&self) -> Option<Refund> {
        let (mut bytes, own) = self.meter.settle()?;
        if let Some(epoch) = self.block {
            let local = bytes.min(self.from_block);
            if local > 0 && self.counting.blocks.refund(&self.draw, epoch, local) {
                bytes -= local;
            }
            if bytes == 0 && own == 0 {
                return None;
            }
        }
        Some(Refund {
            id: self.draw.id,
            generation: self.draw.generation,
            part: self.draw.part.clone(),
            bytes,
            own,
            write: WriteId::new(),
            take: false,
        })
    }
}

/// What a block did for a draw.
enum Local {
    Served {
        counted: bool,
        used: u64,
        epoch: u64,
        /// Take the next block now, of this many downloads.
        renew: Option<u64>,
    },
    /// Take a block of this many downloads (this request is the one that does).
    Fetch(u64),
    /// Another request is taking one: wait for it.
    Wait(tokio::sync::watch::Receiver<()>),
    /// Ask the store.
    Store,
}

/// A block that served nothing for this long goes back to the store.
const BLOCK_IDLE: Duration = Duration::from_secs(1);

/// This instance's blocks, by link generation and part.
#[derive(Default)]
pub struct Blocks {
    table: Mutex<HashMap<(LinkId, u64), Vec<Held>>>,
    epochs: AtomicU64,
}

/// A part's blocks (the one in use and, once renewed ahead, the next), oldest first.
struct Held {
    part: String,
    blocks: Vec<HeldBlock>,
    /// A request is taking a block for this part; the sender tells waiters when it is done.
    fetching: bool,
    ready: tokio::sync::watch::Sender<()>,
    /// Downloads the next take asks for, and when the last block was taken (see
    /// [`next_block_ask`]).
    ask: u64,
    taken: Option<Instant>,
}

impl Held {
    /// The next take's ask: larger while blocks go fast, smaller when they go slow.
    fn next_ask(&mut self, now: Instant) -> u64 {
        if let Some(taken) = self.taken {
            self.ask = next_block_ask(self.ask, now.duration_since(taken));
        }
        self.ask
    }

    /// The entry of `draw`'s part, made (no block, not fetching) if there is none; `true` when
    /// it was made now.
    fn of<'t>(
        table: &'t mut HashMap<(LinkId, u64), Vec<Held>>,
        draw: &Draw,
    ) -> (&'t mut Held, bool) {
        let held = table.entry((draw.id, draw.generation)).or_default();
        match held.iter().position(|h| h.part == draw.part) {
            Some(i) => (&mut held[i], false),
            None => {
                held.push(Held {
                    part: draw.part.clone(),
                    blocks: Vec::new(),
                    fetching: false,
                    ready: tokio::sync::watch::Sender::new(()),
                    ask: BLOCK_DOWNLOADS,
                    taken: None,
                });
                let last = held.len() - 1;
                (&mut held[last], true)
            }
        }
    }
}

struct HeldBlock {
    block: Block,
    epoch: u64,
    /// The link as the request that took the block loaded it.
    link: Arc<Link>,
    /// The link's count when the block was taken (all its downloads counted).
    used: u64,
    last: Instant,
}

impl HeldBlock {
    /// Whether the block serves a request that loaded `link`: the copy the block was taken with,
    /// or a later one equal to it (the cache entry was renewed and nothing changed). A change to
    /// the link (revoked, edited, a new generation) ends the block for every request.
    fn usable(&mut self, link: &Arc<Link>) -> bool {
        if Arc::ptr_eq(&self.link, link) {
            return true;
        }
        if *self.link == **link {
            self.link = link.clone();
            return true;
        }
        false
    }
}

impl Blocks {
    fn serve(&self, link: &Arc<Link>, draw: &Draw, bound: Option<u64>) -> Local {
        let now = Instant::now();
        let mut table = self.table.lock();
        let (h, new) = Held::of(&mut table, draw);
        if new {
            h.fetching = true;
            return Local::Fetch(h.ask);
        }
        let mut served = None;
        let mut left = 0;
        for l in h.blocks.iter_mut() {
            if bound.is_some_and(|e| e != l.epoch) || !l.usable(link) {
                continue;
            }
            if served.is_none() {
                if let Some(counted) = l.block.draw(&draw.ask) {
                    l.last = now;
                    served = Some((
                        counted,
                        l.used.saturating_sub(l.block.slots) + l.block.handed,
                        l.epoch,
                    ));
                }
            }
            left += l.block.slots - l.block.handed;
        }
        if let Some((counted, used, epoch)) = served {
            // The next block is taken once half of the last one is handed out, and only while no
            // other waits: a part holds at most two blocks.
            let renew = if !h.fetching
                && h.blocks.len() == 1
                && h.blocks.iter().all(|l| left * 2 <= l.block.slots)
            {
                h.fetching = true;
                Some(h.next_ask(now))
            } else {
                None
            };
            return Local::Served {
                counted,
                used,
                epoch,
                renew,
            };
        }
        // A response that drew from one block never draws from another.
        if bound.is_some() {
            return Local::Store;
        }
        if h.fetching {
            return Local::Wait(h.ready.subscribe());
        }
        h.fetching = true;
        Local::Fetch(h.next_ask(now))
    }

    /// Puts a block the store granted in place; returns one it retires, to give back.
    fn install(&self, link: &Arc<Link>, draw: &Draw, slots: u64, used: u64) -> Option<Refund> {
        let now = Instant::now();
        let epoch = self.epochs.fetch_add(1, Ordering::Relaxed) + 1;
        let mut table = self.table.lock();
        let (h, _) = Held::of(&mut table, draw);
        h.fetching = false;
        h.taken = Some(now);
        // Blocks that can serve nobody any more (another copy of the link, or all handed out)
        // and, past two, the oldest go back.
        let mut out = None;
        let mut retire = |l: HeldBlock| {
            let unused = l.block.unused();
            if unused > 0 {
                let r = give_back(draw.id, draw.generation, &h.part, unused);
                match &mut out {
                    None => out = Some(r),
                    Some(o) => o.bytes += r.bytes,
                }
            }
        };
        for mut l in std::mem::take(&mut h.blocks) {
            if l.usable(link) && l.block.handed < l.block.slots {
                h.blocks.push(l);
            } else {
                retire(l);
            }
        }
        if h.blocks.len() >= 2 {
            let oldest = h.blocks.remove(0);
            retire(oldest);
        }
        h.blocks.push(HeldBlock {
            block: Block::new(slots, draw.ask.size),
            epoch,
            link: link.clone(),
            used,
            last: now,
        });
        h.ready.send_replace(());
        out
    }

    /// The block taken for `draw` did not come (refused or failed): waiters go on. When the
    /// store said the link changed (`stale`), the part's blocks end and what they did not hand
    /// out is returned.
    fn fetched(&self, draw: &Draw, stale: bool) -> Option<Refund> {
        let mut table = self.table.lock();
        let key = (draw.id, draw.generation);
        let mut out: Option<Refund> = None;
        if let Some(held) = table.get_mut(&key) {
            held.retain_mut(|h| {
                if h.part == draw.part {
                    h.fetching = false;
                    h.ready.send_replace(());
                    if stale {
                        let unused: u64 = h.blocks.drain(..).map(|l| l.block.unused()).sum();
                        if unused > 0 {
                            out = Some(give_back(draw.id, draw.generation, &h.part, unused));
                        }
                    }
                }
                !h.blocks.is_empty() || h.fetching
            });
            if held.is_empty() {
                table.remove(&key);
            }
        }
        out
    }

    /// Gives back `bytes` a response drew from block `epoch` and did not send; `false` when that
    /// block went back already (then they are the store's).
    fn refund(&self, draw: &Draw, epoch: u64, bytes: u64) -> bool {
        let mut table = self.table.lock();
        let block = table
            .get_mut(&(draw.id, draw.generation))
            .and_then(|held| held.iter_mut().find(|h| h.part == draw.part))
            .and_then(|h| h.blocks.iter_mut().find(|l| l.epoch == epoch));
        match block {
            Some(l) => {
                l.block.refund(bytes);
                true
            }
            None => false,
        }
    }

    /// Downloads this instance's blocks of a link generation counted in the store and did not
    /// hand out yet: the count shown subtracts them.
    pub fn reserved(&self, id: LinkId, generation: u64) -> u64 {
        self.table.lock().get(&(id, generation)).map_or(0, |held| {
            held.iter()
                .flat_map(|h| h.blocks.iter())
                .map(|l| l.block.slots - l.block.handed)
                .sum()
        })
    }

    /// Takes out the blocks to give back: those idle for a while, or all of them (stopping).
    pub fn due(&self, all: bool) -> Vec<Refund> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut table = self.table.lock();
        table.retain(|(id, generation), held| {
            held.retain_mut(|h| {
                let part = &h.part;
                h.blocks.retain(|l| {
                    let keep = !all && now.duration_since(l.last) < BLOCK_IDLE;
                    let unused = l.block.unused();
                    if !keep && unused > 0 {
                        out.push(give_back(*id, *generation, part, unused));
                    }
                    keep
                });
                !h.blocks.is_empty() || h.fetching
            });
            !held.is_empty()
        });
        out
    }
}

/// The refund that returns what a block did not hand out.
fn give_back(id: LinkId, generation: u64, part: &str, unused: u64) -> Refund {
    Refund {
        id,
        generation,
        part: part.to_string(),
        bytes: unused,
        own: 0,
        write: WriteId::new(),
        take: false,
    }
}

/// The refund of a block take whose answer was lost (see [`Refund::take`]).
fn lost_take(draw: &Draw, take: WriteId) -> Refund {
    Refund {
        id: draw.id,
        generation: draw.generation,
        part: draw.part.clone(),
        bytes: 0,
        own: 0,
        write: take,
        take: true,
    }
}

fn store_failed(e: StoreError) -> Box<pingora::Error> {
    tracing::error!(error = %e, "link store failed while counting");
    pingora::Error::explain(
        pingora::ErrorType::HTTPStatus(503),
        "the link store failed while counting",
    )
}

impl Allowance for Option<Metered> {
    async fn begin(&mut self, length: Option<u64>, size: Option<u64>) -> pingora::Result<bool> {
        let Some(m) = self else { return Ok(true) };
        let go_on = match m.meter.begin(length, size) {
            None => true,
            Some(ask) => m.ask(ask).await.map_err(store_failed)?.1,
        };
        if go_on {
            m.streaming();
        }
        Ok(go_on)
    }

    async fn allow(&mut self, n: usize) -> pingora::Result<usize> {
        let Some(m) = self else { return Ok(n) };
        if let Some(ask) = m.meter.before_write(n as u64) {
            m.ask(ask).await.map_err(store_failed)?;
        }
        Ok(m.meter.covered(n as u64) as usize)
    }

    fn wrote(&mut self, n: usize) {
        if let Some(m) = self {
            m.meter.wrote(n as u64);
        }
    }
}
