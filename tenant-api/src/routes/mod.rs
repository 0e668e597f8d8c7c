//! The HTTP surface, one module per audience.

pub mod alliance;
pub mod events;
pub mod files;
pub mod health;
pub mod mall_member;
pub mod mall_partner;
pub mod mall_staff;
pub mod marketing;
pub mod member;
pub mod partner;
pub mod platform_admin;
pub mod points_member;
pub mod points_partner;
pub mod points_staff;
pub mod rules_staff;
pub mod staff;
pub mod tokens;

use serde::Deserialize;

/// Login with e-mail and password (staff of every level).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffLogin {
    pub email: String,
    pub password: String,
}

/// A refresh token to use or end.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}
