//! Roles and permissions (SPEC B5). Every staff endpoint names the permission it needs;
//! the OpenAPI document shows it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the SaaS (no tenant).
    PlatformAdmin,
    /// Runs one alliance of merchants.
    AllianceAdmin,
    /// A merchant's owner: everything in the merchant's mall.
    Owner,
    /// Day-to-day mall operation: catalog, orders, members, rules, content.
    Operator,
    /// Finance: reports, settlement, points liability; reads members.
    Finance,
    /// Customer service: members and orders, small point adjustments.
    CustomerService,
    /// Reads everything, changes nothing.
    Auditor,
}

/// A role of a merchant's staff in the OpenAPI document: one of `Role::TENANT_ROLES`.
pub struct TenantRole;

impl utoipa::PartialSchema for TenantRole {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Role::TENANT_ROLES.map(Role::as_str)))
            .description(Some("A role of a merchant's staff"))
            .into()
    }
}
impl utoipa::ToSchema for TenantRole {}

impl Role {
    pub const TENANT_ROLES: [Role; 5] =
        [Role::Owner, Role::Operator, Role::Finance, Role::CustomerService, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PlatformAdmin => "platform_admin",
            Self::AllianceAdmin => "alliance_admin",
            Self::Owner => "owner",
            Self::Operator => "operator",
            Self::Finance => "finance",
            Self::CustomerService => "customer_service",
            Self::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::PlatformAdmin,
            Self::AllianceAdmin,
            Self::Owner,
            Self::Operator,
            Self::Finance,
            Self::CustomerService,
            Self::Auditor,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    pub fn is_tenant_role(self) -> bool {
        Self::TENANT_ROLES.contains(&self)
    }

    /// Whether a merchant staff member with this role may do `p`.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Self::Owner => true,
            Self::Operator => !matches!(
                p,
                StaffManage | ApiKeysManage | WebhooksManage | SettingsWrite | FinanceRead | ContentPublish
            ),
            Self::Finance => {
                matches!(
                    p,
                    SettingsRead | MembersRead | AuditRead | FinanceRead | ReportsRead | CatalogRead | OrdersRead
                )
            }
            Self::CustomerService => {
                matches!(
                    p,
                    SettingsRead | MembersRead | MembersWrite | PointsAdjust | CatalogRead | OrdersRead | OrdersWrite
                )
            }
            Self::Auditor => p.is_read(),
            Self::PlatformAdmin | Self::AllianceAdmin => false,
        }
    }
}

/// What a merchant staff endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    SettingsRead,
    SettingsWrite,
    StaffRead,
    StaffManage,
    ApiKeysRead,
    ApiKeysManage,
    AuditRead,
    MembersRead,
    MembersWrite,
    PointsAdjust,
    RulesRead,
    RulesWrite,
    CatalogRead,
    CatalogWrite,
    OrdersRead,
    OrdersWrite,
    FinanceRead,
    /// The dashboard's figures (owner, operator, finance, auditor).
    ReportsRead,
    /// Webhook endpoints, their secrets and delivery log (owner only, like API keys).
    WebhooksManage,
    /// Messages to all members or a segment (owner and operator).
    MessagesSend,
    /// Banners, announcements, zones and rule pages: read (owner, operator, auditor).
    ContentRead,
    /// Write drafts and submit them for review, withdraw, archive (owner, operator).
    ContentWrite,
    /// Publish submitted content, or send it back (owner only: someone other than the
    /// operators who write it approves what members see).
    ContentPublish,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SettingsRead => "settings_read",
            Self::SettingsWrite => "settings_write",
            Self::StaffRead => "staff_read",
            Self::StaffManage => "staff_manage",
            Self::ApiKeysRead => "api_keys_read",
            Self::ApiKeysManage => "api_keys_manage",
            Self::AuditRead => "audit_read",
            Self::MembersRead => "members_read",
            Self::MembersWrite => "members_write",
            Self::PointsAdjust => "points_adjust",
            Self::RulesRead => "rules_read",
            Self::RulesWrite => "rules_write",
            Self::CatalogRead => "catalog_read",
            Self::CatalogWrite => "catalog_write",
            Self::OrdersRead => "orders_read",
            Self::OrdersWrite => "orders_write",
            Self::FinanceRead => "finance_read",
            Self::ReportsRead => "reports_read",
            Self::WebhooksManage => "webhooks_manage",
            Self::MessagesSend => "messages_send",
            Self::ContentRead => "content_read",
            Self::ContentWrite => "content_write",
            Self::ContentPublish => "content_publish",
        }
    }

    /// Every permission, in the order `me` lists them.
    pub const ALL: [Permission; 23] = [
        Self::SettingsRead,
        Self::SettingsWrite,
        Self::StaffRead,
        Self::StaffManage,
        Self::ApiKeysRead,
        Self::ApiKeysManage,
        Self::AuditRead,
        Self::MembersRead,
        Self::MembersWrite,
        Self::PointsAdjust,
        Self::RulesRead,
        Self::RulesWrite,
        Self::CatalogRead,
        Self::CatalogWrite,
        Self::OrdersRead,
        Self::OrdersWrite,
        Self::FinanceRead,
        Self::ReportsRead,
        Self::WebhooksManage,
        Self::MessagesSend,
        Self::ContentRead,
        Self::ContentWrite,
        Self::ContentPublish,
    ];

    fn is_read(self) -> bool {
        self.as_str().ends_with("_read")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditor_reads_but_never_writes() {
        assert!(Role::Auditor.allows(Permission::AuditRead));
        assert!(Role::Auditor.allows(Permission::MembersRead));
        assert!(!Role::Auditor.allows(Permission::MembersWrite));
        assert!(!Role::Auditor.allows(Permission::StaffManage));
    }

    #[test]
    fn only_owner_manages_staff_and_keys() {
        for r in Role::TENANT_ROLES {
            assert_eq!(r.allows(Permission::StaffManage), r == Role::Owner, "{r:?}");
            assert_eq!(r.allows(Permission::ApiKeysManage), r == Role::Owner, "{r:?}");
            assert_eq!(r.allows(Permission::WebhooksManage), r == Role::Owner, "{r:?}");
        }
    }

    #[test]
    fn reports_are_read_by_who_runs_and_audits_the_mall() {
        for r in Role::TENANT_ROLES {
            assert_eq!(r.allows(Permission::ReportsRead), r != Role::CustomerService, "{r:?}");
            assert_eq!(
                r.allows(Permission::FinanceRead),
                matches!(r, Role::Owner | Role::Finance | Role::Auditor),
                "{r:?}"
            );
        }
    }

    #[test]
    fn operators_write_content_and_the_owner_publishes_it() {
        for r in Role::TENANT_ROLES {
            let runs = matches!(r, Role::Owner | Role::Operator);
            assert_eq!(r.allows(Permission::ContentWrite), runs, "{r:?}");
            assert_eq!(r.allows(Permission::ContentRead), runs || r == Role::Auditor, "{r:?}");
            assert_eq!(r.allows(Permission::ContentPublish), r == Role::Owner, "{r:?}");
        }
    }

    #[test]
    fn platform_roles_have_no_tenant_permissions() {
        assert!(!Role::PlatformAdmin.allows(Permission::SettingsRead));
        assert!(!Role::AllianceAdmin.allows(Permission::MembersRead));
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for r in Role::TENANT_ROLES {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
