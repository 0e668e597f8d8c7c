//! A member's favorite products (M3).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::limits::mall::FAVORITES_LISTED_MAX as LISTED_MAX;
use crate::tx::TenantTx;

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Favorite {
    pub product_id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// The member's favorites, newest first.
pub async fn list(tx: &mut TenantTx, member_id: i64) -> Result<Vec<Favorite>> {
    Ok(sqlx::query_as(
        "SELECT f.product_id, p.name, f.created_at FROM favorites f JOIN products p ON p.id = f.product_id \
         WHERE f.member_id = $1 ORDER BY f.created_at DESC LIMIT $2",
    )
    .bind(member_id)
    .bind(LISTED_MAX)
    .fetch_all(&mut **tx)
    .await?)
}

/// Adds a product (404 for a product not in this mall; adding it twice is fine).
pub async fn add(tx: &mut TenantTx, member_id: i64, product_id: i64) -> Result<()> {
    let added = sqlx::query("INSERT INTO favorites (member_id, product_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(member_id)
        .bind(product_id)
        .execute(&mut **tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                Error::not_found("product_not_found", "no such product")
            }
            _ => Error::Database(e),
        })?
        .rows_affected();
    if added > 0 {
        crate::outbox::emit(tx, "favorited", member_id, serde_json::json!({"product_id": product_id})).await?;
    }
    Ok(())
}

/// Removes a product: one that is not a favorite is fine, one not in this mall a 404.
pub async fn remove(tx: &mut TenantTx, member_id: i64, product_id: i64) -> Result<()> {
    crate::found::product(tx, product_id).await?;
    sqlx::query("DELETE FROM favorites WHERE member_id = $1 AND product_id = $2")
        .bind(member_id)
        .bind(product_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
