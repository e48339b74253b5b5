//! The disk cache of renders: one file per rendition, named by a digest of the object, its
//! version and the rendition's parameters; written to a temporary file and renamed (a reader
//! never sees half a file); each file carries its length and digest, so a short or corrupt one is
//! a miss; past the size cap the least recently used files go first (by modification time, which
//! a hit refreshes).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 4] = b"LGR1";
const HEADER: usize = 4 + 8 + 32;

pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
}

/// The cache key of a rendition: never derived from anything the request chose but the
/// rendition's (clamped) parameters.
pub fn key(store: &str, object: &str, version: &str, params: &str) -> String {
    let mut h = Sha256::new();
    for part in [store, object, version, params] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    crate::model::hex::encode(&h.finalize())
}

impl Cache {
    pub fn new(dir: PathBuf, max_bytes: u64) -> Cache {
        Cache { dir, max_bytes }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.bin"))
    }

    /// The cached bytes, if a whole, intact file is there.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        if self.max_bytes == 0 {
            return None;
        }
        let path = self.path(key);
        tokio::task::spawn_blocking(move || {
            let data = std::fs::read(&path).ok()?;
            let body = unwrap(&data)?;
            if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                let _ = f.set_modified(SystemTime::now());
            }
            Some(body.to_vec())
        })
        .await
        .ok()
        .flatten()
    }

    /// Stores `bytes` under `key` (best effort: a failure only costs a later render).
    pub async fn put(&self, key: &str, bytes: &[u8]) {
        if self.max_bytes == 0 || (bytes.len() + HEADER) as u64 > self.max_bytes {
            return;
        }
        let (dir, path, max) = (self.dir.clone(), self.path(key), self.max_bytes);
        let data = wrap(bytes);
        let tmp = dir.join(format!(".{key}.{:016x}.tmp", rand::random::<u64>()));
        let done = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&tmp, &data)?;
            if let Err(e) = std::fs::rename(&tmp, &path) {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            evict(&dir, max)
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "render cache write failed"),
            Err(e) => tracing::warn!(error = %e, "render cache write failed"),
        }
    }
}

fn wrap(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + bytes.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(&Sha256::digest(bytes));
    out.extend_from_slice(bytes);
    out
}

/// The body of a cache file, or `None` when it is short, long or corrupt.
pub fn unwrap(data: &[u8]) -> Option<&[u8]> {
    if data.len() < HEADER || &data[..4] != MAGIC {
        return None;
    }
    let len = u64::from_be_bytes(data[4..12].try_into().ok()?);
    let body = &data[HEADER..];
    if body.len() as u64 != len || Sha256::digest(body).as_slice() != &data[12..44] {
        return None;
    }
    Some(body)
}

/// Removes the least recently used files until the folder holds at most `max` bytes.
fn evict(dir: &Path, max: u64) -> std::io::Result<()> {
    let mut files = Vec::new();
    let mut total = 0u64;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_string_lossy().ends_with(".bin") {
            continue;
        }
        let meta = entry.metadata()?;
        total += meta.len();
        files.push((
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
            entry.path(),
        ));
    }
    if total <= max {
        return Ok(());
    }
    files.sort();
    for (_, len, path) in files {
        if total <= max {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total = total.saturating_sub(len);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_or_corrupt_file_is_a_miss() {
        let data = wrap(b"page image");
        assert_eq!(unwrap(&data), Some(&b"page image"[..]));
        assert_eq!(unwrap(&data[..data.len() - 1]), None);
        let mut bad = data.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(unwrap(&bad), None);
        assert_eq!(unwrap(b"LGR1"), None);
    }

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(key("s", "ab", "c", "p"), key("s", "a", "bc", "p"));
        assert_eq!(key("s", "a", "v", "p").len(), 64);
    }

    #[tokio::test]
    async fn eviction_keeps_the_folder_under_its_cap() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = Cache::new(dir.path().to_path_buf(), 3000);
        for i in 0..10 {
            cache.put(&format!("k{i}"), &[i as u8; 1000]).await;
        }
        let total: u64 = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        assert!(total <= 3000, "{total}");
        assert_eq!(cache.get("k9").await, Some(vec![9u8; 1000]));
    }
}
