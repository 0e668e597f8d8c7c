//! Finance (SPEC B4): per period (a month or a day of the mall's zone) and currency, the
//! points flow from opening to closing, exactly as the ledger has it; the outstanding
//! liability at the mall's point value; what redeemed goods cost against the value of
//! the points taken for them; CSV.
//!
//! Every entry reason is in exactly one column, so for each currency
//! `opening + issued − spent + returned − expired + adjusted + transferred = closing`
//! holds by construction, in points held (spendable + locked): `issued` = earn, lock,
//! release (a release moves locked points to spendable: 0 in total); `spent` = spend,
//! hold (debits for a partner's checkout); `returned` = refund, hold_return; `expired`;
//! `adjusted` = staff adjustments (net); `transferred` = transfers between members (net:
//! 0 unless a transfer straddles the period's end by its two entries' instants).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use super::{bounds, points_value_fen};
use crate::alliance::settlement::period::Period;
use crate::error::{Error, Result};
use crate::ledger::currencies;
use crate::tx::TenantTx;

/// One currency's flow over the period.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct CurrencyFlow {
    pub currency: String,
    pub name: String,
    /// Spendable currencies are a liability; experience is not.
    pub spendable: bool,
    /// Points held (spendable + locked) at the period's start: every entry before it.
    pub opening: i64,
    pub issued: i64,
    pub spent: i64,
    pub returned: i64,
    pub expired: i64,
    pub adjusted: i64,
    pub transferred: i64,
    /// `opening + issued − spent + returned − expired + adjusted + transferred`.
    pub closing: i64,
    /// Of `closing`, the part still locked (released on a schedule).
    pub closing_locked: i64,
    /// Entries written in the period.
    pub entries: i64,
    /// `closing` at the mall's point value, in fen (0 for a currency that is not spendable).
    pub liability_fen: i64,
}

/// What one product's redemptions in the period cost and took.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductCost {
    pub product_id: i64,
    pub name: String,
    pub currency: String,
    /// Orders made in the period.
    pub orders: i64,
    /// Orders cancelled or refunded in the period.
    pub returned: i64,
    /// Units, points, cash and cost: of orders made, less those given back.
    pub units: i64,
    pub points: i64,
    pub cash_fen: i64,
    /// Cost price × units when each order was made.
    pub cost_fen: i64,
    /// Net orders whose product had no cost price then (not in `cost_fen`).
    pub uncosted_orders: i64,
    /// `points` at the mall's point value.
    pub points_value_fen: i64,
    /// `points_value_fen + cash_fen − cost_fen`: what the mall kept (negative: it paid).
    pub margin_fen: i64,
}

/// The finance report of one period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FinanceReport {
    /// As asked: "2026-11" or "2026-11-30".
    pub period: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub time_zone: String,
    /// Points per yuan (settings): the value of a point is 100 ÷ this, in fen.
    pub points_per_yuan: i64,
    pub currencies: Vec<CurrencyFlow>,
    /// Sum of the spendable currencies' liability.
    pub liability_fen: i64,
    /// The products with the most points taken first, at most `COST_ROWS_MAX`.
    pub products: Vec<ProductCost>,
    /// Whether products were left out past `COST_ROWS_MAX`.
    pub products_truncated: bool,
    pub totals: CostTotals,
}

/// The redemption table's sums (every product, also those left out).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct CostTotals {
    pub units: i64,
    pub points_value_fen: i64,
    pub cash_fen: i64,
    pub cost_fen: i64,
    pub margin_fen: i64,
}

/// Sums by currency, reason and side of the period's start, over everything before its end.
const FLOW: &str = "SELECT currency, reason, bucket >= $1 AS inside, sum(amount)::bigint, sum(locked)::bigint, \
     sum(entries)::bigint FROM ledger_rollup WHERE bucket < $2 GROUP BY 1, 2, 3";

const COSTS: &str = "SELECT r.product_id, COALESCE(p.name, '') AS name, r.currency, sum(r.placed)::bigint, \
     sum(r.returned)::bigint, sum(r.quantity)::bigint, sum(r.points)::bigint, sum(r.cash_fen)::bigint, \
     sum(r.cost_fen)::bigint, sum(r.uncosted)::bigint \
     FROM order_rollup r LEFT JOIN products p ON p.id = r.product_id \
     WHERE r.bucket >= $1 AND r.bucket < $2 GROUP BY r.product_id, p.name, r.currency \
     ORDER BY 7 DESC, r.product_id";

type CostRow = (i64, String, String, i64, i64, i64, i64, i64, i64, i64);

/// The report of `period` ("2026-11" or "2026-11-30" of the mall's zone).
pub async fn report(tx: &mut TenantTx, period: &str) -> Result<FinanceReport> {
    let settings = tx.tenant().settings.clone();
    let tz = settings.tz();
    let p = Period::parse(period, tz)?;
    let ppy = settings.points_per_yuan;
    let currencies = flows(tx, &p, ppy).await?;
    let rows: Vec<CostRow> = sqlx::query_as(COSTS).bind(p.starts_at).bind(p.ends_at).fetch_all(&mut **tx).await?;
    let all: Vec<ProductCost> = rows.into_iter().map(|r| cost(r, ppy)).collect();
    let totals = all.iter().fold(CostTotals::default(), |mut t, c| {
        t.units += c.units;
        t.points_value_fen += c.points_value_fen;
        t.cash_fen += c.cash_fen;
        t.cost_fen += c.cost_fen;
        t.margin_fen += c.margin_fen;
        t
    });
    let max = usize::try_from(bounds::COST_ROWS_MAX).unwrap_or(usize::MAX);
    let products_truncated = all.len() > max;
    Ok(FinanceReport {
        period: p.label.clone(),
        starts_at: p.starts_at,
        ends_at: p.ends_at,
        time_zone: tz.name().to_string(),
        points_per_yuan: ppy,
        liability_fen: currencies.iter().map(|c| c.liability_fen).sum(),
        currencies,
        products: all.into_iter().take(max).collect(),
        products_truncated,
        totals,
    })
}

