//! The recipient pages' languages: message catalogues (Fluent, one file per language, compiled
//! in), the language a request asks for (`Accept-Language`, English when none fits), and the
//! lookup that never fails: a message missing in a language falls back to English and is
//! recorded, so tests can prove every catalogue complete.

use std::cell::RefCell;
use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Lang {
    #[default]
    En,
    De,
    Fr,
}

const SOURCES: [(Lang, &str, &str); 3] = [
    (Lang::En, "en", include_str!("locales/en.ftl")),
    (Lang::De, "de", include_str!("locales/de.ftl")),
    (Lang::Fr, "fr", include_str!("locales/fr.ftl")),
];

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::De, Lang::Fr];

    /// The BCP 47 tag (`<html lang>`, `Content-Language`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
        }
    }

    fn index(self) -> usize {
        match self {
            Lang::En => 0,
            Lang::De => 1,
            Lang::Fr => 2,
        }
    }

    /// The language an `Accept-Language` value prefers among ours: highest q-value first (ties
    /// in the order given), a region ignored (`de-CH` is German), `q=0` never; English when
    /// nothing fits. Malformed entries are skipped.
    pub fn negotiate(accept: Option<&str>) -> Lang {
        let Some(accept) = accept else {
            return Lang::En;
        };
        let mut best: Option<(f32, usize, Lang)> = None;
        for (order, entry) in accept.split(',').take(32).enumerate() {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0f32;
            for p in parts {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            if !(q > 0.0 && q <= 1.0) {
                continue;
            }
            let primary = tag.split('-').next().unwrap_or("");
            let Some(lang) = Lang::ALL.into_iter().find(|l| l.code() == primary) else {
                continue;
            };
            let better = match best {
                None => true,
                Some((bq, border, _)) => q > bq || (q == bq && order < border),
            };
            if better {
                best = Some((q, order, lang));
            }
        }
        best.map(|(_, _, l)| l).unwrap_or(Lang::En)
    }

    /// The language of a request, from its `Accept-Language` only (never from the link, so a
    /// page never tells one link from another).
    pub fn of(headers: &http::HeaderMap) -> Lang {
        Lang::negotiate(
            headers
                .get(http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )
    }
}

static BUNDLES: LazyLock<Vec<FluentBundle<FluentResource>>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|(_, code, source)| {
            let resource = FluentResource::try_new(source.to_string()).unwrap_or_else(|(res, errors)| {
                tracing::error!(language = code, errors = ?errors, "message catalogue has syntax errors");
                res
            });
            let id: unic_langid::LanguageIdentifier = code.parse().unwrap_or_default();
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // Text goes into HTML (escaped by the caller), not into bidirectional UI.
            bundle.set_use_isolating(false);
            if let Err(errors) = bundle.add_resource(resource) {
                tracing::error!(language = code, errors = ?errors, "message catalogue has duplicate messages");
            }
            bundle
        })
        .collect()
});

thread_local! {
    /// What lookups on this thread found missing (message ids, arguments), for tests.
    static PROBLEMS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Takes what lookups on this thread found missing since the last call.
pub fn take_problems() -> Vec<String> {
    PROBLEMS.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

fn problem(text: String) {
    tracing::warn!(problem = %text, "message catalogue lookup");
    PROBLEMS.with(|p| p.borrow_mut().push(text));
}

fn lookup(lang: Lang, id: &str, args: &[(&str, FluentValue<'_>)]) -> Option<String> {
    let bundle = BUNDLES.get(lang.index())?;
    let message = bundle.get_message(id)?;
    let pattern = message.value()?;
    let mut fargs = FluentArgs::new();
    for (k, v) in args {
        fargs.set(*k, v.clone());
    }
    let mut errors = Vec::new();
    let text = bundle.format_pattern(pattern, Some(&fargs), &mut errors);
    for e in errors {
        problem(format!("{}: {id}: {e}", lang.code()));
    }
    Some(text.into_owned())
}

/// The text of message `id` in `lang` (plain text: escape it for HTML), with `args`; English
/// when `lang` lacks it, the id itself when English does too (both recorded as problems).
pub fn tr(lang: Lang, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
    if let Some(text) = lookup(lang, id, args) {
        return text;
    }
    problem(format!("{}: missing message {id}", lang.code()));
    if lang != Lang::En {
        if let Some(text) = lookup(Lang::En, id, args) {
            return text;
        }
    }
    id.to_string()
}

/// [`tr`] without arguments.
pub fn t(lang: Lang, id: &str) -> String {
    tr(lang, id, &[])
}

/// The message ids of a language's catalogue.
pub fn ids(lang: Lang) -> Vec<String> {
    let source = SOURCES[lang.index()].2;
    source
        .lines()
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
        .filter_map(|l| l.split_once('=').map(|(id, _)| id.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_q_values_and_falls_back_to_english() {
        assert_eq!(Lang::negotiate(None), Lang::En);
        assert_eq!(Lang::negotiate(Some("de-CH")), Lang::De);
        assert_eq!(Lang::negotiate(Some("fr-CA,fr;q=0.9,en;q=0.8")), Lang::Fr);
        assert_eq!(Lang::negotiate(Some("en;q=0.5, de;q=0.8")), Lang::De);
        assert_eq!(Lang::negotiate(Some("it, es;q=0.9")), Lang::En);
        assert_eq!(Lang::negotiate(Some("de;q=0, fr;q=0.1")), Lang::Fr);
        assert_eq!(Lang::negotiate(Some("*")), Lang::En);
        assert_eq!(Lang::negotiate(Some(";;;,q=,de;q=abc")), Lang::En);
    }

    #[test]
    fn every_catalogue_has_every_english_message() {
        for (lang, code, source) in SOURCES {
            assert!(
                FluentResource::try_new(source.to_string()).is_ok(),
                "{code} parses"
            );
            let ours = ids(lang);
            for id in ids(Lang::En) {
                assert!(ours.contains(&id), "{code} lacks {id}");
            }
            for id in &ours {
                assert!(ids(Lang::En).contains(id), "{code} has {id} that en lacks");
            }
        }
    }

    #[test]
    fn missing_messages_are_recorded_and_fall_back() {
        take_problems();
        assert_eq!(t(Lang::De, "no-such-message"), "no-such-message");
        assert!(!take_problems().is_empty());
    }
}
