//! Products, categories, code pools and stock (SPEC C1-C4), staff side.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::kinds::{Listing, ProductKind, ReviewState};
use crate::error::{Error, Result, Validator};
use crate::ids::ProductId;
pub use crate::limits::mall::IMAGES_PER_PRODUCT_MAX;
use crate::notify::{self, Change};
use crate::tx::TenantTx;

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    pub brand: String,
    pub spec: String,
    pub model: String,
    pub color: String,
    pub description: String,
    pub category_id: Option<i64>,
    pub tags: Vec<String>,
    pub kind: ProductKind,
    pub currency: String,
    pub points_price: i64,
    pub cash_price_fen: i64,
    pub special_points_price: Option<i64>,
    pub special_starts_at: Option<DateTime<Utc>>,
    pub special_ends_at: Option<DateTime<Utc>>,
    pub stock: i64,
    pub low_stock_threshold: i64,
    pub redeemed_count: i64,
    pub sort_order: i32,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub status: Listing,
    pub review_state: ReviewState,
    pub per_member_limit: Option<i32>,
    pub min_level_threshold: i64,
    pub images: Vec<String>,
    /// What one unit costs the mall, in fen (finance's redemption cost); staff only,
    /// never shown to members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_price_fen: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub const COLUMNS: &str = "id, name, brand, spec, model, color, description, category_id, tags, kind, currency, \
    points_price, cash_price_fen, special_points_price, special_starts_at, special_ends_at, stock, low_stock_threshold, \
    redeemed_count, sort_order, starts_at, ends_at, status, review_state, per_member_limit, min_level_threshold, images, \
    cost_price_fen, created_at, updated_at";

impl Product {
    /// The points price in force at `now` (the special price inside its window).
    pub fn price_at(&self, now: DateTime<Utc>) -> i64 {
        match (self.special_points_price, self.special_starts_at, self.special_ends_at) {
            (Some(p), Some(from), Some(to)) if from <= now && now < to => p,
            _ => self.points_price,
        }
    }
}

/// Fields staff set on a product (create: all required ones; update: any).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// Required to create.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: Option<String>,
    #[schema(max_length = 100)]
    pub brand: Option<String>,
    #[schema(max_length = 200)]
    pub spec: Option<String>,
    #[schema(max_length = 100)]
    pub model: Option<String>,
    #[schema(max_length = 50)]
    pub color: Option<String>,
    #[schema(max_length = 20000)]
    pub description: Option<String>,
    pub category_id: Option<i64>,
    /// Tags members can filter by.
    #[schema(value_type = Option<Vec<ProductTag>>, max_items = 20)]
    pub tags: Option<Vec<String>>,
    /// Required to create.
    pub kind: Option<ProductKind>,
    #[schema(value_type = Option<crate::ledger::currencies::CurrencyCode>)]
    pub currency: Option<String>,
    /// A points price or a cash price is required to create.
    #[schema(value_type = Option<crate::limits::ledger::AmountOrZero>)]
    pub points_price: Option<i64>,
    #[schema(value_type = Option<crate::limits::ledger::AmountOrZero>)]
    pub cash_price_fen: Option<i64>,
    #[schema(value_type = Option<crate::limits::ledger::AmountOrZero>)]
    pub special_points_price: Option<i64>,
    pub special_starts_at: Option<DateTime<Utc>>,
    pub special_ends_at: Option<DateTime<Utc>>,
    #[schema(minimum = 0, maximum = 100000000)]
    pub stock: Option<i64>,
    #[schema(value_type = Option<crate::limits::ledger::AmountOrZero>)]
    pub low_stock_threshold: Option<i64>,
    pub sort_order: Option<i32>,
    pub starts_at: Option<DateTime<Utc>>,
    /// After `starts_at`.
    pub ends_at: Option<DateTime<Utc>>,
    pub status: Option<Listing>,
    pub review_state: Option<ReviewState>,
    #[schema(minimum = 1)]
    pub per_member_limit: Option<i32>,
    #[schema(value_type = Option<crate::limits::ledger::AmountOrZero>)]
    pub min_level_threshold: Option<i64>,
    /// Image URLs (uploads add theirs).
    #[schema(value_type = Option<Vec<crate::urls::ImageUrl>>, max_items = 10)]
    pub images: Option<Vec<String>>,
    /// What one unit costs the mall, in fen (for finance's redemption cost).
    #[schema(value_type = Option<crate::limits::ledger::AmountOrZero>)]
    pub cost_price_fen: Option<i64>,
}