fn cost(r: CostRow, ppy: i64) -> ProductCost {
    let (product_id, name, currency, orders, returned, units, points, cash_fen, cost_fen, uncosted_orders) = r;
    let value = points_value_fen(points, ppy);
    ProductCost {
        product_id,
        name,
        currency,
        orders,
        returned,
        units,
        points,
        cash_fen,
        cost_fen,
        uncosted_orders,
        points_value_fen: value,
        margin_fen: value.saturating_add(cash_fen).saturating_sub(cost_fen),
    }
}

/// Each currency's flow: the mall's currencies in their order, then any other the
/// ledger names (none in a mall's own ledger today).
async fn flows(conn: &mut PgConnection, p: &Period, ppy: i64) -> Result<Vec<CurrencyFlow>> {
    let known = currencies::list(&mut *conn).await?;
    let rows: Vec<(String, String, bool, i64, i64, i64)> =
        sqlx::query_as(FLOW).bind(p.starts_at).bind(p.ends_at).fetch_all(&mut *conn).await?;
    let mut out: Vec<CurrencyFlow> = known
        .into_iter()
        .filter(|c| !c.shared)
        .map(|c| CurrencyFlow { currency: c.code, name: c.name, spendable: c.spendable, ..CurrencyFlow::default() })
        .collect();
    let mut at: HashMap<String, usize> = out.iter().enumerate().map(|(i, c)| (c.currency.clone(), i)).collect();
    for (currency, reason, inside, amount, locked, entries) in rows {
        let i = *at.entry(currency.clone()).or_insert_with(|| {
            out.push(CurrencyFlow { currency: currency.clone(), name: currency.clone(), ..CurrencyFlow::default() });
            out.len() - 1
        });
        add(&mut out[i], &reason, inside, amount, locked, entries)?;
    }
    for c in &mut out {
        c.closing = c.opening + c.issued - c.spent + c.returned - c.expired + c.adjusted + c.transferred;
        c.liability_fen = if c.spendable { points_value_fen(c.closing, ppy) } else { 0 };
    }
    Ok(out)
}

fn add(c: &mut CurrencyFlow, reason: &str, inside: bool, amount: i64, locked: i64, entries: i64) -> Result<()> {
    let held = amount + locked;
    c.closing_locked += locked;
    if !inside {
        c.opening += held;
        return Ok(());
    }
    c.entries += entries;
    match reason {
        "earn" | "lock" | "release" => c.issued += held,
        "spend" | "hold" => c.spent -= held,
        "refund" | "hold_return" => c.returned += held,
        "expire" => c.expired -= held,
        "adjust" => c.adjusted += held,
        "transfer_in" | "transfer_out" => c.transferred += held,
        other => return Err(Error::Internal(anyhow::anyhow!("an entry reason no report column takes: {other}"))),
    }
    Ok(())
}

/// A field a spreadsheet will not evaluate.
fn inert(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_string() }
}

/// The report as CSV (UTF-8 with a byte order mark, every field quoted, no field a
/// formula): a row per currency, a blank row, then a row per product.
pub fn csv(r: &FinanceReport) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new().flexible(true).quote_style(csv::QuoteStyle::Always).from_writer(Vec::new());
    let failed = |e: csv::Error| Error::Internal(anyhow::anyhow!("writing CSV: {e}"));
    w.write_record([
        "period",
        "currency",
        "opening",
        "issued",
        "spent",
        "returned",
        "expired",
        "adjusted",
        "transferred",
        "closing",
        "closing_locked",
        "liability_fen",
    ])
    .map_err(failed)?;
    for c in &r.currencies {
        let n = [c.opening, c.issued, c.spent, c.returned, c.expired, c.adjusted, c.transferred, c.closing];
        let mut row = vec![inert(&r.period), inert(&c.currency)];
        row.extend(n.iter().chain([&c.closing_locked, &c.liability_fen]).map(i64::to_string));
        w.write_record(&row).map_err(failed)?;
    }
    w.write_record([""]).map_err(failed)?;
    w.write_record([
        "product_id",
        "product",
        "currency",
        "orders",
        "returned",
        "units",
        "points",
        "points_value_fen",
        "cash_fen",
        "cost_fen",
        "uncosted_orders",
        "margin_fen",
    ])
    .map_err(failed)?;
    for p in &r.products {
        let n = [p.orders, p.returned, p.units, p.points, p.points_value_fen, p.cash_fen, p.cost_fen];
        let mut row = vec![p.product_id.to_string(), inert(&p.name), inert(&p.currency)];
        row.extend(n.iter().chain([&p.uncosted_orders, &p.margin_fen]).map(i64::to_string));
        w.write_record(&row).map_err(failed)?;
    }
    let body = w.into_inner().map_err(|e| Error::Internal(anyhow::anyhow!("writing CSV: {e}")))?;
    let mut out = Vec::with_capacity(body.len() + 3);
    out.extend_from_slice("\u{feff}".as_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}
