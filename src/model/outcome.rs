//! How a recipient's request ended: the access log's `outcome=`, the requests metric's label and
//! an aborted download's `reason`. One closed set, so a new way to end is a compile error until
//! every place that reports outcomes knows it.

macro_rules! outcomes {
    ($($variant:ident => $name:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Outcome {
            $($variant,)*
        }

        impl Outcome {
            /// Every outcome, in declaration order (`Outcome as usize` indexes it).
            pub const ALL: &'static [Outcome] = &[$(Outcome::$variant,)*];

            /// The name logs and metrics use.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Outcome::$variant => $name,)*
                }
            }
        }
    };
}

outcomes! {
    // The document went out (or, for `Aborted`, began to and did not finish).
    Served => "served",
    Aborted => "aborted",
    Prefetch => "prefetch",
    Uploaded => "uploaded",
    UploadRefused => "upload_refused",
    // A recipient's page (password, device check, landing page) or a listing.
    Page => "page",
    Listing => "listing",
    // Refused before the link was known to be good: the uniform 404 (or 400/405).
    Malformed => "malformed",
    BadToken => "bad_token",
    BadLegacyLink => "bad_legacy_link",
    UnknownLink => "unknown_link",
    Expired => "expired",
    Deactivated => "deactivated",
    Cancelled => "cancelled",
    Method => "method",
    BadRequest => "bad_request",
    NoStore => "no_store",
    NoDocument => "no_document",
    NotGranted => "not_granted",
    // Counting said no: nothing left before the head, or the allowance ran out mid-body.
    Exhausted => "exhausted",
    LimitReached => "limit_reached",
    // Something failed: the link state, the document store, the client.
    StoreError => "store_error",
    OriginNotFound => "origin_not_found",
    DocumentChanged => "document_changed",
    DocumentMissing => "document_missing",
    OriginError => "origin_error",
    OriginTimeout => "origin_timeout",
    OriginDown => "origin_down",
    ClientGone => "client_gone",
    Error => "error",
    // The gateway's own renditions (`src/render/`): the pool was full, the document could not
    // be rendered, or the render ran past its time or memory limit.
    RenderBusy => "render_busy",
    RenderRefused => "render_refused",
    RenderLimit => "render_limit",
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_all_indexes_by_discriminant() {
        let mut names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i);
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Outcome::ALL.len());
    }
}