/// What creates a product, in the OpenAPI document: a `ProductInput` with a name, a kind
/// and a points or a cash price.
pub struct NewProduct;

impl utoipa::PartialSchema for NewProduct {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use crate::doc::{present, text};
        use utoipa::ToSchema;
        use utoipa::openapi::Ref;
        use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Type};
        // The CHECK of tenant migration 0004: a points price or a cash price above 0.
        let price = || ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).into();
        AllOfBuilder::new()
            .item(Ref::from_schema_name(ProductInput::name()))
            .item(present("name", text()).required("kind").property("kind", Ref::from_schema_name(ProductKind::name())))
            .item(AnyOfBuilder::new().item(present("points_price", price())).item(present("cash_price_fen", price())))
            .description(Some("A product to create: `ProductInput` with `name`, `kind` and a price above 0."))
            .into()
    }
}
impl utoipa::ToSchema for NewProduct {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::{PartialSchema, ToSchema};
        schemas.push((ProductInput::name().into(), ProductInput::schema()));
        <ProductInput as ToSchema>::schemas(schemas);
    }
}

/// A product's tag in the OpenAPI document: 1 to 30 characters.
pub struct ProductTag;

impl utoipa::PartialSchema for ProductTag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(30)).into()
    }
}
impl utoipa::ToSchema for ProductTag {}

/// A code of a virtual product's pool in the OpenAPI document: 1 to 200 characters, not
/// blank (stored trimmed).
pub struct ProductCode;

impl utoipa::PartialSchema for ProductCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        // `\S` is written out by the document's text rules (`tenant_api::openapi`).
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(200))
            .pattern(Some("\\S"))
            .into()
    }
}
impl utoipa::ToSchema for ProductCode {}

impl ProductInput {
    fn validate(&self, creating: bool) -> Result<()> {
        let mut v = Validator::new();
        if creating {
            v.check(self.name.is_some(), "name", "required");
            v.check(self.kind.is_some(), "kind", "required");
            v.check(
                self.points_price.is_some() || self.cash_price_fen.is_some(),
                "points_price",
                "a price is required",
            );
        }
        let len = |o: &Option<String>, max: usize| o.as_ref().is_none_or(|s| s.chars().count() <= max);
        v.check(
            self.name.as_ref().is_none_or(|n| !n.trim().is_empty() && n.chars().count() <= 200),
            "name",
            "1 to 200 characters",
        );
        v.check(len(&self.brand, 100), "brand", "at most 100 characters");
        v.check(len(&self.spec, 200), "spec", "at most 200 characters");
        v.check(len(&self.model, 100), "model", "at most 100 characters");
        v.check(len(&self.color, 50), "color", "at most 50 characters");
        v.check(len(&self.description, 20_000), "description", "at most 20000 characters");
        // kind, status and review_state are enums: serde refuses other values (422).
        let non_neg = |o: Option<i64>| o.is_none_or(|n| (0..=1_000_000_000_000).contains(&n));
        v.check(non_neg(self.points_price), "points_price", "0 or more");
        v.check(non_neg(self.cash_price_fen), "cash_price_fen", "0 or more");
        v.check(non_neg(self.cost_price_fen), "cost_price_fen", "0 or more");
        v.check(non_neg(self.special_points_price), "special_points_price", "0 or more");
        v.check(self.stock.is_none_or(|n| (0..=100_000_000).contains(&n)), "stock", "0 to 100000000");
        v.check(non_neg(self.low_stock_threshold), "low_stock_threshold", "0 or more");
        v.check(self.per_member_limit.is_none_or(|n| n > 0), "per_member_limit", "1 or more");
        v.check(non_neg(self.min_level_threshold), "min_level_threshold", "0 or more");
        v.check(
            self.tags
                .as_ref()
                .is_none_or(|t| t.len() <= 20 && t.iter().all(|s| !s.is_empty() && s.chars().count() <= 30)),
            "tags",
            "at most 20 tags of 1 to 30 characters",
        );
        v.check(self.images.as_ref().is_none_or(|i| i.len() <= IMAGES_PER_PRODUCT_MAX), "images", "at most 10");
        v.check(
            self.images.as_ref().is_none_or(|i| i.iter().all(|u| crate::urls::image_url_ok(u))),
            "images",
            "each an https URL or a path of this server (/…), at most 2048 characters",
        );
        v.check(
            match (self.starts_at, self.ends_at) {
                (Some(a), Some(b)) => b > a,
                _ => true,
            },
            "ends_at",
            "after starts_at",
        );
        v.check(
            match (self.special_starts_at, self.special_ends_at) {
                (Some(a), Some(b)) => b > a,
                _ => true,
            },
            "special_ends_at",
            "after special_starts_at",
        );
        v.finish()
    }
}

