//! Environment overrides of the common configuration keys, for containers and unit files
//! where editing the YAML is awkward. Precedence, highest first: command-line flag,
//! environment, YAML, built-in default. A set but malformed variable stops `start` with its
//! name, rather than being ignored as `FUSTOR_FUSION_PORT` once was.
//!
//! | variable | daemon | overrides |
//! |---|---|---|
//! | `FUSTOR_HOME` | both | the home (`--home` wins; read by `fustor_core::config::FustorPaths`) |
//! | `FUSTOR_FUSION_HOST` | Fusion | `host` (`--host` wins) |
//! | `FUSTOR_FUSION_PORT` | Fusion | `port` (`--port` wins) |
//! | `FUSTOR_LOG_LEVEL` | both | `logging.level` (`--verbose` wins) |

/// The overrides found in the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvOverrides {
    pub fusion_host: Option<String>,
    pub fusion_port: Option<u16>,
    /// Upper case, one of the levels `logging.level` accepts.
    pub log_level: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {var}={value:?}: {why}")]
pub struct EnvError {
    pub var: &'static str,
    pub value: String,
    pub why: &'static str,
}

const LEVELS: &[&str] = &[
    "TRACE", "DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL",
];

impl EnvOverrides {
    /// Reads the process environment (empty values count as unset).
    pub fn read() -> Result<EnvOverrides, EnvError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<EnvOverrides, EnvError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let fusion_port = match get("FUSTOR_FUSION_PORT") {
            None => None,
            Some(v) => Some(v.parse::<u16>().map_err(|_| EnvError {
                var: "FUSTOR_FUSION_PORT",
                value: v,
                why: "not a port number (0-65535)",
            })?),
        };
        let log_level = match get("FUSTOR_LOG_LEVEL") {
            None => None,
            Some(v) => {
                let up = v.to_ascii_uppercase();
                if !LEVELS.contains(&up.as_str()) {
                    return Err(EnvError {
                        var: "FUSTOR_LOG_LEVEL",
                        value: v,
                        why: "not a level (TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL)",
                    });
                }
                Some(up)
            }
        };
        Ok(EnvOverrides {
            fusion_host: get("FUSTOR_FUSION_HOST"),
            fusion_port,
            log_level,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn of(pairs: &[(&str, &str)]) -> Result<EnvOverrides, EnvError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EnvOverrides::from_lookup(|k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn values_are_checked_and_blank_is_unset() {
        let o = of(&[
            ("FUSTOR_FUSION_PORT", " 9000 "),
            ("FUSTOR_LOG_LEVEL", "debug"),
            ("FUSTOR_FUSION_HOST", ""),
        ])
        .unwrap();
        assert_eq!(o.fusion_port, Some(9000));
        assert_eq!(o.log_level.as_deref(), Some("DEBUG"));
        assert_eq!(o.fusion_host, None);
        let e = of(&[("FUSTOR_FUSION_PORT", "80a")]).unwrap_err();
        assert!(e.to_string().contains("FUSTOR_FUSION_PORT"), "{e}");
        assert!(of(&[("FUSTOR_LOG_LEVEL", "loud")]).is_err());
    }
}
