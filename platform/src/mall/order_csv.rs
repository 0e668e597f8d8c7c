//! Orders as CSV (O7), with the `csv` crate: the export opens in Excel (a UTF-8 byte
//! order mark, every field quoted, commas, quotes and line breaks inside fields kept)
//! and cannot run as a spreadsheet formula (a field starting with `=`, `+`, `-`, `@`,
//! a tab or a carriage return gets a leading `'`); the shipping import reads quoted
//! fields the same way, reports each line it cannot use and keeps the good ones.

use serde::Serialize;
use sqlx::PgConnection;

use super::orders::{self, Order, OrderFilter};
use crate::error::{Error, Result};
use crate::limits::mall::IMPORT_FIELD_CHARS_MAX as FIELD_CHARS_MAX;
pub use crate::limits::mall::IMPORT_LINES_MAX;
use crate::sheet::{Sheet, inert};

const HEADER: [&str; 11] = [
    "order_no",
    "status",
    "member_id",
    "product_id",
    "product_name",
    "quantity",
    "points",
    "cash_fen",
    "carrier",
    "tracking_no",
    "created_at",
];

/// The orders as CSV text, header first.
/// Orders matching `f` as CSV (O7), at most `limit` rows.
pub async fn export_orders(conn: &mut PgConnection, f: &OrderFilter, limit: i64) -> Result<String> {
    let found = orders::list(conn, f, None, limit).await?;
    export(&found)
}

pub fn export(orders: &[Order]) -> Result<String> {
    let mut sheet = Sheet::new(&HEADER)?;
    for o in orders {
        sheet.row([
            inert(&o.order_no),
            inert(o.status.as_str()),
            o.member_id.to_string(),
            o.product_id.to_string(),
            inert(&o.product_name),
            o.quantity.to_string(),
            o.points_amount.to_string(),
            o.cash_fen.to_string(),
            inert(o.carrier.as_deref().unwrap_or_default()),
            inert(o.tracking_no.as_deref().unwrap_or_default()),
            o.created_at.to_rfc3339(),
        ])?;
    }
    sheet.finish()
}

/// One line of a shipping import that could not be applied.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportProblem {
    pub line: u64,
    pub message: String,
}

/// What a shipping import did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub shipped: usize,
    /// Lines that were not applied, in line order, each with why.
    pub problems: Vec<ImportProblem>,
}

/// One usable line of a shipping import.
#[derive(Debug, Clone, PartialEq)]
pub struct ShippingLine {
    pub line: u64,
    pub order_no: String,
    pub carrier: String,
    pub tracking_no: String,
}

/// Reads a shipping CSV (`order_no,carrier,tracking_no`, a header line allowed, fields
/// may be quoted). Returns the usable lines and a problem for each other line; refuses
/// the whole file (422) when it has too many lines or not one usable line.
pub fn parse_shipping(text: &str) -> Result<(Vec<ShippingLine>, Vec<ImportProblem>)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let (mut good, mut problems) = (Vec::new(), Vec::new());
    for (i, record) in reader.records().enumerate() {
        if good.len() + problems.len() >= IMPORT_LINES_MAX {
            return Err(Error::invalid_field("csv", format!("at most {IMPORT_LINES_MAX} lines per import")));
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(i as u64 + 1, |p| p.line());
                problems.push(ImportProblem { line, message: format!("unreadable: {e}") });
                continue;
            }
        };
        let line = record.position().map_or(i as u64 + 1, |p| p.line());
        if i == 0 && record.get(0).is_some_and(|f| f.eq_ignore_ascii_case("order_no")) {
            continue;
        }
        if record.iter().all(str::is_empty) {
            continue;
        }
        let fields: Vec<&str> = record.iter().collect();
        let usable = fields.len() == 3 && fields.iter().all(|f| !f.is_empty() && f.chars().count() <= FIELD_CHARS_MAX);
        if !usable {
            problems.push(ImportProblem {
                line,
                message: format!("expected order_no,carrier,tracking_no (each 1 to {FIELD_CHARS_MAX} characters)"),
            });
            continue;
        }
        good.push(ShippingLine {
            line,
            order_no: fields[0].to_string(),
            carrier: fields[1].to_string(),
            tracking_no: fields[2].to_string(),
        });
    }
    if good.is_empty() {
        let detail =
            problems.first().map_or("the file has no lines".to_string(), |p| format!("line {}: {}", p.line, p.message));
        return Err(Error::invalid_field("csv", format!("no line can be imported; {detail}")));
    }
    Ok((good, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_with_commas_and_line_breaks_are_read() {
        let text =
            "\u{feff}order_no,carrier,tracking_no\n\"O1\",\"顺丰, 速运\",\"SF\n1\"\nO2,EMS,E2\nonly,two\n,EMS,E4\n";
        let (good, problems) = parse_shipping(text).unwrap();
        assert_eq!(good.len(), 2);
        assert_eq!(good[0].carrier, "顺丰, 速运");
        assert_eq!(good[0].tracking_no, "SF\n1");
        assert_eq!((good[1].order_no.as_str(), good[1].line), ("O2", 4));
        assert_eq!(problems.iter().map(|p| p.line).collect::<Vec<_>>(), vec![5, 6]);
    }

    #[test]
    fn a_file_without_one_usable_line_is_refused() {
        assert!(parse_shipping("only,two").is_err());
        assert!(parse_shipping("").is_err());
        let many: String = (0..=IMPORT_LINES_MAX).map(|i| format!("O{i},EMS,E{i}\n")).collect();
        assert!(parse_shipping(&many).is_err());
    }

    #[test]
    fn formulas_are_made_inert() {
        for s in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(inert(s).starts_with('\''), "{s:?}");
        }
        assert_eq!(inert("普通"), "普通");
    }
}