/// Audits a staff change of the catalog and announces it to every instance (their
/// catalog caches evict).
async fn changed(tx: &mut TenantTx, action: &str, target: &str, details: serde_json::Value) -> Result<()> {
    tx.audit(action, target, details).await?;
    let tenant_id = tx.tenant().id;
    notify::publish(tx, &Change::Catalog { tenant_id }).await
}

fn map_db(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
            Error::invalid_field("category_id", "no such category or currency")
        }
        sqlx::Error::Database(d) if d.is_check_violation() => Error::invalid_field(
            "points_price",
            format!("the product breaks a rule: {}", d.constraint().unwrap_or("check")),
        ),
        _ => Error::Database(e),
    }
}

/// Creates a product; audited.
pub async fn create(tx: &mut TenantTx, p: &ProductInput) -> Result<Product> {
    p.validate(true)?;
    let id: ProductId = sqlx::query_scalar(
        "INSERT INTO products (name, kind, points_price, cash_price_fen) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(p.name.as_deref().unwrap_or_default().trim())
    .bind(p.kind.unwrap_or(ProductKind::Physical))
    .bind(p.points_price.unwrap_or(0))
    .bind(p.cash_price_fen.unwrap_or(0))
    .fetch_one(&mut **tx)
    .await
    .map_err(map_db)?;
    let product = write_fields(tx, id, p).await?;
    changed(tx, "product.create", &id.to_string(), serde_json::json!({"name": product.name})).await?;
    Ok(product)
}

/// Updates the given fields; an alert is raised when stock falls to its threshold.
/// Audited.
pub async fn update(tx: &mut TenantTx, id: ProductId, p: &ProductInput) -> Result<Product> {
    p.validate(false)?;
    let product = write_fields(tx, id, p).await?;
    let details =
        serde_json::json!({"status": product.status, "stock": product.stock, "points_price": product.points_price});
    changed(tx, "product.update", &id.to_string(), details).await?;
    Ok(product)
}

/// Stores an image of a product (checked by `images::check` already) and appends its
/// URL to the product's images; audited. The file is stored first: a product never
/// points at a file that is not there.
pub async fn add_image(
    tx: &mut TenantTx,
    storage: &crate::storage::Storage,
    id: ProductId,
    body: bytes::Bytes,
    image: &crate::images::CheckedImage,
) -> Result<Product> {
    let p = get(tx, id).await?;
    if p.images.len() >= IMAGES_PER_PRODUCT_MAX {
        return Err(Error::conflict("too_many_images", "a product has at most 10 images"));
    }
    let (tenant_id, slug) = (tx.tenant().id, tx.tenant().slug.clone());
    let name = format!("products/{id}/{}.{}", uuid::Uuid::new_v4().simple(), image.ext);
    storage.put(&format!("t{tenant_id}/{name}"), body, image.content_type).await?;
    let mut images = p.images;
    images.push(format!("/v1/tenants/{slug}/files/{name}"));
    let product = write_fields(tx, id, &ProductInput { images: Some(images), ..ProductInput::default() }).await?;
    changed(tx, "product.image", &id.to_string(), serde_json::json!({"file": name})).await?;
    Ok(product)
}

async fn write_fields(conn: &mut PgConnection, id: ProductId, p: &ProductInput) -> Result<Product> {
    let product: Product = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE products SET name = coalesce($2, name), brand = coalesce($3, brand), spec = coalesce($4, spec), \
           model = coalesce($5, model), color = coalesce($6, color), description = coalesce($7, description), \
           category_id = coalesce($8, category_id), tags = coalesce($9, tags), kind = coalesce($10, kind), \
           currency = coalesce($11, currency), points_price = coalesce($12, points_price), \
           cash_price_fen = coalesce($13, cash_price_fen), special_points_price = coalesce($14, special_points_price), \
           special_starts_at = coalesce($15, special_starts_at), special_ends_at = coalesce($16, special_ends_at), \
           stock = coalesce($17, stock), low_stock_threshold = coalesce($18, low_stock_threshold), \
           sort_order = coalesce($19, sort_order), starts_at = coalesce($20, starts_at), ends_at = coalesce($21, ends_at), \
           status = coalesce($22, status), review_state = coalesce($23, review_state), \
           per_member_limit = coalesce($24, per_member_limit), min_level_threshold = coalesce($25, min_level_threshold), \
           images = coalesce($26, images), cost_price_fen = coalesce($27, cost_price_fen), updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(p.name.as_deref().map(str::trim))
    .bind(&p.brand)
    .bind(&p.spec)
    .bind(&p.model)
    .bind(&p.color)
    .bind(&p.description)
    .bind(p.category_id)
    .bind(&p.tags)
    .bind(p.kind)
    .bind(&p.currency)
    .bind(p.points_price)
    .bind(p.cash_price_fen)
    .bind(p.special_points_price)
    .bind(p.special_starts_at)
    .bind(p.special_ends_at)
    .bind(p.stock)
    .bind(p.low_stock_threshold)
    .bind(p.sort_order)
    .bind(p.starts_at)
    .bind(p.ends_at)
    .bind(p.status)
    .bind(p.review_state)
    .bind(p.per_member_limit)
    .bind(p.min_level_threshold)
    .bind(&p.images)
    .bind(p.cost_price_fen)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_db)?
    .ok_or_else(|| Error::not_found("product_not_found", "no such product"))?;
    if p.stock.is_some() || p.low_stock_threshold.is_some() {
        check_low_stock(conn, product.id).await?;
    }
    Ok(product)
}

