//! Content (SPEC K5, issue 13 point 4): banners, announcements, themed zones (a named,
//! ordered set of the mall's products) and rule pages (Markdown shown as sanitised
//! HTML), each written in one language. Items of a kind that share a `key` are
//! translations of each other.
//!
//! Staff write drafts (`content_write`), submit them for review, and a reviewer
//! (`content_publish`) publishes them or sends them back; an edit of a submitted or
//! published item makes it a draft again, so members only ever see what a reviewer
//! approved. Every change is audited and announced to every instance, whose caches of
//! what members read (`published`) are evicted.

pub mod markdown;
pub mod published;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldError, Result, Validator};
use crate::limits::content as bounds;
use crate::notify::{self, Change};
use crate::rbac::{Permission, Role};
use crate::tx::TenantTx;

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum ContentKind {
    /// An image with a link, on the mall's home.
    Banner,
    /// A title and a text; pinned ones first.
    Announcement,
    /// A themed zone: a named, ordered set of products.
    Zone,
    /// A rule page ("points rules", "redemption terms"): Markdown shown as HTML.
    Page,
}

/// Where an item is in its review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum ContentState {
    /// Being written; members do not see it.
    Draft,
    /// Submitted; waits for a reviewer.
    PendingReview,
    /// Approved: members see it inside its window.
    Published,
    /// Gone from the lists; kept for history.
    Archived,
}

/// The language an item is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[sqlx(type_name = "text")]
pub enum ContentLocale {
    #[serde(rename = "zh-CN")]
    #[sqlx(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "en")]
    #[sqlx(rename = "en")]
    En,
}

impl ContentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Banner => "banner",
            Self::Announcement => "announcement",
            Self::Zone => "zone",
            Self::Page => "page",
        }
    }

    /// The longest `body` of this kind (characters).
    fn body_max(self) -> usize {
        match self {
            Self::Banner => bounds::BANNER_SUBTITLE_MAX_CHARS,
            Self::Announcement => bounds::ANNOUNCEMENT_BODY_MAX_CHARS,
            Self::Zone => bounds::ZONE_DESCRIPTION_MAX_CHARS,
            Self::Page => bounds::PAGE_MARKDOWN_MAX_CHARS,
        }
    }
}

impl ContentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::PendingReview => "pending_review",
            Self::Published => "published",
            Self::Archived => "archived",
        }
    }
}

impl ContentLocale {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ZhCn => "zh-CN",
            Self::En => "en",
        }
    }

    pub fn of(lang: crate::i18n::Lang) -> Self {
        match lang {
            crate::i18n::Lang::ZhCn => Self::ZhCn,
            crate::i18n::Lang::En => Self::En,
        }
    }
}

/// An item as staff write it. Fields a kind does not use must be left out.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentInput {
    pub kind: ContentKind,
    /// Names the item across languages (translations share it); a rule page's address
    /// (`points-rules`). Required for pages; other kinds get one when it is left out.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,63}$")]
    pub key: Option<String>,
    pub locale: ContentLocale,
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub title: String,
    /// A banner's subtitle (at most 200 characters), an announcement's text (5000), a
    /// zone's description (500), a rule page's Markdown (20000).
    #[serde(default)]
    #[schema(max_length = 20000)]
    pub body: String,
    /// A banner's image (required to submit it) or a zone's cover: an https URL or a
    /// file of this server (upload with `POST …/content/{id}/image`).
    #[serde(default)]
    #[schema(value_type = Option<crate::urls::ImageUrl>)]
    pub image_url: Option<String>,
    /// Where a banner or an announcement leads: an http(s) URL or a path in the mall
    /// (`/products/12`).
    #[serde(default)]
    #[schema(value_type = Option<ContentLink>)]
    pub link: Option<String>,
    /// A zone's products (existing products of the mall, at most 100, no repeats), in
    /// the order members see them; members see those on sale.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub product_ids: Vec<i64>,
    /// Announcements: shown before the others.
    #[serde(default)]
    pub pinned: bool,
    /// Lower first.
    #[serde(default)]
    #[schema(minimum = -1000000, maximum = 1000000)]
    pub sort_order: i32,
    /// Members see it from then (default: once published).
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Members see it until then (after `starts_at`).
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
}

/// A link of a banner or an announcement in the OpenAPI document (`link_ok`).
pub struct ContentLink;

/// `http(s)://host…` or `/path` (not `//`): what `link_ok` accepts, as the document shows it.
pub const LINK_PATTERN: &str = concat!(
    "^(?:[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?",
    "(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?){0,2}(?::[0-9]{1,5})?(?:[/?#][!-\\[\\]-~]*)?",
    "|/(?:[!-.0-\\[\\]-~][!-\\[\\]-~]*)?)$"
);

