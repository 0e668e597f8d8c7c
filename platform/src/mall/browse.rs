//! What members browse (SPEC C3): listed, approved products in their window, filtered,
//! sorted, searched and paged; product detail. Reads are cached per tenant; staff
//! changes bump the tenant's cache generation on every instance (via NOTIFY), and
//! entries live at most a few seconds, so stock shown in lists lags redemptions by at
//! most that (redemption itself always checks stock in the database).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::future::Cache;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::catalog::{COLUMNS, Product};
use super::kinds::ProductKind;
use crate::error::{Error, Result};
use crate::ids::{ProductId, TenantId};
pub use crate::limits::mall::CATALOG_CACHE_TTL_SECS as CACHE_TTL_SECS;
pub use crate::limits::mall::QUERY_MAX_CHARS;
pub use crate::limits::mall::SOLD_OUT_MEMO_SECS;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct BrowseQuery {
    pub category_id: Option<i64>,
    pub tag: Option<String>,
    /// physical, virtual, coupon or service.
    #[param(value_type = ProductKind, inline, required = false)]
    pub kind: Option<String>,
    /// Priced in this currency, e.g. the alliance's shared points (C6).
    #[param(value_type = crate::ledger::currencies::CurrencyCode, inline, required = false)]
    pub currency: Option<String>,
    /// Current points price at least / at most.
    pub min_points: Option<i64>,
    pub max_points: Option<i64>,
    /// Keyword in the name, brand or description (at most 50 characters).
    #[param(max_length = 50)]
    pub q: Option<String>,
    /// newest (default), popular, points_asc, points_desc.
    #[param(value_type = BrowseSort, inline, required = false)]
    pub sort: Option<String>,
}

/// The orders of the catalog, in the OpenAPI document (what `BrowseQuery::check` takes).
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum BrowseSort {
    Newest,
    Popular,
    PointsAsc,
    PointsDesc,
}

/// A product as a list shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ProductCard {
    pub id: ProductId,
    pub name: String,
    pub brand: String,
    pub kind: ProductKind,
    pub category_id: Option<i64>,
    pub tags: Vec<String>,
    /// What the price is paid in: the mall's points, or the alliance's shared currency.
    pub currency: String,
    /// The price now (a special price inside its window).
    pub points_price: i64,
    /// The regular price.
    pub regular_points_price: i64,
    pub cash_price_fen: i64,
    pub on_special: bool,
    pub image: Option<String>,
    pub stock: i64,
    pub redeemed_count: i64,
    pub min_level_threshold: i64,
}

const PRICE: &str = "CASE WHEN special_points_price IS NOT NULL AND special_starts_at <= $1 AND $1 < special_ends_at \
                     THEN special_points_price ELSE points_price END";
const VISIBLE: &str = "status = 'listed' AND review_state = 'approved' AND (starts_at IS NULL OR starts_at <= $1) \
                       AND (ends_at IS NULL OR ends_at > $1)";

impl BrowseQuery {
    fn check(&self) -> Result<()> {
        let mut v = crate::error::Validator::new();
        v.check(self.q.as_ref().is_none_or(|q| q.chars().count() <= QUERY_MAX_CHARS), "q", "at most 50 characters");
        v.check(
            self.sort.as_ref().is_none_or(|s| ["newest", "popular", "points_asc", "points_desc"].contains(&s.as_str())),
            "sort",
            "newest, popular, points_asc or points_desc",
        );
        v.check(
            self.kind.as_ref().is_none_or(|k| ["physical", "virtual", "coupon", "service"].contains(&k.as_str())),
            "kind",
            "physical, virtual, coupon or service",
        );
        v.check(
            self.currency.as_ref().is_none_or(|c| crate::ledger::currencies::code_is_valid(c)),
            "currency",
            "a currency code",
        );
        v.finish()
    }

    /// A stable cache key of the query.
    fn key(&self, offset: i64, limit: i64) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{offset}|{limit}",
            self.category_id, self.tag, self.kind, self.currency, self.min_points, self.max_points, self.q, self.sort
        )
    }
}

/// One page of products; `offset` and `limit` come from the cursor.
pub async fn list(
    conn: &mut PgConnection,
    q: &BrowseQuery,
    offset: i64,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<ProductCard>> {
    q.check()?;
    let order = match q.sort.as_deref() {
        Some("popular") => "redeemed_count DESC, id DESC",
        Some("points_asc") => "price ASC, id DESC",
        Some("points_desc") => "price DESC, id DESC",
        _ => "created_at DESC, id DESC",
    };
    // Escape LIKE wildcards in the keyword.
    let pattern =
        q.q.as_ref().map(|s| format!("%{}%", s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, name, brand, kind, category_id, tags, currency, price, regular_points_price, cash_price_fen, on_special, \
                image, stock, redeemed_count, min_level_threshold \
         FROM (SELECT id, name, brand, kind, category_id, tags, currency, {PRICE} AS price, points_price AS regular_points_price, \
                cash_price_fen, ({PRICE}) <> points_price AS on_special, images[1] AS image, stock, redeemed_count, \
                min_level_threshold, created_at, sort_order \
            FROM products WHERE {VISIBLE} \
              AND ($2::bigint IS NULL OR category_id = $2) AND ($3::text IS NULL OR $3 = ANY(tags)) \
              AND ($4::text IS NULL OR kind = $4) AND ($10::text IS NULL OR currency = $10) \
              AND ($5::text IS NULL OR name ILIKE $5 OR brand ILIKE $5 OR description ILIKE $5)) p \
         WHERE ($6::bigint IS NULL OR price >= $6) AND ($7::bigint IS NULL OR price <= $7) \
         ORDER BY sort_order DESC, {order} OFFSET $8 LIMIT $9"
    )))
    .bind(now)
    .bind(q.category_id)
    .bind(&q.tag)
    .bind(&q.kind)
    .bind(&pattern)
    .bind(q.min_points)
    .bind(q.max_points)
    .bind(offset)
    .bind(limit)
    .bind(&q.currency)
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|row: CardRow| row.into())
    .collect())
}