pub async fn get(conn: &mut PgConnection, id: ProductId) -> Result<Product> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM products WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::not_found("product_not_found", "no such product"))
}

/// All products, newest first (staff list).
/// Products by their special price window (flash sales, K4): a special price with both
/// ends of its window, the window not over at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpecialWindow {
    /// The special price applies now.
    Current,
    /// The special price starts later.
    Upcoming,
    /// Either.
    CurrentOrUpcoming,
}

/// Every product (or those with a special window as `special` says), newest first.
pub async fn list(
    conn: &mut PgConnection,
    special: Option<SpecialWindow>,
    now: DateTime<Utc>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Product>> {
    let (current, upcoming) = match special {
        None | Some(SpecialWindow::CurrentOrUpcoming) => (true, true),
        Some(SpecialWindow::Current) => (true, false),
        Some(SpecialWindow::Upcoming) => (false, true),
    };
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM products WHERE ($1::bigint IS NULL OR id < $1) \
         AND (NOT $3::boolean OR (special_points_price IS NOT NULL AND special_starts_at IS NOT NULL \
              AND special_ends_at > $4::timestamptz AND ($5::boolean OR special_starts_at > $4::timestamptz) \
              AND ($6::boolean OR special_starts_at <= $4::timestamptz))) \
         ORDER BY id DESC LIMIT $2"
    )))
    .bind(before_id)
    .bind(limit)
    .bind(special.is_some())
    .bind(now)
    .bind(current)
    .bind(upcoming)
    .fetch_all(conn)
    .await?)
}