impl utoipa::PartialSchema for ContentLink {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(LINK_PATTERN))
            .max_length(Some(crate::urls::URL_MAX_BYTES))
            .description(Some("An http(s) URL with a plain host, or a path in the mall (`/…`, not `//`)."))
            .into()
    }
}
impl utoipa::ToSchema for ContentLink {}

/// An http or https URL with a plain host, or a path of the mall: never `javascript:`,
/// `data:`, `//host` or anything with whitespace or control characters.
pub fn link_ok(s: &str) -> bool {
    if crate::urls::local_path_ok(s) || crate::urls::https_url_ok(s) {
        return true;
    }
    // http://host… is checked as its https twin (same length, so the same bounds).
    s.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("http://"))
        && crate::urls::https_url_ok(&format!("https:/{}", &s[6..]))
}

/// A key: lowercase letters, digits and dashes, 1 to 64, not starting with a dash.
pub fn key_ok(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || *x == b'-')
}

/// An item with its review.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ContentItem {
    pub id: i64,
    pub kind: ContentKind,
    pub key: String,
    pub locale: ContentLocale,
    pub state: ContentState,
    pub title: String,
    pub body: String,
    /// A rule page's Markdown as members see it: rendered and sanitised.
    pub html: String,
    pub image_url: Option<String>,
    pub link: Option<String>,
    pub product_ids: Vec<i64>,
    pub pinned: bool,
    pub sort_order: i32,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// Staff ids of the last submission and review.
    pub submitted_by: Option<i64>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub reviewed_by: Option<i64>,
    pub reviewed_at: Option<DateTime<Utc>>,
    /// Why a reviewer sent it back (or a note of the approval).
    pub review_note: String,
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) const COLUMNS: &str = "id, kind, key, locale, state, title, body, html, image_url, link, product_ids, \
    pinned, sort_order, starts_at, ends_at, submitted_by, submitted_at, reviewed_by, reviewed_at, review_note, \
    published_at, created_at, updated_at";

/// A move of an item's review.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentTransition {
    /// `pending_review` (submit; `content_write`), `published` (approve a submitted
    /// item; `content_publish`), `draft` (send back or withdraw; either permission),
    /// `archived` (`content_write`).
    pub to: ContentState,
    /// Why (kept with the review; e.g. what to fix).
    #[serde(default)]
    #[schema(max_length = 500)]
    pub note: String,
}

/// Markdown to render for a preview.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkdownPreview {
    #[schema(max_length = 20000)]
    pub markdown: String,
}

/// What members would see.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RenderedHtml {
    pub html: String,
}

/// Filters of the staff list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct ContentFilter {
    pub kind: Option<ContentKind>,
    /// Archived items are listed only when asked for by this.
    pub state: Option<ContentState>,
    pub locale: Option<ContentLocale>,
}

/// A 422 with its own code, about one field.
fn refused(code: &'static str, field: &str, message: String) -> Error {
    Error::Invalid {
        code,
        message: format!("{field}: {message}"),
        fields: vec![FieldError { field: field.to_string(), message }],
    }
}

fn not_found() -> Error {
    Error::not_found("content_not_found", "no such content item")
}

