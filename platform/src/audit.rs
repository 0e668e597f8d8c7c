//! Audit log of staff actions (SPEC B6). Written in the same transaction as the change
//! it describes, so an action is in the log exactly when it took effect.

use serde::Serialize;
use sqlx::PgConnection;

use crate::error::Result;
use crate::ids::{AllianceId, TenantId};

/// Who did something.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<i64>,
    pub label: String,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    Staff,
    Cli,
    System,
    Partner,
    /// A member acting in their own mall (reads and their own writes; not audited).
    Member,
    /// Anyone, without a credential (the public catalog; never audited).
    Public,
}

impl ActorKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Cli => "cli",
            Self::System => "system",
            Self::Partner => "partner",
            Self::Member => "member",
            Self::Public => "public",
        }
    }
}

impl Actor {
    /// The operator at the command line.
    pub fn cli() -> Self {
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        Self { kind: ActorKind::Cli, id: None, label: format!("cli:{user}"), request_id: None }
    }
    /// A member acting in their own mall.
    pub fn member(member_id: i64) -> Self {
        Self { kind: ActorKind::Member, id: Some(member_id), label: format!("member:{member_id}"), request_id: None }
    }
    /// A partner's system, by its API key.
    pub fn partner(key_id: i64) -> Self {
        Self { kind: ActorKind::Partner, id: Some(key_id), label: format!("partner:{key_id}"), request_id: None }
    }
    /// A visitor without a credential.
    pub fn public() -> Self {
        Self { kind: ActorKind::Public, id: None, label: "public".into(), request_id: None }
    }
    pub fn system(label: &str) -> Self {
        Self { kind: ActorKind::System, id: None, label: label.to_string(), request_id: None }
    }
}

pub async fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    tenant_id: Option<TenantId>,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> Result<()> {
    insert(conn, actor, tenant_id, None, action, target, details).await
}

pub async fn record_alliance(
    conn: &mut PgConnection,
    actor: &Actor,
    alliance_id: AllianceId,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> Result<()> {
    insert(conn, actor, None, Some(alliance_id), action, target, details).await
}

/// Records a staff action that concerns a mall and its alliance (both audit logs show it).
pub async fn record_both(
    conn: &mut PgConnection,
    actor: &Actor,
    tenant_id: TenantId,
    alliance_id: AllianceId,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> Result<()> {
    insert(conn, actor, Some(tenant_id), Some(alliance_id), action, target, details).await
}

async fn insert(
    conn: &mut PgConnection,
    actor: &Actor,
    tenant_id: Option<TenantId>,
    alliance_id: Option<AllianceId>,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO control.audit_log (actor_kind, actor_id, actor_label, tenant_id, alliance_id, action, target, details, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(actor.kind.as_str())
    .bind(actor.id)
    .bind(&actor.label)
    .bind(tenant_id)
    .bind(alliance_id)
    .bind(action)
    .bind(target)
    .bind(details)
    .bind(&actor.request_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// One audit entry as shown to staff.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor_label: String,
    pub action: String,
    pub target: String,
    pub details: serde_json::Value,
    pub request_id: Option<String>,
}

/// A tenant's audit entries, newest first, before `before_id` (cursor).
pub async fn list_for_tenant(
    pool: &sqlx::PgPool,
    tenant_id: TenantId,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>> {
    Ok(sqlx::query_as(
        "SELECT id, at, actor_kind, actor_id, actor_label, action, target, details, request_id \
         FROM control.audit_log WHERE tenant_id = $1 AND ($2::bigint IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3",
    )
    .bind(tenant_id)
    .bind(before_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
