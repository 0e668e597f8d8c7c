//! The HTTP surface, one module per audience.

/// A router of the listed paths: each `;`-ended group is the handlers of one path (what
/// one `utoipa_axum::routes!` takes), e.g. `paths![list_products, create_product; get_product;]`.
/// Defined before the modules below, so each of their `router()`s can use it.
macro_rules! paths {
    ($($($handler:ident),+;)+) => {
        utoipa_axum::router::OpenApiRouter::new()$(.routes(utoipa_axum::routes!($($handler),+)))+
    };
}

pub mod alliance;
pub mod alliance_rules;
pub mod alliance_webhooks;
pub mod analytics;
pub mod budgets;
pub mod content;
pub mod crm;
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
pub mod reports;
pub mod rules_staff;
pub mod segments;
pub mod settlement;
pub mod staff;
pub mod tasks;
pub mod tokens;
pub mod webhooks;

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
/// touches SQL or the database driver, opens a transaction itself (`Db::write`/`read`
/// are the one way in) or writes an audit entry (the domain does). CI fails when one does.
#[cfg(test)]
mod layering {
    #[test]
    fn route_modules_call_the_domain_through_one_way_in() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
        // Spelled in halves so this test does not find itself: the database driver, a
        // transaction opened by hand, an audit entry written by the handler.
        let needles =
            [concat!("sq", "lx"), concat!("tenant", "_tx("), concat!(".beg", "in()"), concat!("audit::", "record")];
        let mut offenders = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                if needles.iter().any(|n| line.contains(n)) && !line.trim_start().starts_with("//") {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "route modules must call the domain through Db::write/read:\n{}",
            offenders.join("\n")
        );
    }
}