/// Checks an item as written (what does not need the database first).
async fn validate(tx: &mut TenantTx, c: &ContentInput) -> Result<()> {
    if matches!((c.starts_at, c.ends_at), (Some(a), Some(b)) if b <= a) {
        return Err(refused("content_window_invalid", "ends_at", "after starts_at".into()));
    }
    if let Some(link) = &c.link
        && !link_ok(link)
    {
        return Err(refused(
            "content_link_unsafe",
            "link",
            "an http(s) URL or a path of the mall (/…), at most 2048 characters".into(),
        ));
    }
    let mut v = Validator::new();
    let title = c.title.chars().count();
    v.check(!c.title.trim().is_empty() && title <= bounds::TITLE_MAX_CHARS, "title", "1 to 100 characters");
    let max = c.kind.body_max();
    v.check(c.body.chars().count() <= max, "body", &format!("at most {max} characters"));
    v.check(
        c.key.as_deref().is_none_or(key_ok),
        "key",
        "lowercase letters, digits and dashes (1 to 64), not starting with a dash",
    );
    v.check(c.kind != ContentKind::Page || c.key.is_some(), "key", "required");
    v.check(
        c.image_url.as_deref().is_none_or(crate::urls::image_url_ok),
        "image_url",
        "an https URL or a path of this server (/…), at most 2048 characters",
    );
    v.check(
        c.image_url.is_none() || matches!(c.kind, ContentKind::Banner | ContentKind::Zone),
        "image_url",
        "only banners and zones have an image",
    );
    v.check(
        c.link.is_none() || matches!(c.kind, ContentKind::Banner | ContentKind::Announcement),
        "link",
        "only banners and announcements have a link",
    );
    v.check(c.product_ids.is_empty() || c.kind == ContentKind::Zone, "product_ids", "only zones have products");
    v.check(c.product_ids.len() <= bounds::ZONE_PRODUCTS_MAX, "product_ids", "at most 100");
    let mut seen = std::collections::HashSet::new();
    v.check(c.product_ids.iter().all(|id| seen.insert(*id)), "product_ids", "each product once");
    v.check(!c.pinned || c.kind == ContentKind::Announcement, "pinned", "only announcements are pinned");
    v.check(
        (-bounds::SORT_ORDER_ABS_MAX..=bounds::SORT_ORDER_ABS_MAX).contains(&c.sort_order),
        "sort_order",
        "-1000000 to 1000000",
    );
    v.finish()?;
    if !c.product_ids.is_empty() {
        let unknown: Vec<i64> = sqlx::query_scalar(
            "SELECT z.id FROM unnest($1::bigint[]) AS z(id) WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = z.id)",
        )
        .bind(&c.product_ids)
        .fetch_all(&mut **tx)
        .await?;
        if !unknown.is_empty() {
            let list = unknown.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            return Err(refused("content_product_unknown", "product_ids", format!("no such product: {list}")));
        }
    }
    Ok(())
}

/// Audits a change and announces it to every instance (their caches of what members
/// read are evicted).
async fn changed(tx: &mut TenantTx, action: &str, id: i64, details: serde_json::Value) -> Result<()> {
    tx.audit(action, &format!("content:{id}"), details).await?;
    let tenant_id = tx.tenant().id;
    notify::publish(tx, &Change::Content { tenant_id }).await
}

fn key_taken(e: sqlx::Error) -> Error {
    crate::error::on_unique(
        e,
        "content_items_key_key",
        Error::conflict("content_key_taken", "an item of this kind with this key and language exists"),
    )
}

/// The items staff list, newest first (archived ones only when filtered by that state).
pub async fn list(tx: &mut TenantTx, f: &ContentFilter) -> Result<Vec<ContentItem>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM content_items WHERE ($1::text IS NULL OR kind = $1) \
           AND (state = $2 OR ($2::text IS NULL AND state <> 'archived')) AND ($3::text IS NULL OR locale = $3) \
         ORDER BY id DESC LIMIT $4"
    )))
    .bind(f.kind)
    .bind(f.state)
    .bind(f.locale)
    .bind(bounds::STAFF_LIST_MAX)
    .fetch_all(&mut **tx)
    .await?)
}

/// One item (404 when there is none).
pub async fn get(tx: &mut TenantTx, id: i64) -> Result<ContentItem> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM content_items WHERE id = $1")))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(not_found)
}

fn html_of(c: &ContentInput) -> String {
    if c.kind == ContentKind::Page { markdown::render(&c.body) } else { String::new() }
}

/// Writes a draft (at most `ITEMS_PER_TENANT_MAX` that are not archived); audited.
pub async fn create(tx: &mut TenantTx, c: &ContentInput) -> Result<ContentItem> {
    validate(tx, c).await?;
    sqlx::query("LOCK TABLE content_items IN SHARE ROW EXCLUSIVE MODE").execute(&mut **tx).await?;
    let live: i64 =
        sqlx::query_scalar("SELECT count(*) FROM content_items WHERE state <> 'archived'").fetch_one(&mut **tx).await?;
    if live >= bounds::ITEMS_PER_TENANT_MAX {
        return Err(Error::conflict(
            "too_many_content_items",
            "a mall has at most 1000 content items that are not archived",
        ));
    }
    let key = c.key.clone().unwrap_or_else(|| {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("{}-{}", c.kind.as_str(), &id[..10])
    });
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO content_items (kind, key, locale, title, body, html, image_url, link, product_ids, pinned, \
             sort_order, starts_at, ends_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
    )
    .bind(c.kind)
    .bind(&key)
    .bind(c.locale)
    .bind(c.title.trim())
    .bind(&c.body)
    .bind(html_of(c))
    .bind(&c.image_url)
    .bind(&c.link)
    .bind(&c.product_ids)
    .bind(c.pinned)
    .bind(c.sort_order)
    .bind(c.starts_at)
    .bind(c.ends_at)
    .fetch_one(&mut **tx)
    .await
    .map_err(key_taken)?;
    changed(tx, "content.create", id, serde_json::json!({"kind": c.kind, "key": key, "locale": c.locale})).await?;
    get(tx, id).await
}

