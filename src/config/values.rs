//! Webhook URLs as the configuration reads and writes them (redacted when printed). Durations
//! and sizes read and write through [`crate::units`].

use std::fmt;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A webhook URL. Such URLs often carry a credential in their path or query (Slack, Teams), so
/// it is written (in `--print-config`) as `scheme://host/<redacted>` and never shown whole in
/// an error.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook(pub url::Url);

impl FromStr for Webhook {
    type Err = String;

    /// # Errors
    /// Not an absolute URL; the message quotes the text up to any `?` only.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        url::Url::parse(s)
            .map(Webhook)
            .map_err(|e| format!("webhook URL {:?}: {e}", s.split('?').next().unwrap_or("")))
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Webhook {
    /// `scheme://host/<redacted>`.
    pub fn redacted(&self) -> String {
        format!(
            "{}://{}/<redacted>",
            self.0.scheme(),
            self.0.host_str().unwrap_or("")
        )
    }
}

impl Serialize for Webhook {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for Webhook {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_never_shows_its_path_or_query() {
        let w: Webhook = "https://hooks.example/services/T0K3N?x=SECRET"
            .parse()
            .expect("url");
        let shown = serde_json::to_string(&w).expect("ser") + &format!("{w:?}");
        assert!(
            !shown.contains("T0K3N") && !shown.contains("SECRET"),
            "{shown}"
        );
        let e = "not a url?k=SECRET".parse::<Webhook>().expect_err("bad");
        assert!(!e.contains("SECRET"), "{e}");
    }
}
