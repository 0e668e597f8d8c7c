//! The order state machine (SPEC O3): which action may move an order from which state,
//! and to where. Pure: the side effects live in `orders`.
//!
//! ```text
//! pending_payment ──pay──▶ pending_review / pending_shipment / completed
//!        │ cancel, timeout                      │
//!        ▼                                      ▼
//!    cancelled ◀──cancel── pending_review ──approve──▶ pending_shipment / completed
//!                          pending_shipment ──ship──▶ shipped ──receive──▶ completed
//!                          shipped, completed ──refund──▶ refunded
//! ```

use serde::{Deserialize, Serialize};

use super::kinds::ProductKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Status {
    PendingPayment,
    PendingReview,
    PendingShipment,
    Shipped,
    Completed,
    Cancelled,
    Refunded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pay,
    Approve,
    Ship,
    Receive,
    Cancel,
    Timeout,
    Refund,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::PendingReview => "pending_review",
            Self::PendingShipment => "pending_shipment",
            Self::Shipped => "shipped",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        use Status::*;
        [PendingPayment, PendingReview, PendingShipment, Shipped, Completed, Cancelled, Refunded]
            .into_iter()
            .find(|x| x.as_str() == s)
    }

    /// Where an order goes once paid (or at once, for points-only orders).
    pub fn after_payment(kind: ProductKind) -> Self {
        match kind {
            ProductKind::Physical => Self::PendingShipment,
            ProductKind::Service => Self::PendingReview,
            ProductKind::Virtual | ProductKind::Coupon => Self::Completed,
        }
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pay => "pay",
            Self::Approve => "approve",
            Self::Ship => "ship",
            Self::Receive => "receive",
            Self::Cancel => "cancel",
            Self::Timeout => "timeout",
            Self::Refund => "refund",
        }
    }
}

/// The state `action` leads to from `from` for a product of `kind`, or None if illegal.
pub fn next(from: Status, action: Action, kind: ProductKind) -> Option<Status> {
    use Action::*;
    use Status::*;
    match (from, action) {
        (PendingPayment, Pay) => Some(Status::after_payment(kind)),
        (PendingPayment, Cancel | Timeout) => Some(Cancelled),
        (PendingReview, Approve) => Some(if kind == ProductKind::Physical { PendingShipment } else { Completed }),
        (PendingReview | PendingShipment, Cancel) => Some(Cancelled),
        (PendingShipment, Ship) => Some(Shipped),
        (Shipped, Receive) => Some(Completed),
        (Shipped | Completed, Refund) => Some(Refunded),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_paths_work_and_everything_else_is_refused() {
        use Action::*;
        use Status::*;
        assert_eq!(next(PendingPayment, Pay, ProductKind::Physical), Some(PendingShipment));
        assert_eq!(next(PendingPayment, Pay, ProductKind::Virtual), Some(Completed));
        assert_eq!(next(PendingPayment, Pay, ProductKind::Service), Some(PendingReview));
        assert_eq!(next(PendingShipment, Ship, ProductKind::Physical), Some(Shipped));
        assert_eq!(next(Shipped, Receive, ProductKind::Physical), Some(Completed));
        assert_eq!(next(Completed, Refund, ProductKind::Physical), Some(Refunded));
        assert_eq!(next(PendingShipment, Cancel, ProductKind::Physical), Some(Cancelled));
        // Illegal ones.
        assert_eq!(next(Shipped, Cancel, ProductKind::Physical), None);
        assert_eq!(next(Cancelled, Pay, ProductKind::Physical), None);
        assert_eq!(next(Completed, Ship, ProductKind::Physical), None);
        assert_eq!(next(Refunded, Refund, ProductKind::Physical), None);
        assert_eq!(next(PendingPayment, Ship, ProductKind::Physical), None);
        assert_eq!(next(PendingShipment, Receive, ProductKind::Physical), None);
        let all = [PendingPayment, PendingReview, PendingShipment, Shipped, Completed, Cancelled, Refunded];
        for s in [Cancelled, Refunded] {
            for a in [Pay, Approve, Ship, Receive, Cancel, Timeout, Refund] {
                assert_eq!(next(s, a, ProductKind::Physical), None, "{s:?} is final");
            }
        }
        for s in all {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }
}
