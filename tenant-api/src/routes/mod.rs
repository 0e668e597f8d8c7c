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

/// Route modules decode, authorize, call the domain and encode (issue 11): none of them
/// touches SQL or the database driver. CI fails when one does.
#[cfg(test)]
mod layering {
    #[test]
    fn no_route_module_uses_the_database_driver() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
        // Spelled in two halves so this test does not find itself.
        let needle = concat!("sq", "lx");
        let mut offenders = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.contains(needle) && !line.trim_start().starts_with("//") {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(offenders.is_empty(), "route modules must call the domain, not SQL:\n{}", offenders.join("\n"));
    }
}