/// Replaces an item's fields (its kind stays). A submitted or published item becomes a
/// draft again: members stop seeing it until a reviewer approves the change. Archived
/// items cannot be edited (409). Audited.
pub async fn update(tx: &mut TenantTx, id: i64, c: &ContentInput) -> Result<ContentItem> {
    let old = lock(tx, id).await?;
    if old.kind != c.kind {
        return Err(Error::invalid_field("kind", "an item keeps its kind"));
    }
    if old.state == ContentState::Archived {
        return Err(Error::conflict(
            "content_state_invalid",
            "an archived item cannot be edited; restore it to draft first",
        ));
    }
    validate(tx, c).await?;
    sqlx::query(
        "UPDATE content_items SET key = coalesce($2, key), locale = $3, title = $4, body = $5, html = $6, image_url = $7, \
             link = $8, product_ids = $9, pinned = $10, sort_order = $11, starts_at = $12, ends_at = $13, \
             state = 'draft', updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(&c.key)
    .bind(c.locale)
    .bind(c.title.trim())
    .bind(&c.body)
    .bind(html_of(c))
    .bind(&c.image_url)
    .bind(&c.link)
    .bind(&c.product_ids)
    .bind(c.pinned)
    .bind(c.sort_order)
    .bind(c.starts_at)
    .bind(c.ends_at)
    .execute(&mut **tx)
    .await
    .map_err(key_taken)?;
    changed(tx, "content.update", id, serde_json::json!({"from": old.state, "input": c})).await?;
    get(tx, id).await
}

async fn lock(tx: &mut TenantTx, id: i64) -> Result<ContentItem> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM content_items WHERE id = $1 FOR UPDATE")))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(not_found)
}

/// What a move of the review needs, or why it cannot be made (409).
fn permission_for(from: ContentState, to: ContentState) -> Result<&'static [Permission]> {
    use ContentState::*;
    const WRITE: &[Permission] = &[Permission::ContentWrite];
    match (from, to) {
        (Draft, PendingReview) | (Published, Draft) | (Archived, Draft) => Ok(WRITE),
        (Draft | PendingReview | Published, Archived) => Ok(WRITE),
        (PendingReview, Published) => Ok(&[Permission::ContentPublish]),
        // Withdrawn by its writer or sent back by a reviewer.
        (PendingReview, Draft) => Ok(&[Permission::ContentWrite, Permission::ContentPublish]),
        (from, to) => Err(Error::conflict(
            "content_state_invalid",
            format!(
                "an item cannot go from {} to {} (draft → pending_review → published; back to draft; archived)",
                from.as_str(),
                to.as_str()
            ),
        )),
    }
}

/// Why an item cannot be submitted yet (a banner without an image, an empty zone or
/// page).
fn incomplete(item: &ContentItem) -> Option<&'static str> {
    match item.kind {
        ContentKind::Banner if item.image_url.is_none() => Some("a banner needs an image"),
        ContentKind::Zone if item.product_ids.is_empty() => Some("a zone needs at least one product"),
        ContentKind::Page if item.body.trim().is_empty() => Some("a rule page needs a text"),
        _ => None,
    }
}

