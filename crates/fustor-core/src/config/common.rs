//! Value types shared by both daemons' schemas: logging and credentials.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// `logging: INFO` or `logging: {level, format, dir}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggingConfig {
    /// Upper-cased Python level name (`DEBUG`, `INFO`, `WARNING`, ...).
    pub level: String,
    pub format: Option<String>,
    pub dir: Option<PathBuf>,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "INFO".to_string(),
            format: None,
            dir: None,
        }
    }
}

impl LoggingConfig {
    /// Maps the Python level names onto `tracing`; `None` for names neither side knows, so the
    /// caller can report them instead of silently logging at the wrong level.
    pub fn tracing_level(&self) -> Option<tracing::Level> {
        Some(match self.level.as_str() {
            "TRACE" => tracing::Level::TRACE,
            "DEBUG" => tracing::Level::DEBUG,
            "INFO" => tracing::Level::INFO,
            "WARNING" | "WARN" => tracing::Level::WARN,
            "ERROR" | "CRITICAL" | "FATAL" => tracing::Level::ERROR,
            _ => return None,
        })
    }

    /// `Some(true)` for `format: json`, `Some(false)` for `text` or no format, `None` for
    /// anything else (a Python format string, which falls back to text).
    pub fn json_format(&self) -> Option<bool> {
        match self.format.as_deref().map(str::trim) {
            None | Some("") => Some(false),
            Some(f) if f.eq_ignore_ascii_case("text") => Some(false),
            Some(f) if f.eq_ignore_ascii_case("json") => Some(true),
            Some(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for LoggingConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LoggingConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a level name or a mapping {level, format, dir}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LoggingConfig, E> {
                Ok(LoggingConfig {
                    level: v.trim().to_ascii_uppercase(),
                    ..LoggingConfig::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<LoggingConfig, A::Error> {
                let mut out = LoggingConfig::default();
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        "level" => {
                            out.level = m.next_value::<String>()?.trim().to_ascii_uppercase()
                        }
                        "format" => out.format = m.next_value()?,
                        "dir" => out.dir = m.next_value()?,
                        _ => {
                            m.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

/// Source credential: `{key, user?}` or `{user, passwd?}`.
///
/// Extra keys are rejected (the reference forbids them so that a typo cannot silently turn an
/// API key into a user name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Credential {
    ApiKey {
        key: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
    Passwd {
        user: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        passwd: Option<String>,
    },
}

impl Credential {
    pub fn api_key(&self) -> Option<&str> {
        match self {
            Credential::ApiKey { key, .. } => Some(key),
            Credential::Passwd { .. } => None,
        }
    }
}

impl<'de> Deserialize<'de> for Credential {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CredentialVisitor {
            api_key_alias: false,
        })
    }
}

/// Sender credential: like [`Credential`], but `api_key` is accepted as a spelling of `key`
/// because the HTTP sender of the reference reads either.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SenderCredential(pub Credential);

impl SenderCredential {
    /// The value sent as `X-API-Key`.
    pub fn api_key(&self) -> Option<&str> {
        self.0.api_key()
    }
}

impl<'de> Deserialize<'de> for SenderCredential {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CredentialVisitor {
            api_key_alias: true,
        })
        .map(SenderCredential)
    }
}

struct CredentialVisitor {
    api_key_alias: bool,
}

impl<'de> Visitor<'de> for CredentialVisitor {
    type Value = Credential;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping {key, user?} or {user, passwd?}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Credential, A::Error> {
        let (mut key, mut user, mut passwd) = (None, None, None);
        while let Some(k) = m.next_key::<String>()? {
            match k.as_str() {
                "key" => key = Some(m.next_value::<String>()?),
                "api_key" if self.api_key_alias => key = Some(m.next_value::<String>()?),
                "user" => user = m.next_value::<Option<String>>()?,
                "passwd" => passwd = m.next_value::<Option<String>>()?,
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown credential key `{other}` (expected {{key, user?}} or {{user, passwd?}})"
                    )));
                }
            }
        }
        match (key, user, passwd) {
            (Some(_), _, Some(_)) => Err(de::Error::custom(
                "`passwd` cannot be combined with `key` (expected {key, user?} or {user, passwd?})",
            )),
            (Some(key), user, None) => Ok(Credential::ApiKey { key, user }),
            (None, Some(user), passwd) => Ok(Credential::Passwd { user, passwd }),
            (None, None, _) => Err(de::Error::custom(
                "credential needs `key` or `user` (expected {key, user?} or {user, passwd?})",
            )),
        }
    }
}
