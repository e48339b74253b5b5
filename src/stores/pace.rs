//! How much of a document to read at a time: chunks sized to the recipient's pace.
//!
//! Shared by the stores the gateway streams itself (folder stores read the file, HTTP and S3
//! stores relay the origin's body), so that a slow recipient holds little memory and a fast one
//! gets large reads.

use std::time::Duration;

/// Bytes read per chunk, at most; a stream holds at most two (folder stores: the one being sent and the next).
pub const CHUNK: usize = 128 * 1024;
/// Bytes read per chunk, at least.
pub const MIN_CHUNK: usize = 16 * 1024;
/// A stream starts with small chunks for this long, whoever reads it.
const PROBE: Duration = Duration::from_millis(50);

/// The next chunk's size for a stream that has sent `sent` bytes in `elapsed`: about what its
/// client took in 10 ms, between 16 and 128 KiB.
///
/// A stream's memory is its two chunks, and a client that reads slowly holds them as long as it
/// takes to drain them: with 128 KiB chunks 1,000 slow downloads held ~400 MiB, with 16 KiB
/// ones a single 1 GiB download went at a fraction of the speed. A fast client gets big chunks
/// once the first 50 ms have shown its pace; a slow one (whose socket buffers fill within that
/// time) keeps small ones.
pub fn chunk_for(sent: u64, elapsed: Duration) -> usize {
    if elapsed < PROBE {
        return MIN_CHUNK;
    }
    let per_10ms = sent as f64 / elapsed.as_secs_f64() / 100.0;
    (per_10ms as usize).clamp(MIN_CHUNK, CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_the_pace_of_the_client() {
        let ms = Duration::from_millis;
        assert_eq!(chunk_for(50 << 20, ms(10)), MIN_CHUNK, "small until the probe is over");
        assert_eq!(chunk_for(500 << 20, ms(500)), CHUNK, "a fast client: the largest");
        assert_eq!(chunk_for(300 << 10, ms(2_000)), MIN_CHUNK, "a slow client: the smallest");
        assert_eq!(chunk_for(4 << 20, ms(1_000)), 41_943, "in between: 10 ms of its pace");
    }

}
