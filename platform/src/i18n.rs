//! Texts for people in the mall's language (SPEC T6, issue 13): zh-CN first, English
//! second. The catalogues are Fluent files (`platform/locales/*.ftl`) compiled into the
//! binary; a test checks that every key exists in both. Member-facing texts name the
//! mall's own points (`points_name`, e.g. 茶豆).
//!
//! The language of an API error's `message` is chosen per request: `Accept-Language`,
//! else the mall's locale, else zh-CN (`RequestLang`, set by the HTTP layer for the
//! whole request). Error `code`s never change with the language.

use std::sync::{LazyLock, OnceLock};

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

pub const EN_FTL: &str = include_str!("../locales/en.ftl");
pub const ZH_CN_FTL: &str = include_str!("../locales/zh-CN.ftl");

/// A language the server writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    ZhCn,
    En,
}

impl Lang {
    /// The language of a BCP 47 tag ("zh-CN", "zh-Hans", "en-US"); None for others.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Self::ZhCn),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The mall's language from its `locale` setting (zh-CN when it names another).
    pub fn of_locale(locale: &str) -> Self {
        Self::from_tag(locale).unwrap_or_default()
    }

    /// The most preferred language of an `Accept-Language` header that we write
    /// (`zh-CN,zh;q=0.9,en;q=0.8`); None when it names none of ours.
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut best: Option<(f32, Self)> = None;
        for part in header.split(',').take(20) {
            let mut it = part.split(';');
            let Some(lang) = it.next().and_then(Self::from_tag) else { continue };
            let q =
                it.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok())).unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l)
    }

    pub fn tag(self) -> &'static str {
        match self {
            Self::ZhCn => "zh-CN",
            Self::En => "en",
        }
    }
}

struct Catalogue {
    zh: FluentBundle<FluentResource>,
    en: FluentBundle<FluentResource>,
}

fn bundle(tag: &str, ftl: &str) -> FluentBundle<FluentResource> {
    let id = tag.parse().unwrap_or_default();
    let mut b = FluentBundle::new_concurrent(vec![id]);
    // Plain text for SMS and JSON: no Unicode isolation marks around variables.
    b.set_use_isolating(false);
    match FluentResource::try_new(ftl.to_string()) {
        Ok(res) => {
            if let Err(errors) = b.add_resource(res) {
                tracing::error!(?errors, tag, "catalogue entries ignored");
            }
        }
        Err((res, errors)) => {
            tracing::error!(?errors, tag, "catalogue does not parse fully");
            let _ = b.add_resource(res);
        }
    }
    b
}

static CATALOGUE: LazyLock<Catalogue> =
    LazyLock::new(|| Catalogue { zh: bundle("zh-CN", ZH_CN_FTL), en: bundle("en", EN_FTL) });

