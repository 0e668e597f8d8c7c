//! What members read: published items inside their window, in the member's language,
//! else the mall's (per key: an item translated into the member's language is shown in
//! it, one that is not is shown in the mall's). Zones show only their products on sale
//! now. Answers are cached like the catalog's: per tenant and generation, for a few
//! seconds (so windows open and close on time), and evicted on every instance when staff
//! change content (NOTIFY) or the catalog (a zone's products).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::future::Cache;
use serde::Serialize;

use super::{COLUMNS, ContentItem, ContentKind, ContentLocale};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::limits::content as bounds;
use crate::mall::browse::{self, CatalogCache, ProductCard};
use crate::tx::TenantTx;

/// A banner as members see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberBanner {
    pub key: String,
    pub locale: ContentLocale,
    pub title: String,
    pub subtitle: String,
    pub image_url: Option<String>,
    pub link: Option<String>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// An announcement as members see it (pinned ones first).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberAnnouncement {
    pub key: String,
    pub locale: ContentLocale,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub pinned: bool,
    pub published_at: Option<DateTime<Utc>>,
}

/// A themed zone with its products on sale now, in the zone's order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberZone {
    pub key: String,
    pub locale: ContentLocale,
    pub title: String,
    pub description: String,
    pub image_url: Option<String>,
    pub products: Vec<ProductCard>,
}

/// A rule page as members see it: sanitised HTML.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberPage {
    pub key: String,
    pub locale: ContentLocale,
    pub title: String,
    pub html: String,
    pub published_at: Option<DateTime<Utc>>,
}

/// A rule page in a list of links.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberPageLink {
    pub key: String,
    pub locale: ContentLocale,
    pub title: String,
}

/// The languages of a read: the member's, then the mall's.
#[derive(Debug, Clone, Copy)]
pub struct Langs {
    pub want: ContentLocale,
    pub mall: ContentLocale,
}

/// Published items of `kind` in window at `now`, one per key (in `want` where there is
/// one, else in the mall's language), in the members' order; `key` narrows to one.
async fn live(
    tx: &mut TenantTx,
    kind: ContentKind,
    langs: Langs,
    key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<ContentItem>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM (SELECT DISTINCT ON (key) {COLUMNS} FROM content_items \
             WHERE kind = $1 AND state = 'published' AND locale IN ($2, $3) AND ($4::text IS NULL OR key = $4) \
               AND (starts_at IS NULL OR starts_at <= $5) AND (ends_at IS NULL OR ends_at > $5) \
             ORDER BY key, (locale = $2) DESC) c \
         ORDER BY pinned DESC, sort_order, published_at DESC, id LIMIT $6"
    )))
    .bind(kind)
    .bind(langs.want)
    .bind(langs.mall)
    .bind(key)
    .bind(now)
    .bind(bounds::MEMBER_LIST_MAX)
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn banners(tx: &mut TenantTx, langs: Langs, now: DateTime<Utc>) -> Result<Vec<MemberBanner>> {
    Ok(live(tx, ContentKind::Banner, langs, None, now)
        .await?
        .into_iter()
        .map(|c| MemberBanner {
            key: c.key,
            locale: c.locale,
            title: c.title,
            subtitle: c.body,
            image_url: c.image_url,
            link: c.link,
            ends_at: c.ends_at,
        })
        .collect())
}

pub async fn announcements(tx: &mut TenantTx, langs: Langs, now: DateTime<Utc>) -> Result<Vec<MemberAnnouncement>> {
    Ok(live(tx, ContentKind::Announcement, langs, None, now)
        .await?
        .into_iter()
        .map(|c| MemberAnnouncement {
            key: c.key,
            locale: c.locale,
            title: c.title,
            body: c.body,
            link: c.link,
            pinned: c.pinned,
            published_at: c.published_at,
        })
        .collect())
}

