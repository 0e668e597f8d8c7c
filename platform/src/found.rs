//! Existence checks for routes whose answer would otherwise not depend on the id (an
//! empty list, a no-op delete): an id that names nothing in this mall is a 404 on every
//! route alike (issue 10, point 9). Run them in the tenant transaction.

use sqlx::PgConnection;

use crate::error::{Error, Result};

/// 404 `member_not_found` unless the member exists in the selected schema.
pub async fn member(conn: &mut PgConnection, id: i64) -> Result<()> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM members WHERE id = $1").bind(id).fetch_optional(&mut *conn).await?;
    found.map(|_| ()).ok_or_else(|| Error::not_found("member_not_found", "no such member"))
}

/// 404 `product_not_found` unless the product exists in the selected schema.
pub async fn product(conn: &mut PgConnection, id: i64) -> Result<()> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM products WHERE id = $1").bind(id).fetch_optional(&mut *conn).await?;
    found.map(|_| ()).ok_or_else(|| Error::not_found("product_not_found", "no such product"))
}
