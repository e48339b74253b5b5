//! `application/x-www-form-urlencoded`: form bodies and query strings.

/// One name or value: `+` is a space, `%XX` a byte; `None` when the bytes are not UTF-8.
pub fn decode(component: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&component.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// The `name=value` pairs of `text`, in order, empty pairs skipped (a pair without `=` has an
/// empty value); a pair whose name or value is not UTF-8 once decoded is `None`.
pub fn pairs(text: &str) -> impl Iterator<Item = Option<(String, String)>> + '_ {
    text.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        Some((decode(k)?, decode(v)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_a_browser_encodes() {
        assert_eq!(decode("a+b%2Bc%C3%A9").as_deref(), Some("a b+cé"));
        assert_eq!(decode("%FF"), None, "not UTF-8");
        assert_eq!(
            decode("%zz").as_deref(),
            Some("%zz"),
            "a bad escape stays as is"
        );
        let got: Vec<_> = pairs("a=1&&b&c=%20").collect();
        assert_eq!(
            got,
            vec![
                Some(("a".into(), "1".into())),
                Some(("b".into(), String::new())),
                Some(("c".into(), " ".into())),
            ]
        );
        assert_eq!(pairs("x=%FF").next(), Some(None));
    }
}
