//! Per-tenant settings (SPEC T6): name, logo, currency names, point value, expiry
//! policy, locale. Stored as JSON in the directory row and validated on every write.

use serde::{Deserialize, Serialize};

use crate::error::{Result, Validator};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Logo URL (https or a path served by this platform).
    #[serde(default)]
    #[schema(value_type = Option<crate::urls::ImageUrl>)]
    pub logo_url: Option<String>,
    /// Display name of the spendable currency, e.g. "积分".
    #[serde(default = "default_points_name")]
    #[schema(min_length = 1, max_length = 16, pattern = "\\S")]
    pub points_name: String,
    /// Display name of experience, e.g. "经验".
    #[serde(default = "default_experience_name")]
    #[schema(min_length = 1, max_length = 16, pattern = "\\S")]
    pub experience_name: String,
    /// How many points are worth one yuan (e.g. 100 means 100 points = 1 yuan).
    #[serde(default = "default_points_per_yuan")]
    #[schema(minimum = 1, maximum = 1000000)]
    pub points_per_yuan: i64,
    #[serde(default)]
    pub expiry: ExpiryPolicy,
    /// BCP 47 locale, e.g. "zh-CN".
    #[serde(default = "default_locale")]
    #[schema(pattern = "^[A-Za-z0-9-]{2,16}$")]
    pub locale: String,
    /// IANA time zone of the mall's day (check-in days, daily caps and limits, periods),
    /// e.g. "Asia/Shanghai".
    #[serde(default = "default_time_zone")]
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_+/-]+$", example = "Asia/Shanghai")]
    pub time_zone: String,
    /// Member-to-member transfers (L6).
    #[serde(default)]
    pub transfers: TransferLimits,
    /// Days before points lapse when members get a reminder (L4); 0 turns reminders off.
    #[serde(default = "default_reminder_days")]
    #[schema(minimum = 0, maximum = 365)]
    pub expiry_reminder_days: i32,
    /// Default lifetime of a points hold for a partner's checkout, in seconds (L9): 10
    /// seconds to 7 days.
    #[serde(default = "default_hold_ttl_secs")]
    #[schema(minimum = 10, maximum = 604800)]
    pub hold_ttl_secs: i64,
    /// Largest manual points adjustment (credit or debit) per staff role (L7).
    #[serde(default)]
    pub adjustment_limits: AdjustmentLimits,
    /// How much of a server instance the mall's events may use at once (set by the
    /// platform operator; read-only for the mall's staff, ignored in their requests).
    #[serde(default)]
    #[schema(read_only)]
    pub limits: TenantLimits,
}

/// The largest amount one manual adjustment may move, per role that may adjust.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentLimits {
    #[serde(default = "ledger_amount_max")]
    #[schema(value_type = crate::limits::ledger::AmountOrZero)]
    pub owner: i64,
    #[serde(default = "ledger_amount_max")]
    #[schema(value_type = crate::limits::ledger::AmountOrZero)]
    pub operator: i64,
    /// Small by default: customer service makes goodwill gestures, not payouts.
    #[serde(default = "default_customer_service_adjustment")]
    #[schema(value_type = crate::limits::ledger::AmountOrZero)]
    pub customer_service: i64,
}

impl Default for AdjustmentLimits {
    fn default() -> Self {
        Self {
            owner: ledger_amount_max(),
            operator: ledger_amount_max(),
            customer_service: default_customer_service_adjustment(),
        }
    }
}

/// Per-tenant bounds on the rules engine, per server instance (issue 10: one mall's
/// flood must not starve the others). Beyond them a batch waits a bounded time, then is
/// answered 429 `tenant_busy` with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TenantLimits {
    /// Event batches (requests posting events, check-ins, sign-ups) processed at once.
    #[schema(minimum = 1, maximum = 64)]
    pub event_batches: u32,
    /// Of those, how many may run rules at the same moment (each on one thread).
    #[schema(minimum = 1, maximum = 64)]
    pub rule_evaluations: u32,
}

impl Default for TenantLimits {
    fn default() -> Self {
        Self {
            event_batches: crate::limits::EVENT_BATCHES_PER_TENANT_DEFAULT,
            rule_evaluations: crate::limits::RULE_EVALUATIONS_PER_TENANT_DEFAULT,
        }
    }
}

