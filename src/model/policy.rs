//! The operator's link policy: rules every created or changed link must follow.
//!
//! A request that breaks a rule is refused (422) with a message naming the rule as it is spelled
//! in the config (`policy.max_expiry_days`, …), so an integrator can show it to its user.

use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use crate::model::link::{Right, UploadSpec};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Every link must have a password.
    #[serde(default)]
    pub require_password: bool,
    /// Shortest password accepted (characters).
    #[serde(default)]
    pub min_password_length: Option<usize>,
    /// Every link must expire.
    #[serde(default)]
    pub require_expiry: bool,
    /// Latest expiry accepted, in days from now.
    #[serde(default)]
    pub max_expiry_days: Option<u32>,
    /// Every link must have a download limit.
    #[serde(default)]
    pub require_download_limit: bool,
    /// Highest download limit accepted.
    #[serde(default)]
    pub max_downloads: Option<u64>,
    /// Rights a link may grant; all known rights when absent.
    #[serde(default)]
    pub allowed_rights: Option<Vec<String>>,
    /// Largest file an upload link accepts, in bytes (default 2 GiB); a link may set less.
    #[serde(default)]
    pub upload_max_bytes: Option<u64>,
    /// Media types an upload link accepts (`application/pdf`, `image/*`); any when absent. A
    /// file's type is the one its name's extension gives. A link may narrow the list.
    #[serde(default)]
    pub upload_allowed_types: Option<Vec<String>>,
}

/// The largest upload when neither the policy nor the link says.
pub const DEFAULT_UPLOAD_MAX_BYTES: u64 = 2 << 30;

/// Whether `media_type` (or a pattern like `image/*`) falls within one of `patterns`.
pub fn type_matches(patterns: &[String], media_type: &str) -> bool {
    let media_type = media_type.to_ascii_lowercase();
    patterns.iter().any(|p| {
        let p = p.to_ascii_lowercase();
        p == "*/*"
            || p == media_type
            || p.strip_suffix('*')
                .is_some_and(|prefix| prefix.ends_with('/') && media_type.starts_with(prefix))
    })
}

/// Whether `pattern` (`type/subtype`, `type/*` or `*/*`) is a well-formed media-type pattern.
pub fn valid_type_pattern(pattern: &str) -> bool {
    let Some((top, sub)) = pattern.split_once('/') else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    (top == "*" && sub == "*") || (token(top) && (sub == "*" || token(sub)))
}

/// A broken rule: the field it concerns and a message naming the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: &'static str,
    pub message: String,
}

fn broken(field: &'static str, rule: &str, message: impl std::fmt::Display) -> Violation {
    Violation {
        field,
        message: format!("breaks policy `policy.{rule}`: {message}"),
    }
}

/// What a link would look like after a create or change, as the policy sees it.
pub struct Proposed<'a> {
    pub password: Option<&'a str>,
    pub has_password: bool,
    pub expires_at: Option<OffsetDateTime>,
    pub max_downloads: Option<u64>,
    pub rights: &'a [Right],
    pub upload: Option<&'a UploadSpec>,
}

