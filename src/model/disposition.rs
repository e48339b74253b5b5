//! `Content-Disposition` for a display name: an ASCII fallback plus RFC 5987 `filename*`.
//!
//! The result is always a valid header value: names are sanitised first, the fallback keeps only
//! printable ASCII without quotes or backslashes, and `filename*` percent-encodes everything else.

use std::fmt::Write;

use crate::model::link::sanitize_filename;

/// Characters RFC 5987 `attr-char` allows unencoded.
fn is_attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b)
}

/// Builds the header value, e.g. `attachment; filename="a.pdf"` or with `filename*=UTF-8''…`.
pub fn content_disposition(inline: bool, name: &str) -> String {
    let name = sanitize_filename(name);
    let kind = if inline { "inline" } else { "attachment" };
    let mut out = String::with_capacity(32 + name.len() * 3);
    out.push_str(kind);
    out.push_str("; filename=\"");
    let ascii = name.is_ascii();
    for c in name.chars() {
        match c {
            ' '..='~' if c != '"' && c != '\\' && c != '%' => out.push(c),
            _ => out.push('_'),
        }
    }
    out.push('"');
    if !ascii || name.contains(['%', '"', '\\']) {
        out.push_str("; filename*=UTF-8''");
        for b in name.bytes() {
            if is_attr_char(b) {
                out.push(b as char);
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_name() {
        assert_eq!(
            content_disposition(false, "report.pdf"),
            "attachment; filename=\"report.pdf\""
        );
        assert_eq!(
            content_disposition(true, "a b.txt"),
            "inline; filename=\"a b.txt\""
        );
    }

    #[test]
    fn non_ascii_name_gets_filename_star() {
        assert_eq!(
            content_disposition(false, "Überweisung €.pdf"),
            "attachment; filename=\"_berweisung _.pdf\"; filename*=UTF-8''%C3%9Cberweisung%20%E2%82%AC.pdf"
        );
    }

    #[test]
    fn hostile_names_cannot_inject() {
        for name in [
            "a\"; filename=evil.exe",
            "x\r\nSet-Cookie: a=b",
            "\0\x7f",
            "100%.txt",
            "a\\b",
        ] {
            let v = content_disposition(false, name);
            assert!(http::HeaderValue::from_str(&v).is_ok(), "{v}");
            assert_eq!(v.matches('"').count(), 2, "{v}");
            assert!(!v.contains('\r') && !v.contains('\n'));
        }
    }
}
