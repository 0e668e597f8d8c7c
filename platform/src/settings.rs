//! Per-tenant settings (SPEC T6): name, logo, currency names, point value, expiry
//! policy, locale. Stored as JSON in the directory row and validated on every write.

use serde::{Deserialize, Serialize};

use crate::error::{Result, Validator};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Logo URL (https or a path served by this platform).
    #[serde(default)]
    pub logo_url: Option<String>,
    /// Display name of the spendable currency, e.g. "积分".
    #[serde(default = "default_points_name")]
    pub points_name: String,
    /// Display name of experience, e.g. "经验".
    #[serde(default = "default_experience_name")]
    pub experience_name: String,
    /// How many points are worth one yuan (e.g. 100 means 100 points = 1 yuan).
    #[serde(default = "default_points_per_yuan")]
    pub points_per_yuan: i64,
    #[serde(default)]
    pub expiry: ExpiryPolicy,
    /// BCP 47 locale, e.g. "zh-CN".
    #[serde(default = "default_locale")]
    pub locale: String,
}

/// When earned points lapse.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExpiryPolicy {
    /// Points never expire.
    #[default]
    Never,
    /// Each lot expires `days` after it was earned.
    Rolling { days: i32 },
    /// Each lot expires at the end of the period after the one it was earned in.
    FixedEndOfNext { period: Period },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Month,
    Quarter,
    Year,
}

fn default_points_name() -> String {
    "积分".into()
}
fn default_experience_name() -> String {
    "经验".into()
}
fn default_points_per_yuan() -> i64 {
    100
}
fn default_locale() -> String {
    "zh-CN".into()
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            logo_url: None,
            points_name: default_points_name(),
            experience_name: default_experience_name(),
            points_per_yuan: default_points_per_yuan(),
            expiry: ExpiryPolicy::default(),
            locale: default_locale(),
        }
    }
}

impl TenantSettings {
    pub fn validate(&self) -> Result<()> {
        let mut v = Validator::new();
        if let Some(url) = &self.logo_url {
            v.check(
                url.len() <= 2048 && (url.starts_with("https://") || url.starts_with('/')),
                "logo_url",
                "must be an https URL or a path, at most 2048 characters",
            );
        }
        let name_ok = |s: &str| !s.trim().is_empty() && s.chars().count() <= 16;
        v.check(name_ok(&self.points_name), "points_name", "1 to 16 characters");
        v.check(name_ok(&self.experience_name), "experience_name", "1 to 16 characters");
        v.check((1..=1_000_000).contains(&self.points_per_yuan), "points_per_yuan", "between 1 and 1000000");
        if let ExpiryPolicy::Rolling { days } = self.expiry {
            v.check((1..=3650).contains(&days), "expiry.days", "between 1 and 3650");
        }
        let locale_ok =
            (2..=16).contains(&self.locale.len()) && self.locale.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        v.check(locale_ok, "locale", "a BCP 47 tag such as zh-CN or en");
        v.finish()
    }

    /// Reads stored settings; a stored value that no longer parses falls back to defaults
    /// field by field rather than failing every request of the tenant.
    pub fn from_stored(value: serde_json::Value) -> Self {
        serde_json::from_value(value).unwrap_or_default()
    }
}