/// The zones (all, or the one with `key`), each with its products on sale at `now`.
pub async fn zones(tx: &mut TenantTx, langs: Langs, key: Option<&str>, now: DateTime<Utc>) -> Result<Vec<MemberZone>> {
    let items = live(tx, ContentKind::Zone, langs, key, now).await?;
    let mut out = Vec::with_capacity(items.len());
    for c in items {
        let products = browse::cards_in_order(tx, &c.product_ids, now).await?;
        out.push(MemberZone {
            key: c.key,
            locale: c.locale,
            title: c.title,
            description: c.body,
            image_url: c.image_url,
            products,
        });
    }
    Ok(out)
}

/// One zone (404 when none is published under `key`).
pub async fn zone(tx: &mut TenantTx, langs: Langs, key: &str, now: DateTime<Utc>) -> Result<MemberZone> {
    zones(tx, langs, Some(key), now)
        .await?
        .pop()
        .ok_or_else(|| Error::not_found("content_not_found", "no such content item"))
}

/// The rule pages members can open.
pub async fn pages(tx: &mut TenantTx, langs: Langs, now: DateTime<Utc>) -> Result<Vec<MemberPageLink>> {
    Ok(live(tx, ContentKind::Page, langs, None, now)
        .await?
        .into_iter()
        .map(|c| MemberPageLink { key: c.key, locale: c.locale, title: c.title })
        .collect())
}

/// One rule page (404 when none is published under `key`).
pub async fn page(tx: &mut TenantTx, langs: Langs, key: &str, now: DateTime<Utc>) -> Result<MemberPage> {
    let c = live(tx, ContentKind::Page, langs, Some(key), now)
        .await?
        .pop()
        .ok_or_else(|| Error::not_found("content_not_found", "no such content item"))?;
    Ok(MemberPage { key: c.key, locale: c.locale, title: c.title, html: c.html, published_at: c.published_at })
}

/// Cached answers, already serialized to JSON, per tenant and generation. A generation
/// moves when the tenant's content changes here or elsewhere (`evict`), and with the
/// catalog's (a zone shows products).
#[derive(Clone)]
pub struct ContentCache {
    entries: Cache<(TenantId, u64, u64, String), bytes::Bytes>,
    generations: Arc<Mutex<HashMap<TenantId, u64>>>,
    catalog: CatalogCache,
}

impl ContentCache {
    pub fn new(catalog: CatalogCache) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(bounds::CACHE_ENTRIES)
                .time_to_live(Duration::from_secs(bounds::CACHE_TTL_SECS))
                .build(),
            generations: Arc::new(Mutex::new(HashMap::new())),
            catalog,
        }
    }

    fn key(&self, tenant_id: TenantId, key: &str) -> (TenantId, u64, u64, String) {
        let own = self.generations.lock().map(|g| g.get(&tenant_id).copied().unwrap_or(0)).unwrap_or(0);
        (tenant_id, own, self.catalog.generation(tenant_id), key.to_string())
    }

    pub async fn get(&self, tenant_id: TenantId, key: &str) -> Option<bytes::Bytes> {
        self.entries.get(&self.key(tenant_id, key)).await
    }

    /// Serializes and keeps an answer; returns the bytes to send.
    pub async fn put<T: Serialize>(&self, tenant_id: TenantId, key: &str, value: &T) -> Result<bytes::Bytes> {
        let body = bytes::Bytes::from(serde_json::to_vec(value).map_err(|e| Error::Internal(e.into()))?);
        self.entries.insert(self.key(tenant_id, key), body.clone()).await;
        Ok(body)
    }

    /// Makes every cached answer of the tenant unreachable.
    pub fn evict(&self, tenant_id: TenantId) {
        if let Ok(mut g) = self.generations.lock() {
            *g.entry(tenant_id).or_insert(0) += 1;
        }
    }

    pub fn evict_all(&self) {
        if let Ok(mut g) = self.generations.lock() {
            for v in g.values_mut() {
                *v += 1;
            }
        }
        self.entries.invalidate_all();
    }
}
