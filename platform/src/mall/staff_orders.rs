//! What staff do to orders (O3, O7): approve, ship, cancel, refund one order, and ship
//! many from a CSV. Each is audited.

use chrono::Utc;
use serde::Deserialize;

use super::order_csv::{self, ImportProblem, ImportReport};
use super::order_state::Action;
use super::orders::{self, Details, Order};
use crate::audit::{self, Actor};
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result, Validator};
use crate::ids::OrderId;
use crate::tx::TenantTx;

/// What staff send with an action (all optional; `ship` needs carrier and tracking_no).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// Required to `ship`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub carrier: Option<String>,
    /// Required to `ship`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub tracking_no: Option<String>,
    /// Kept with the order's history (its first 200 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// The action a staff route names: approve, ship, cancel or refund (404 otherwise).
pub fn action(name: &str) -> Result<Action> {
    match name {
        "approve" => Ok(Action::Approve),
        "ship" => Ok(Action::Ship),
        "cancel" => Ok(Action::Cancel),
        "refund" => Ok(Action::Refund),
        _ => Err(Error::not_found("not_found", "actions: approve, ship, cancel, refund")),
    }
}

/// Moves one order (illegal moves are a 409); audited as `order.<action>`.
pub async fn act(tx: &mut TenantTx, id: OrderId, action: Action, body: ActionBody) -> Result<Order> {
    if action == Action::Ship {
        let ok = |s: &Option<String>| s.as_ref().is_some_and(|v| !v.trim().is_empty() && v.chars().count() <= 100);
        Validator::new()
            .check(ok(&body.carrier), "carrier", "required, at most 100 characters")
            .check(ok(&body.tracking_no), "tracking_no", "required, at most 100 characters")
            .finish()?;
    }
    let details = Details {
        carrier: body.carrier,
        tracking_no: body.tracking_no,
        payment_ref: None,
        note: body.note.unwrap_or_default().chars().take(200).collect(),
    };
    let by = tx.actor().label.clone();
    let o = orders::transition(tx, id, action, &by, &details, Utc::now()).await?;
    let what = format!("order.{}", action.as_str());
    tx.audit(&what, &o.order_no, serde_json::json!({"status": o.status})).await?;
    Ok(o)
}

/// Ships many orders from a CSV: each line in a transaction of its own; lines that
/// cannot be applied are reported with why, in line order. One audit entry for the
/// import.
pub async fn import_shipping(db: &Db, tenant: &Tenant, actor: &Actor, csv: &str) -> Result<ImportReport> {
    let (lines, unreadable) = order_csv::parse_shipping(csv)?;
    let mut report = ImportReport { shipped: 0, problems: unreadable };
    for order_csv::ShippingLine { line, order_no, carrier, tracking_no } in lines {
        let details = Details {
            carrier: Some(carrier),
            tracking_no: Some(tracking_no),
            note: "shipping import".into(),
            ..Details::default()
        };
        let shipped = db
            .write(tenant, actor, async |tx| {
                let o = orders::by_no(tx, &order_no).await?;
                orders::transition(tx, o.id, Action::Ship, &actor.label, &details, Utc::now()).await
            })
            .await;
        match shipped {
            Ok(_) => report.shipped += 1,
            Err(e @ (Error::Database(_) | Error::Internal(_))) => return Err(e),
            Err(e) => report.problems.push(ImportProblem { line, message: format!("{order_no}: {e}") }),
        }
    }
    report.problems.sort_by_key(|p| p.line);
    let mut conn = db.control().acquire().await?;
    let details = serde_json::json!({"shipped": report.shipped, "problems": report.problems.len()});
    audit::record(&mut conn, actor, Some(tenant.id), "orders.shipping_import", "", details).await?;
    Ok(report)
}