impl Policy {
    /// Checks the rules that the config text itself could get wrong.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if let Some(rights) = &self.allowed_rights {
            for r in rights {
                if Right::parse(r).is_none() && r != "download:*" {
                    return Err((
                        "policy.allowed_rights".into(),
                        format!("unknown right `{r}`"),
                    ));
                }
            }
        }
        if self.max_expiry_days == Some(0) {
            return Err(("policy.max_expiry_days".into(), "must be at least 1".into()));
        }
        if self.max_downloads == Some(0) {
            return Err(("policy.max_downloads".into(), "must be at least 1".into()));
        }
        if self.upload_max_bytes == Some(0) {
            return Err((
                "policy.upload_max_bytes".into(),
                "must be at least 1".into(),
            ));
        }
        for t in self.upload_allowed_types.iter().flatten() {
            if !valid_type_pattern(t) {
                return Err((
                    "policy.upload_allowed_types".into(),
                    format!("`{t}` is not a media type like `application/pdf` or `image/*`"),
                ));
            }
        }
        Ok(())
    }

    pub fn check(&self, p: &Proposed<'_>, now: OffsetDateTime) -> Result<(), Violation> {
        if self.require_password && !p.has_password {
            return Err(broken(
                "password",
                "require_password",
                "a password is required",
            ));
        }
        if let (Some(min), Some(pw)) = (self.min_password_length, p.password) {
            if pw.chars().count() < min {
                return Err(broken(
                    "password",
                    "min_password_length",
                    format!("the password must have at least {min} characters"),
                ));
            }
        }
        if self.require_expiry && p.expires_at.is_none() {
            return Err(broken(
                "expires_at",
                "require_expiry",
                "an expiry is required",
            ));
        }
        if let (Some(days), Some(at)) = (self.max_expiry_days, p.expires_at) {
            if at > now + Duration::days(days.into()) {
                return Err(broken(
                    "expires_at",
                    "max_expiry_days",
                    format!("the expiry must be within {days} days"),
                ));
            }
        }
        if self.require_download_limit && p.max_downloads.is_none() {
            return Err(broken(
                "max_downloads",
                "require_download_limit",
                "a download limit is required",
            ));
        }
        if let Some(max) = self.max_downloads {
            match p.max_downloads {
                Some(n) if n > max => {
                    return Err(broken(
                        "max_downloads",
                        "max_downloads",
                        format!("at most {max} downloads may be allowed"),
                    ))
                }
                None if self.require_download_limit => {}
                None => {
                    return Err(broken(
                        "max_downloads",
                        "max_downloads",
                        format!("a limit of at most {max} downloads is required"),
                    ))
                }
                _ => {}
            }
        }
        if let Some(allowed) = &self.allowed_rights {
            for r in p.rights {
                // `download:*` in the policy allows every rendition.
                let name = r.to_string();
                let any_rendition =
                    matches!(r, Right::Rendition(_)) && allowed.iter().any(|a| a == "download:*");
                if !allowed.contains(&name) && !any_rendition {
                    return Err(broken(
                        "rights",
                        "allowed_rights",
                        format!("the right `{name}` may not be granted"),
                    ));
                }
            }
        }
        if let Some(upload) = p.upload {
            if let (Some(max), Some(asked)) = (self.upload_max_bytes, upload.max_bytes) {
                if asked > max {
                    return Err(broken(
                        "upload.max_bytes",
                        "upload_max_bytes",
                        format!("uploads may be at most {max} bytes"),
                    ));
                }
            }
            if let (Some(allowed), Some(asked)) =
                (&self.upload_allowed_types, &upload.allowed_types)
            {
                for t in asked {
                    if !type_matches(allowed, t) {
                        return Err(broken(
                            "upload.allowed_types",
                            "upload_allowed_types",
                            format!("the type `{t}` may not be accepted"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// An admin API caller limited to links created by some identities.
#[derive(Clone)]
pub struct RestrictedCaller {
    pub name: String,
    pub token: String,
    pub created_by: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposed(expires_at: Option<OffsetDateTime>, max: Option<u64>) -> Proposed<'static> {
        Proposed {
            password: None,
            has_password: false,
            expires_at,
            max_downloads: max,
            rights: &[Right::Download],
            upload: None,
        }
    }

    #[test]
    fn each_rule_is_named() {
        let now = OffsetDateTime::now_utc();
        let p = Policy {
            require_expiry: true,
            ..Policy::default()
        };
        assert!(p
            .check(&proposed(None, None), now)
            .unwrap_err()
            .message
            .contains("policy.require_expiry"));
        let p = Policy {
            max_expiry_days: Some(7),
            ..Policy::default()
        };
        assert!(p
            .check(&proposed(Some(now + Duration::days(8)), None), now)
            .unwrap_err()
            .message
            .contains("policy.max_expiry_days"));
        assert!(p
            .check(&proposed(Some(now + Duration::days(6)), None), now)
            .is_ok());
        let p = Policy {
            max_downloads: Some(5),
            ..Policy::default()
        };
        assert_eq!(
            p.check(&proposed(None, Some(6)), now).unwrap_err().field,
            "max_downloads"
        );
        assert!(
            p.check(&proposed(None, None), now).is_err(),
            "no limit is above any maximum"
        );
        let p = Policy {
            allowed_rights: Some(vec!["view".into()]),
            ..Policy::default()
        };
        assert!(p
            .check(&proposed(None, None), now)
            .unwrap_err()
            .message
            .contains("policy.allowed_rights"));
        let p = Policy {
            require_password: true,
            min_password_length: Some(8),
            ..Policy::default()
        };
        assert!(p
            .check(&proposed(None, None), now)
            .unwrap_err()
            .message
            .contains("policy.require_password"));
        let short = Proposed {
            password: Some("short"),
            has_password: true,
            ..proposed(None, None)
        };
        assert!(p
            .check(&short, now)
            .unwrap_err()
            .message
            .contains("policy.min_password_length"));
    }
}
