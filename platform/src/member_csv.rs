//! The members of a segment as CSV (M5), for the merchant's spreadsheet: one line per
//! member with level, tags and the balance of every currency the mall has.

use crate::error::Result;
use crate::segments::{MATCH, MemberFilter};
use crate::sheet::{Sheet, inert};
use crate::tx::TenantTx;

const HEADER: [&str; 10] =
    ["member_id", "phone", "email", "nickname", "external_id", "status", "level", "tags", "balances", "registered_at"];

type Line =
    (i64, Option<String>, Option<String>, String, Option<String>, String, Option<String>, String, String, String);

/// Members matching `filter` as CSV, oldest first, at most `limit` of them; and whether
/// more matched than were written.
pub async fn export(tx: &mut TenantTx, filter: &MemberFilter, limit: i64) -> Result<(String, bool)> {
    let bound = filter.bind(tx.tenant().settings.tz())?;
    let sql = format!(
        "SELECT m.id, m.phone, m.email, m.nickname, m.external_id, m.status, \
             (SELECT l.name FROM levels l WHERE l.id = m.level_id), \
             coalesce((SELECT string_agg(t.tag, ' ' ORDER BY t.tag) FROM member_tags t WHERE t.member_id = m.id), ''), \
             coalesce((SELECT string_agg(a.currency || '=' || a.balance, ' ' ORDER BY a.currency) FROM accounts a \
                       WHERE a.member_id = m.id), ''), \
             to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
         FROM members m WHERE ($1::bigint IS NULL OR m.id > $1) AND {MATCH} ORDER BY m.id LIMIT $2"
    );
    let rows: Vec<Line> = bound
        .apply(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(None::<i64>).bind(limit + 1))
        .fetch_all(&mut **tx)
        .await?;
    let more = rows.len() as i64 > limit;
    let mut sheet = Sheet::new(&HEADER)?;
    for (id, phone, email, nickname, external_id, status, level, tags, balances, at) in
        rows.into_iter().take(limit as usize)
    {
        sheet.row([
            id.to_string(),
            inert(phone.as_deref().unwrap_or_default()),
            inert(email.as_deref().unwrap_or_default()),
            inert(&nickname),
            inert(external_id.as_deref().unwrap_or_default()),
            status,
            inert(level.as_deref().unwrap_or_default()),
            inert(&tags),
            balances,
            at,
        ])?;
    }
    Ok((sheet.finish()?, more))
}