impl TenantLimits {
    pub fn validate(&self) -> Result<()> {
        let max = crate::limits::TENANT_CONCURRENCY_MAX;
        let range = format!("between 1 and {max}");
        let mut v = Validator::new();
        v.check((1..=max).contains(&self.event_batches), "limits.event_batches", &range);
        v.check((1..=max).contains(&self.rule_evaluations), "limits.rule_evaluations", &range);
        v.finish()
    }
}

impl AdjustmentLimits {
    /// The largest adjustment `role` may make (0: none).
    pub fn for_role(&self, role: crate::rbac::Role) -> i64 {
        use crate::rbac::Role;
        match role {
            Role::Owner => self.owner,
            Role::Operator => self.operator,
            Role::CustomerService => self.customer_service,
            _ => 0,
        }
    }
}

fn ledger_amount_max() -> i64 {
    crate::limits::ledger::AMOUNT_MAX
}
fn default_customer_service_adjustment() -> i64 {
    crate::limits::ADJUSTMENT_CUSTOMER_SERVICE_DEFAULT
}

/// Limits on member-to-member transfers, per currency unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferLimits {
    pub enabled: bool,
    /// Smallest single transfer.
    #[schema(minimum = 1)]
    pub min: i64,
    /// Largest single transfer (at least `min`).
    #[schema(minimum = 1)]
    pub max: i64,
    /// Most a member may send per day of the mall's time zone (at least `max`).
    #[schema(minimum = 1)]
    pub per_day: i64,
}

impl Default for TransferLimits {
    fn default() -> Self {
        Self { enabled: true, min: 1, max: 100_000, per_day: 200_000 }
    }
}

/// When earned points lapse.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExpiryPolicy {
    /// Points never expire.
    #[default]
    Never,
    /// Each lot expires `days` after it was earned (1 to 3650).
    Rolling { days: i32 },
    /// Each lot expires at the end of the period after the one it was earned in.
    FixedEndOfNext { period: Period },
}

/// `ExpiryPolicy` in the OpenAPI document, by hand: the derive leaves the variants open to
/// other fields, which the server refuses.
impl utoipa::PartialSchema for ExpiryPolicy {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::ToSchema;
        use utoipa::openapi::Ref;
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
        let variant = |kind: &str, description: &str| {
            ObjectBuilder::new()
                .description(Some(description))
                .required("kind")
                .property("kind", ObjectBuilder::new().schema_type(Type::String).enum_values(Some([kind])))
                .additional_properties(Some(AdditionalProperties::<utoipa::openapi::schema::Schema>::FreeForm(false)))
        };
        let days = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::Int32,
            )))
            .minimum(Some(1))
            .maximum(Some(3650));
        OneOfBuilder::new()
            .item(variant("never", "Points never expire."))
            .item(
                variant("rolling", "Each lot expires `days` after it was earned.")
                    .required("days")
                    .property("days", days),
            )
            .item(
                variant(
                    "fixed_end_of_next",
                    "Each lot expires at the end of the period after the one it was earned in.",
                )
                .required("period")
                .property("period", Ref::from_schema_name(Period::name())),
            )
            .description(Some("When earned points lapse"))
            .into()
    }
}
impl utoipa::ToSchema for ExpiryPolicy {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push((Period::name().into(), Period::schema()));
    }
}

/// What `ExpiryPolicy` is read from: serde's internally tagged enum, after a check that
/// the tag is text and that `never` comes alone (serde alone would take a variant's
/// index, `"kind": 0`, and ignore the other fields of a unit variant).
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum ExpiryWire {
    Never,
    Rolling {
        #[serde(deserialize_with = "whole_i32")]
        days: i32,
    },
    FixedEndOfNext {
        period: Period,
    },
}

impl<'de> Deserialize<'de> for ExpiryPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        match map.get("kind") {
            Some(serde_json::Value::String(kind)) if kind != "never" || map.len() == 1 => {}
            Some(serde_json::Value::String(_)) => return Err(D::Error::custom("kind never takes no other field")),
            _ => return Err(D::Error::custom("kind: never, rolling or fixed_end_of_next")),
        }
        Ok(match ExpiryWire::deserialize(serde_json::Value::Object(map)).map_err(D::Error::custom)? {
            ExpiryWire::Never => Self::Never,
            ExpiryWire::Rolling { days } => Self::Rolling { days },
            ExpiryWire::FixedEndOfNext { period } => Self::FixedEndOfNext { period },
        })
    }
}

