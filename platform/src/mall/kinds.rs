//! A product's kind and its two states, as stored (text with a CHECK constraint in
//! tenant migration 0004) and as the API shows them. An unknown stored value fails the
//! read instead of passing for another.

use serde::{Deserialize, Serialize};

/// What a product is: it decides the order's path (shipping, a code, nothing to send).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum ProductKind {
    Physical,
    Virtual,
    Coupon,
    Service,
}

impl ProductKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Physical => "physical",
            Self::Virtual => "virtual",
            Self::Coupon => "coupon",
            Self::Service => "service",
        }
    }
}

/// Whether members see the product (with an approved review).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Listing {
    Listed,
    Delisted,
}

/// The product's review by the merchant's staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum ReviewState {
    Pending,
    Approved,
}