/// Raises a low-stock alert when stock falls to the threshold (once per crossing), and
/// re-arms it when stock goes back above.
pub async fn check_low_stock(conn: &mut PgConnection, product_id: ProductId) -> Result<()> {
    sqlx::query(
        "UPDATE products SET low_stock_alerted = false WHERE id = $1 AND low_stock_alerted AND stock > low_stock_threshold",
    )
    .bind(product_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "WITH hit AS (UPDATE products SET low_stock_alerted = true WHERE id = $1 AND low_stock_threshold > 0 \
                      AND stock <= low_stock_threshold AND NOT low_stock_alerted RETURNING id, stock, low_stock_threshold) \
         INSERT INTO stock_alerts (product_id, stock, threshold) SELECT id, stock, low_stock_threshold FROM hit",
    )
    .bind(product_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds codes to a virtual product's pool; its stock grows by the codes added. Audited.
pub async fn add_codes(tx: &mut TenantTx, id: ProductId, codes: &[String]) -> Result<Product> {
    let mut v = Validator::new();
    v.check(!codes.is_empty() && codes.len() <= 10_000, "codes", "1 to 10000 codes");
    v.check(
        codes.iter().all(|c| !c.trim().is_empty() && c.chars().count() <= 200),
        "codes",
        "1 to 200 characters each",
    );
    v.finish()?;
    let p = get(tx, id).await?;
    if p.kind != ProductKind::Virtual {
        return Err(Error::invalid_field("codes", "only virtual products have a code pool"));
    }
    let trimmed: Vec<&str> = codes.iter().map(|c| c.trim()).collect();
    let added = sqlx::query(
        "INSERT INTO product_codes (product_id, code) SELECT $1, c FROM unnest($2::text[]) AS c ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(&trimmed)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query("UPDATE products SET stock = stock + $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(added as i64)
        .execute(&mut **tx)
        .await?;
    changed(tx, "product.codes", &id.to_string(), serde_json::json!({"count": codes.len()})).await?;
    get(tx, id).await
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Category {
    /// Ignored in a request.
    #[serde(default)]
    pub id: i64,
    #[schema(min_length = 1, max_length = 50, pattern = "\\S")]
    pub name: String,
    #[serde(default)]
    pub position: i32,
}

pub async fn categories(conn: &mut PgConnection) -> Result<Vec<Category>> {
    Ok(sqlx::query_as("SELECT id, name, position FROM categories ORDER BY position, id").fetch_all(conn).await?)
}

/// Adds a category; audited.
pub async fn create_category(tx: &mut TenantTx, c: &Category) -> Result<Category> {
    if c.name.trim().is_empty() || c.name.chars().count() > 50 {
        return Err(Error::invalid_field("name", "1 to 50 characters"));
    }
    let out: Category =
        sqlx::query_as("INSERT INTO categories (name, position) VALUES ($1, $2) RETURNING id, name, position")
            .bind(c.name.trim())
            .bind(c.position)
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| {
                crate::error::on_unique(
                    e,
                    "categories_name_key",
                    Error::conflict("category_exists", "a category with this name exists"),
                )
            })?;
    changed(tx, "category.create", &out.name, serde_json::json!({})).await?;
    Ok(out)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StockAlert {
    pub id: i64,
    pub product_id: ProductId,
    pub stock: i64,
    pub threshold: i64,
    pub created_at: DateTime<Utc>,
}

pub async fn stock_alerts(conn: &mut PgConnection, limit: i64) -> Result<Vec<StockAlert>> {
    Ok(sqlx::query_as(
        "SELECT id, product_id, stock, threshold, created_at FROM stock_alerts ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