/// An i32 written as an integer or as a float with a zero fraction (`30.0`): the HTTP edge
/// reads both as the integer, but a field of an internally tagged enum is buffered
/// before it is read, past the edge's reader.
fn whole_i32<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<i32, D::Error> {
    use serde::de::Error as _;
    let n = serde_json::Number::deserialize(d)?;
    let whole = n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15).map(|f| f as i64));
    whole.and_then(|i| i32::try_from(i).ok()).ok_or_else(|| D::Error::custom(format!("expected an i32, found {n}")))
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
fn default_time_zone() -> String {
    crate::localtime::DEFAULT_TIME_ZONE.into()
}
fn default_reminder_days() -> i32 {
    7
}
fn default_hold_ttl_secs() -> i64 {
    15 * 60
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
            time_zone: default_time_zone(),
            transfers: TransferLimits::default(),
            expiry_reminder_days: default_reminder_days(),
            hold_ttl_secs: default_hold_ttl_secs(),
            adjustment_limits: AdjustmentLimits::default(),
            limits: TenantLimits::default(),
        }
    }
}

impl TenantSettings {
    pub fn validate(&self) -> Result<()> {
        let mut v = Validator::new();
        if let Some(url) = &self.logo_url {
            v.check(
                crate::urls::image_url_ok(url),
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
        v.check(
            crate::localtime::parse(&self.time_zone).is_some(),
            "time_zone",
            "an IANA time zone such as Asia/Shanghai",
        );
        let t = &self.transfers;
        v.check(t.min >= 1, "transfers.min", "at least 1");
        v.check(t.max >= t.min, "transfers.max", "at least transfers.min");
        v.check(t.per_day >= t.max, "transfers.per_day", "at least transfers.max");
        v.check((0..=365).contains(&self.expiry_reminder_days), "expiry_reminder_days", "between 0 and 365");
        v.check((10..=7 * 86_400).contains(&self.hold_ttl_secs), "hold_ttl_secs", "between 10 seconds and 7 days");
        let max = ledger_amount_max();
        let a = &self.adjustment_limits;
        for (field, n) in [
            ("adjustment_limits.owner", a.owner),
            ("adjustment_limits.operator", a.operator),
            ("adjustment_limits.customer_service", a.customer_service),
        ] {
            v.check((0..=max).contains(&n), field, &format!("between 0 and {max}"));
        }
        v.finish()?;
        self.limits.validate()
    }

    /// The mall's time zone (Asia/Shanghai if the stored name does not read; writes are
    /// validated, so that only happens to settings stored before zones existed).
    pub fn tz(&self) -> chrono_tz::Tz {
        crate::localtime::parse(&self.time_zone).unwrap_or(chrono_tz::Asia::Shanghai)
    }

    /// Reads stored settings (a field not stored takes its default). Settings that do not
    /// read are an error, never silently the defaults: a mall whose expiry policy or
    /// limits cannot be read must not run on someone else's.
    pub fn from_stored(value: serde_json::Value) -> Result<Self> {
        serde_json::from_value(value)
            .map_err(|e| crate::error::Error::Internal(anyhow::anyhow!("stored tenant settings do not read: {e}")))
    }
}

impl TenantSettings {
    /// The expiry of a lot credited at `now` without an expiry of its own: the policy's
    /// (periods end at the mall's local midnight) for a currency that expires, none for
    /// one that does not. Every credit path asks this (partner credits, adjustments,
    /// rules, lock releases, lottery prizes).
    pub fn default_expiry(
        &self,
        currency_expires: bool,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        if currency_expires { self.expiry.expires_at(now, self.tz()) } else { None }
    }
}

impl ExpiryPolicy {
    /// When a lot earned at `earned_at` expires under this policy; period ends are local
    /// midnights in `tz`.
    pub fn expires_at(
        &self,
        earned_at: chrono::DateTime<chrono::Utc>,
        tz: chrono_tz::Tz,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        use chrono::{Datelike, Duration, NaiveDate};
        match self {
            Self::Never => None,
            Self::Rolling { days } => Some(earned_at + Duration::days(i64::from(*days))),
            Self::FixedEndOfNext { period } => {
                let local = crate::localtime::day(tz, earned_at);
                let (y, m) = (local.year(), local.month());
                // First day of the period after next; the lot expires at that local
                // midnight (the end of the next period).
                let months_in = match period {
                    Period::Month => 1,
                    Period::Quarter => 3,
                    Period::Year => 12,
                };
                let start_month0 = match period {
                    Period::Month => m - 1,
                    Period::Quarter => (m - 1) / 3 * 3,
                    Period::Year => 0,
                };
                let total = i64::from(y) * 12 + i64::from(start_month0) + 2 * months_in;
                let (ny, nm0) = (total.div_euclid(12), total.rem_euclid(12));
                let date = NaiveDate::from_ymd_opt(ny as i32, nm0 as u32 + 1, 1)?;
                Some(crate::localtime::start_of(tz, date))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    /// The expiry policy's tag is text, `never` comes alone, and a whole float reads as
    /// the days it writes.
    #[test]
    fn expiry_policies_read_strictly() {
        let read = |v: serde_json::Value| serde_json::from_value::<ExpiryPolicy>(v);
        assert_eq!(read(serde_json::json!({"kind": "never"})).unwrap(), ExpiryPolicy::Never);
        assert_eq!(
            read(serde_json::json!({"kind": "rolling", "days": 30.0})).unwrap(),
            ExpiryPolicy::Rolling { days: 30 }
        );
        assert_eq!(
            read(serde_json::json!({"kind": "fixed_end_of_next", "period": "year"})).unwrap(),
            ExpiryPolicy::FixedEndOfNext { period: Period::Year }
        );
        for bad in [
            serde_json::json!({"kind": 0}),
            serde_json::json!({"kind": 1, "days": 3}),
            serde_json::json!({"kind": "never", "period": "year"}),
            serde_json::json!({"kind": "rolling", "days": 3, "x": 1}),
            serde_json::json!({"kind": "rolling", "days": 2.5}),
            serde_json::json!({"days": 3}),
        ] {
            assert!(read(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn fixed_policies_end_with_the_next_period() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let utc = chrono_tz::UTC;
        let year = ExpiryPolicy::FixedEndOfNext { period: Period::Year }.expires_at(at, utc).unwrap();
        assert_eq!(year, Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap());
        let quarter = ExpiryPolicy::FixedEndOfNext { period: Period::Quarter }.expires_at(at, utc).unwrap();
        assert_eq!(quarter, Utc.with_ymd_and_hms(2027, 4, 1, 0, 0, 0).unwrap());
        let month = ExpiryPolicy::FixedEndOfNext { period: Period::Month }.expires_at(at, utc).unwrap();
        assert_eq!(month, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
        let rolling = ExpiryPolicy::Rolling { days: 30 }.expires_at(at, utc).unwrap();
        assert_eq!(rolling, Utc.with_ymd_and_hms(2026, 12, 22, 10, 0, 0).unwrap());
        assert_eq!(ExpiryPolicy::Never.expires_at(at, utc), None);
    }

    #[test]
    fn periods_end_at_the_malls_local_midnight() {
        let beijing = chrono_tz::Asia::Shanghai;
        // 23:30 on 31 Dec in Beijing is already the new year there: the lot earned then
        // belongs to January, and the month after ends at Beijing's midnight of 1 March.
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 16, 30, 0).unwrap();
        let month = ExpiryPolicy::FixedEndOfNext { period: Period::Month }.expires_at(at, beijing).unwrap();
        assert_eq!(month, Utc.with_ymd_and_hms(2027, 2, 28, 16, 0, 0).unwrap());
        let year = ExpiryPolicy::FixedEndOfNext { period: Period::Year }.expires_at(at, beijing).unwrap();
        assert_eq!(year, Utc.with_ymd_and_hms(2028, 12, 31, 16, 0, 0).unwrap());
    }

    #[test]
    fn stored_settings_that_do_not_read_are_an_error_not_the_defaults() {
        assert_eq!(TenantSettings::from_stored(serde_json::json!({})).unwrap(), TenantSettings::default());
        let kept = TenantSettings::from_stored(serde_json::json!({"points_per_yuan": 7})).unwrap();
        assert_eq!(kept.points_per_yuan, 7);
        assert!(TenantSettings::from_stored(serde_json::json!({"points_per_yuan": "seven"})).is_err());
        assert!(TenantSettings::from_stored(serde_json::json!({"expiry": {"kind": "someday"}})).is_err());
    }
}