/// Moves an item's review (`permission_for` says what the staff member's role needs).
/// Audited; members see the change at once on every instance.
pub async fn transition(tx: &mut TenantTx, id: i64, t: &ContentTransition, role: Role) -> Result<ContentItem> {
    if t.note.chars().count() > bounds::REVIEW_NOTE_MAX_CHARS {
        return Err(Error::invalid_field("note", "at most 500 characters"));
    }
    let item = lock(tx, id).await?;
    let needs = permission_for(item.state, t.to)?;
    if !needs.iter().any(|p| role.allows(*p)) {
        return Err(Error::forbidden(
            "permission_denied",
            format!("the {} role lacks the {} permission", role.as_str(), needs[0].as_str()),
        ));
    }
    if t.to == ContentState::PendingReview
        && let Some(why) = incomplete(&item)
    {
        return Err(Error::conflict("content_incomplete", why));
    }
    let staff = tx.actor().id;
    let reviewing = item.state == ContentState::PendingReview && t.to != ContentState::Archived;
    sqlx::query(
        "UPDATE content_items SET state = $2, updated_at = now(), \
             submitted_by = CASE WHEN $2 = 'pending_review' THEN $3 ELSE submitted_by END, \
             submitted_at = CASE WHEN $2 = 'pending_review' THEN now() ELSE submitted_at END, \
             reviewed_by = CASE WHEN $4 THEN $3 ELSE reviewed_by END, \
             reviewed_at = CASE WHEN $4 THEN now() ELSE reviewed_at END, \
             review_note = CASE WHEN $4 OR $2 = 'pending_review' THEN $5 ELSE review_note END, \
             published_at = CASE WHEN $2 = 'published' THEN now() ELSE published_at END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(t.to)
    .bind(staff)
    .bind(reviewing)
    .bind(t.note.trim())
    .execute(&mut **tx)
    .await
    .map_err(key_taken)?;
    let action = format!("content.{}", t.to.as_str());
    changed(tx, &action, id, serde_json::json!({"from": item.state, "to": t.to, "note": t.note})).await?;
    get(tx, id).await
}

/// Stores an image of a banner or a zone (checked by `images::check` already) and makes
/// it the item's image; like an edit, the item becomes a draft again. Audited. The file
/// is stored first: an item never points at a file that is not there.
pub async fn set_image(
    tx: &mut TenantTx,
    storage: &crate::storage::Storage,
    id: i64,
    body: bytes::Bytes,
    image: &crate::images::CheckedImage,
) -> Result<ContentItem> {
    let item = lock(tx, id).await?;
    if !matches!(item.kind, ContentKind::Banner | ContentKind::Zone) {
        return Err(Error::invalid_field("file", "only banners and zones have an image"));
    }
    if item.state == ContentState::Archived {
        return Err(Error::conflict(
            "content_state_invalid",
            "an archived item cannot be edited; restore it to draft first",
        ));
    }
    let (tenant_id, slug) = (tx.tenant().id, tx.tenant().slug.clone());
    let name = format!("content/{id}/{}.{}", uuid::Uuid::new_v4().simple(), image.ext);
    storage.put(&format!("t{tenant_id}/{name}"), body, image.content_type).await?;
    let url = format!("/v1/tenants/{slug}/files/{name}");
    sqlx::query("UPDATE content_items SET image_url = $2, state = 'draft', updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(&url)
        .execute(&mut **tx)
        .await?;
    changed(tx, "content.image", id, serde_json::json!({"file": name, "from": item.state})).await?;
    get(tx, id).await
}

/// Renders Markdown as members would see a rule page.
pub fn preview(p: &MarkdownPreview) -> Result<RenderedHtml> {
    if p.markdown.chars().count() > bounds::PAGE_MARKDOWN_MAX_CHARS {
        return Err(Error::invalid_field("markdown", "at most 20000 characters"));
    }
    Ok(RenderedHtml { html: markdown::render(&p.markdown) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_http_or_the_malls_own_paths() {
        for ok in ["https://shop.example.com/a?b=1", "http://example.com", "HTTP://example.com/x", "/products/12", "/"]
        {
            assert!(link_ok(ok), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>",
            "//evil.example",
            "/\\evil.example",
            "http://good@evil.example/",
            "ftp://example.com",
            "http:/example.com",
            " https://example.com",
            "https://example.com/a b",
            "products/12",
            "vbscript:x",
            "",
        ] {
            assert!(!link_ok(bad), "{bad:?}");
        }
        let re = regex::Regex::new(LINK_PATTERN).unwrap();
        for s in ["https://a.b/c", "http://x.y:80/", "/p/1", "/"] {
            assert!(re.is_match(s) && link_ok(s), "{s}");
        }
        for s in ["javascript:alert(1)", "//x", "/\\x", "http://a@b"] {
            assert!(!re.is_match(s), "{s}");
        }
    }

    #[test]
    fn the_review_goes_forward_through_a_reviewer_and_back_to_draft() {
        use ContentState::*;
        assert_eq!(permission_for(Draft, PendingReview).unwrap(), &[Permission::ContentWrite]);
        assert_eq!(permission_for(PendingReview, Published).unwrap(), &[Permission::ContentPublish]);
        assert!(permission_for(Draft, Published).is_err());
        assert!(permission_for(Published, Published).is_err());
        assert!(permission_for(Archived, Published).is_err());
        assert!(permission_for(Published, Draft).is_ok() && permission_for(Archived, Draft).is_ok());
    }

    #[test]
    fn keys_are_lowercase_slugs() {
        assert!(key_ok("points-rules") && key_ok("2026") && !key_ok("-a") && !key_ok("A") && !key_ok(""));
        assert!(!key_ok(&"a".repeat(65)));
    }
}
