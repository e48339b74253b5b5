//! Count: a limited link's response draws every byte it sends from its document's account in the
//! link state before writing it (the rules are [`crate::model::counting`]). [`Metered`] is the
//! response's side of that: the first draw at admission (the one round trip on the request
//! path), more while the body streams, and what goes back when it ends.

use std::sync::Arc;

use crate::docstore::Allowance;
use crate::model::counting::{Ask, Drawn, Meter};
use crate::model::link::LinkId;
use crate::state::queues::Refund;
use crate::state::{Draw, LinkStore, StoreError, WriteId};

/// A response of a limited link, metered against its part's account in the link store.
pub struct Metered {
    store: Arc<dyn LinkStore>,
    draw: Draw,
    pub meter: Meter,
    /// The link's download count as the last granted draw saw it (the link is used up when it
    /// reached the limit).
    pub used: u64,
}

impl Metered {
    /// Admits a GET that expects `expected` bytes of a part whose size the link may know: the
    /// one store round trip on the request path.
    pub async fn admit(
        store: Arc<dyn LinkStore>,
        id: LinkId,
        generation: u64,
        max: u64,
        part: String,
        expected: Option<u64>,
        size: Option<u64>,
    ) -> Result<(Metered, Drawn), StoreError> {
        let (meter, ask) = Meter::admission(expected, size);
        let draw = Draw {
            id,
            generation,
            max,
            part,
            ask,
        };
        let mut metered = Metered {
            store,
            draw,
            meter,
            used: 0,
        };
        let (got, go_on) = metered.ask(ask).await?;
        Ok((metered, if go_on { got } else { Drawn::Exhausted }))
    }

    /// Makes a draw; `Ok(false)` when the response may not go on.
    async fn ask(&mut self, ask: Ask) -> Result<(Drawn, bool), StoreError> {
        self.draw.ask = ask;
        let got = self.store.draw(&self.draw).await?;
        if let Drawn::Granted { used, .. } = got {
            self.used = used;
        }
        let go_on = self.meter.drawn(&ask, got);
        Ok((got, go_on))
    }

    /// The head is about to be written: later draws may give part of what they ask.
    fn streaming(&mut self) {
        self.meter.streaming = true;
    }

    /// What goes back to the account now that the response is over.
    pub fn refund(&self) -> Option<Refund> {
        let (bytes, own) = self.meter.settle()?;
        Some(Refund {
            id: self.draw.id,
            generation: self.draw.generation,
            part: self.draw.part.clone(),
            bytes,
            own,
            write: WriteId::new(),
        })
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