/// The text of `key` in `lang` with `args` (name, value); the key itself when the
/// catalogue lacks it (a test keeps that from happening).
pub fn text(lang: Lang, key: &str, args: &[(&str, Arg<'_>)]) -> String {
    try_text(lang, key, args).unwrap_or_else(|| key.to_string())
}

/// The text of `key`, or None when the catalogue has no such key.
pub fn try_text(lang: Lang, key: &str, args: &[(&str, Arg<'_>)]) -> Option<String> {
    let c = &*CATALOGUE;
    let b = match lang {
        Lang::ZhCn => &c.zh,
        Lang::En => &c.en,
    };
    let pattern = b.get_message(key)?.value()?;
    let mut fa = FluentArgs::new();
    for (name, v) in args {
        match v {
            Arg::Str(s) => fa.set(*name, FluentValue::from(*s)),
            Arg::Int(n) => fa.set(*name, FluentValue::from(n.to_string())),
        }
    }
    let mut errors = vec![];
    Some(b.format_pattern(pattern, Some(&fa), &mut errors).into_owned())
}

/// A value for a text's variable. Numbers are written as digits, never grouped, so a
/// verification code or an order number reads back exactly.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Str(&'a str),
    Int(i64),
}

/// The message of an API error in `lang`: the catalogue's text for `code`.
pub fn error_message(lang: Lang, code: &str) -> Option<String> {
    try_text(lang, &format!("error-{}", code.replace('_', "-")), &[])
}

/// A field problem (422 details) in `lang`: the common shapes ("1 to 16 characters",
/// "between 1 and 100", "at least 1", "required", …) are translated; others are kept.
pub fn field_message(lang: Lang, message: &str) -> String {
    if lang == Lang::En {
        return message.to_string();
    }
    let words: Vec<&str> = message.split(' ').collect();
    let t = |key: &str, args: &[(&str, Arg<'_>)]| text(lang, key, args);
    match words.as_slice() {
        ["required"] => t("field-required", &[]),
        ["a", "JSON", "object"] => t("field-json-object", &[]),
        ["not", "in", "the", "future"] => t("field-not-future", &[]),
        [min, "to", max, "characters"] => t("field-chars", &[("min", Arg::Str(min)), ("max", Arg::Str(max))]),
        ["at", "most", max, "characters"] => t("field-chars-max", &[("max", Arg::Str(max))]),
        ["between", min, "and", max] => t("field-between", &[("min", Arg::Str(min)), ("max", Arg::Str(max))]),
        [min, "to", max] => t("field-range", &[("min", Arg::Str(min)), ("max", Arg::Str(max))]),
        ["at", "least", min] => t("field-at-least", &[("min", Arg::Str(min))]),
        ["at", "most", max] => t("field-at-most", &[("max", Arg::Str(max))]),
        [min, "or", "more"] => t("field-or-more", &[("min", Arg::Str(min))]),
        _ if message.starts_with("a phone number") => t("field-phone", &[]),
        ["after", other] => t("field-after", &[("other", Arg::Str(other))]),
        _ if message.starts_with("an http(s) URL or a path of the mall") => t("field-link", &[]),
        _ if message.starts_with("lowercase letters, digits and dashes") => t("field-content-key", &[]),
        _ if message.starts_with("no such product: ") => {
            t("field-products-unknown", &[("ids", Arg::Str(&message["no such product: ".len()..]))])
        }
        _ => message.to_string(),
    }
}

/// The language of the request being served, where the HTTP layer set one.
pub struct RequestLang {
    /// From `Accept-Language`.
    accept: Option<Lang>,
    /// The mall's, once the request named a mall.
    mall: OnceLock<Lang>,
}

tokio::task_local! {
    static REQUEST_LANG: RequestLang;
}

impl RequestLang {
    /// Runs `fut` (a request) with its language from `accept_language`.
    pub async fn scope<F: Future>(accept_language: Option<&str>, fut: F) -> F::Output {
        let lang = RequestLang { accept: accept_language.and_then(Lang::from_accept_language), mall: OnceLock::new() };
        REQUEST_LANG.scope(lang, fut).await
    }

    /// Notes the language of the mall the request is for (its first mall wins).
    pub fn note_mall(locale: &str) {
        let _ = REQUEST_LANG.try_with(|l| l.mall.set(Lang::of_locale(locale)));
    }

    /// `Accept-Language`, else the mall's locale, else zh-CN.
    pub fn current() -> Lang {
        REQUEST_LANG.try_with(|l| l.accept.or_else(|| l.mall.get().copied())).ok().flatten().unwrap_or_default()
    }
}

/// How the mall speaks to its members: its language and its names.
#[derive(Debug, Clone)]
pub struct Voice {
    pub lang: Lang,
    pub mall_name: String,
    pub points_name: String,
    pub tz: chrono_tz::Tz,
}

impl Voice {
    pub fn of(tenant: &crate::directory::Tenant) -> Self {
        let s = &tenant.settings;
        Self {
            lang: Lang::of_locale(&s.locale),
            mall_name: tenant.name.clone(),
            points_name: s.points_name.clone(),
            tz: s.tz(),
        }
    }

    pub fn text(&self, key: &str, args: &[(&str, Arg<'_>)]) -> String {
        text(self.lang, key, args)
    }

    /// The name members know a currency by: the mall's `points_name` for its points.
    pub fn currency_name<'a>(&'a self, code: &str, name: &'a str) -> &'a str {
        if code == "points" { &self.points_name } else { name }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ftl: &str) -> std::collections::BTreeSet<String> {
        ftl.lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with(' ') && l.contains(" = "))
            .map(|l| l.split(" = ").next().unwrap_or_default().trim().to_string())
            .collect()
    }

    #[test]
    fn every_key_is_in_both_languages() {
        let (en, zh) = (keys(EN_FTL), keys(ZH_CN_FTL));
        assert!(en.len() > 80, "{}", en.len());
        let only_en: Vec<_> = en.difference(&zh).collect();
        let only_zh: Vec<_> = zh.difference(&en).collect();
        assert!(only_en.is_empty() && only_zh.is_empty(), "only in en: {only_en:?}; only in zh-CN: {only_zh:?}");
        for k in &en {
            assert!(try_text(Lang::En, k, &[]).is_some(), "en does not parse at {k}");
            assert!(try_text(Lang::ZhCn, k, &[]).is_some(), "zh-CN does not parse at {k}");
        }
    }

    #[test]
    fn texts_fill_their_variables_without_marks() {
        let args = [("mall", Arg::Str("茶馆")), ("code", Arg::Str("012345")), ("minutes", Arg::Int(10))];
        assert_eq!(
            text(Lang::ZhCn, "code-text", &args),
            "【茶馆】您的验证码是 012345，10 分钟内有效。请勿泄露给他人。"
        );
        assert_eq!(
            text(Lang::En, "code-text", &args),
            "[茶馆] Your verification code is 012345. It expires in 10 minutes."
        );
        assert_eq!(error_message(Lang::ZhCn, "insufficient_points").as_deref(), Some("积分不足。"));
        assert_eq!(field_message(Lang::ZhCn, "1 to 16 characters"), "1 到 16 个字符");
        assert_eq!(field_message(Lang::ZhCn, "between 1 and 1000000"), "介于 1 与 1000000 之间");
        assert_eq!(field_message(Lang::En, "between 1 and 1000000"), "between 1 and 1000000");
    }

    #[test]
    fn accept_language_picks_the_preferred_language_we_write() {
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("fr;q=1, zh-Hans;q=0.5, en;q=0.4"), Some(Lang::ZhCn));
        assert_eq!(Lang::from_accept_language("de, fr"), None);
        assert_eq!(Lang::from_accept_language("en;q=0"), None);
        assert_eq!(Lang::of_locale("ja-JP"), Lang::ZhCn);
    }
}
