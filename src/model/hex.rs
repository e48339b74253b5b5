//! Lower-case hexadecimal: link ids, audit hashes, keyed hashes and device ids, written without a
//! formatting call per byte.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes the hex of `bytes` into the front of `out` (which must hold twice as many bytes).
pub fn write(bytes: &[u8], out: &mut [u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

/// The hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_like_format() {
        let bytes: Vec<u8> = (0..=255).collect();
        let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(super::encode(&bytes), expected);
        let mut out = vec![0u8; 512];
        super::write(&bytes, &mut out);
        assert_eq!(out, expected.as_bytes());
    }
}