#[derive(sqlx::FromRow)]
struct CardRow {
    id: ProductId,
    name: String,
    brand: String,
    kind: ProductKind,
    category_id: Option<i64>,
    tags: Vec<String>,
    currency: String,
    price: i64,
    regular_points_price: i64,
    cash_price_fen: i64,
    on_special: bool,
    image: Option<String>,
    stock: i64,
    redeemed_count: i64,
    min_level_threshold: i64,
}

impl From<CardRow> for ProductCard {
    fn from(r: CardRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            brand: r.brand,
            kind: r.kind,
            category_id: r.category_id,
            tags: r.tags,
            currency: r.currency,
            points_price: r.price,
            regular_points_price: r.regular_points_price,
            cash_price_fen: r.cash_price_fen,
            on_special: r.on_special,
            image: r.image,
            stock: r.stock,
            redeemed_count: r.redeemed_count,
            min_level_threshold: r.min_level_threshold,
        }
    }
}

/// A product members can see, or 404.
pub async fn detail(conn: &mut PgConnection, id: ProductId, now: DateTime<Utc>) -> Result<Product> {
    let mut p: Product =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM products WHERE id = $2 AND {VISIBLE}")))
            .bind(now)
            .bind(id)
            .fetch_optional(conn)
            .await?
            .ok_or_else(|| Error::not_found("product_not_found", "no such product"))?;
    // What the goods cost the mall is for its staff only.
    p.cost_price_fen = None;
    Ok(p)
}

/// The products of `ids` that members can see at `now`, in the order of `ids` (a themed
/// zone's products on sale).
pub async fn cards_in_order(conn: &mut PgConnection, ids: &[i64], now: DateTime<Utc>) -> Result<Vec<ProductCard>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, name, brand, kind, category_id, tags, currency, {PRICE} AS price, points_price AS regular_points_price, \
                cash_price_fen, ({PRICE}) <> points_price AS on_special, images[1] AS image, stock, redeemed_count, \
                min_level_threshold \
         FROM products JOIN unnest($2::bigint[]) WITH ORDINALITY AS z(pid, n) ON z.pid = products.id \
         WHERE {VISIBLE} ORDER BY z.n"
    )))
    .bind(now)
    .bind(ids)
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|row: CardRow| row.into())
    .collect())
}

/// Cached browse answers, already serialized to JSON bytes (a hit costs no copy and no
/// serialization), per tenant and generation.
#[derive(Clone)]
pub struct CatalogCache {
    entries: Cache<(TenantId, u64, String), bytes::Bytes>,
    generations: Arc<Mutex<HashMap<TenantId, u64>>>,
    /// Products seen with no stock left, per tenant and generation, for a second: in a
    /// sold-out flash sale the attempts that follow end without reading the product
    /// row every winner is updating.
    sold_out: moka::sync::Cache<(TenantId, u64, ProductId), ()>,
}

impl Default for CatalogCache {
    fn default() -> Self {
        Self {
            entries: Cache::builder().max_capacity(50_000).time_to_live(Duration::from_secs(CACHE_TTL_SECS)).build(),
            generations: Arc::new(Mutex::new(HashMap::new())),
            sold_out: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(SOLD_OUT_MEMO_SECS))
                .build(),
        }
    }
}

impl CatalogCache {
    /// The tenant's cache generation: it moves whenever staff change its catalog.
    pub fn generation(&self, tenant_id: TenantId) -> u64 {
        self.generations.lock().map(|g| g.get(&tenant_id).copied().unwrap_or(0)).unwrap_or(0)
    }

    /// The cache key of a page.
    pub fn page_key(tenant_id: TenantId, q: &BrowseQuery, offset: i64, limit: i64) -> (TenantId, String) {
        (tenant_id, q.key(offset, limit))
    }

    pub async fn get(&self, tenant_id: TenantId, key: &str) -> Option<bytes::Bytes> {
        self.entries.get(&(tenant_id, self.generation(tenant_id), key.to_string())).await
    }

    /// Serializes and keeps an answer; returns the bytes to send.
    pub async fn put<T: Serialize>(&self, tenant_id: TenantId, key: String, value: &T) -> Result<bytes::Bytes> {
        let body = bytes::Bytes::from(serde_json::to_vec(value).map_err(|e| Error::Internal(e.into()))?);
        self.entries.insert((tenant_id, self.generation(tenant_id), key), body.clone()).await;
        Ok(body)
    }

    /// Whether the product was seen sold out in the last second (and the tenant's catalog
    /// has not changed since: a restock or an edit forgets it on every instance).
    pub fn seen_sold_out(&self, tenant_id: TenantId, product_id: ProductId) -> bool {
        self.sold_out.contains_key(&(tenant_id, self.generation(tenant_id), product_id))
    }

    pub fn mark_sold_out(&self, tenant_id: TenantId, product_id: ProductId) {
        self.sold_out.insert((tenant_id, self.generation(tenant_id), product_id), ());
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
        self.sold_out.invalidate_all();
    }
}
