//! How much of a document to read at a time: chunks sized to the recipient's pace.
//!
//! Shared by the stores the gateway streams itself (folder stores read the file, HTTP and S3
//! stores relay the origin's body), so that a slow recipient holds little memory and a fast one
//! gets large reads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Bytes read per chunk, at most; a stream holds at most two (folder stores: the one being sent and the next).
pub const CHUNK: usize = 512 * 1024;
/// Bytes read per chunk, at least.
pub const MIN_CHUNK: usize = 8 * 1024;
/// A stream starts with small chunks for this long, whoever reads it.
const PROBE: Duration = Duration::from_millis(50);

/// What the chunks of all streams together may take before each stream's chunk is held below
/// [`CHUNK`]: with 1,000 downloads at once each gets [`MIN_CHUNK`], with 16 or fewer each may
/// grow to the largest.
const BUDGET: usize = 8 << 20;

/// Streams being read now (see [`Streaming`]).
static STREAMS: AtomicUsize = AtomicUsize::new(0);

/// Counts a stream as being read while it lives.
pub struct Streaming(());

impl Streaming {
    pub fn start() -> Streaming {
        STREAMS.fetch_add(1, Ordering::Relaxed);
        Streaming(())
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        STREAMS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The next chunk's size for a stream that has sent `sent` bytes in `elapsed`, given how many
/// streams are being read now (see [`chunk_within`]).
pub fn chunk_for(sent: u64, elapsed: Duration) -> usize {
    chunk_within(sent, elapsed, STREAMS.load(Ordering::Relaxed))
}

/// About what the stream's client took in 10 ms, between 8 and 512 KiB in steps of 8 KiB, and
/// no more than its share of [`BUDGET`] among `streams`.
///
/// A stream's memory is its chunks, and a client that reads slowly holds them as long as it
/// takes to drain them: with 128 KiB chunks 1,000 slow downloads held ~400 MiB, with 16 KiB
/// ones a single 1 GiB download went at a fraction of the speed. A fast client gets big chunks
/// once the first 50 ms have shown its pace; a slow one keeps small ones once its socket buffers
/// are full. While they fill, a slow client looks fast (the kernel takes megabytes at once), so
/// the pace alone let 1,000 downloads starting together all grow to 128 KiB (the peak was ~75 MiB
/// of chunks, heaptrack); the share of the budget bounds that peak.
pub fn chunk_within(sent: u64, elapsed: Duration, streams: usize) -> usize {
    let share = round_down(BUDGET / streams.max(1)).clamp(MIN_CHUNK, CHUNK);
    if elapsed < PROBE {
        return MIN_CHUNK;
    }
    let per_10ms = sent as f64 / elapsed.as_secs_f64() / 100.0;
    round_down(per_10ms as usize).clamp(MIN_CHUNK, share)
}

/// Whether a stream that has sent `sent` bytes in `elapsed` is better held in the kernel than
/// in chunks of the gateway's (see `super::splice`): when more streams run than [`BUDGET`]
/// gives the largest chunk to (memory is what matters then, and a stream starting among many is
/// held in the kernel from its first chunk), or when the stream is a slow one, its pace known
/// and asking for chunks of at most 64 KiB (about 6.5 MB/s; slow streams are the ones that
/// last). A few fast streams are copied: that is faster.
pub fn prefer_kernel(sent: u64, elapsed: Duration) -> bool {
    prefer_kernel_within(sent, elapsed, STREAMS.load(Ordering::Relaxed))
}

/// [`prefer_kernel`] with `streams` running.
pub fn prefer_kernel_within(sent: u64, elapsed: Duration, streams: usize) -> bool {
    const SLOW: usize = 64 * 1024;
    streams > BUDGET / CHUNK || (elapsed >= PROBE && chunk_within(sent, elapsed, streams) <= SLOW)
}

/// Sizes are multiples of [`MIN_CHUNK`], so that a stream's buffer is not reallocated for every
/// small change of pace.
fn round_down(size: usize) -> usize {
    size / MIN_CHUNK * MIN_CHUNK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_the_pace_of_the_client() {
        let ms = Duration::from_millis;
        assert_eq!(
            chunk_within(50 << 20, ms(10), 1),
            MIN_CHUNK,
            "small until the probe is over"
        );
        assert_eq!(
            chunk_within(500 << 20, ms(500), 1),
            CHUNK,
            "a fast client: the largest"
        );
        assert_eq!(
            chunk_within(300 << 10, ms(2_000), 1),
            MIN_CHUNK,
            "a slow client: the smallest"
        );
        assert_eq!(
            chunk_within(4 << 20, ms(1_000), 1),
            40 * 1024,
            "in between: 10 ms of its pace (41,943 B), in 8 KiB steps"
        );
    }

    #[test]
    fn slow_streams_and_crowds_are_held_in_the_kernel() {
        let ms = Duration::from_millis;
        let alone = |sent, elapsed| prefer_kernel_within(sent, elapsed, 1);
        assert!(!alone(0, ms(10)), "not during the probe");
        assert!(alone(64 << 10, ms(1_000)), "64 KiB/s");
        assert!(alone(6 << 20, ms(1_000)), "6 MiB/s");
        assert!(!alone(100 << 20, ms(1_000)), "100 MiB/s");
        assert!(
            !prefer_kernel_within(0, ms(10), 16),
            "16 streams all get the largest chunks"
        );
        assert!(
            prefer_kernel_within(0, ms(10), 17),
            "one more: from the first chunk"
        );
        assert!(prefer_kernel_within(100 << 20, ms(1_000), 1000));
    }

    #[test]
    fn many_streams_share_a_budget() {
        let fast = |streams| chunk_within(500 << 20, Duration::from_millis(500), streams);
        assert_eq!(
            fast(16),
            CHUNK,
            "up to 16 streams may all have the largest chunks"
        );
        assert_eq!(fast(64), 128 * 1024);
        assert_eq!(fast(1_000), MIN_CHUNK, "1,000 at once: the smallest");
        assert_eq!(fast(100_000), MIN_CHUNK, "never below the smallest");
    }
}
