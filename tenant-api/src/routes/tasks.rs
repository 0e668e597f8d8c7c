//! The task centre (SPEC K2): staff define tasks (read with `rules_read`, write with
//! `rules_write`); members read theirs with their progress.

use axum::http::StatusCode;
use chrono::Utc;
use platform::rbac::Permission;
use platform::tasks::view::{self, MemberTask};
use platform::tasks::{self, Task, TaskInput};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;

use crate::doc::{Conflict, Forbidden, Invalid, NotFound, TenantSlug, Unauthorized};
use crate::error::ApiResult;
use crate::extract::{Json, MemberAuth, PathId, Query, StaffAuth};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        list_tasks, create_task;
        get_task, update_task;
        my_tasks;
    ]
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct ListParams {
    /// Include archived tasks (default false).
    archived: Option<bool>,
}

/// The mall's tasks with how many members completed each, newest first. Needs
/// `rules_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/tasks", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ListParams), responses((status = 200, body = Vec<Task>), Forbidden))]
async fn list_tasks(auth: StaffAuth, Query(p): Query<ListParams>) -> ApiResult<Json<Vec<Task>>> {
    let archived = p.archived.unwrap_or(false);
    Ok(Json(auth.read(Permission::RulesRead, async |tx| tasks::list(tx, archived).await).await?))
}

/// Defines a task: an event type and a count (or days in a row), once, daily or weekly,
/// an optional window, and a reward in one of the mall's currencies. At most 100 that
/// are not archived (409). Needs `rules_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/tasks", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = TaskInput, responses((status = 201, body = Task), Forbidden, Conflict, Invalid))]
async fn create_task(auth: StaffAuth, Json(body): Json<TaskInput>) -> ApiResult<(StatusCode, Json<Task>)> {
    let task = auth.write(Permission::RulesWrite, async |tx| tasks::create(tx, &body).await).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

/// One task. Needs `rules_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/tasks/{id}", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "task id")),
    responses((status = 200, body = Task), Forbidden, NotFound))]
async fn get_task(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<Json<Task>> {
    Ok(Json(auth.read(Permission::RulesRead, async |tx| tasks::get(tx, id).await).await?))
}

/// Replaces a task's definition and status (pause, archive); progress so far is kept.
/// Needs `rules_write`.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/staff/tasks/{id}", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "task id")), request_body = TaskInput,
    responses((status = 200, body = Task), Forbidden, NotFound, Invalid))]
async fn update_task(auth: StaffAuth, PathId(id): PathId<i64>, Json(body): Json<TaskInput>) -> ApiResult<Json<Task>> {
    Ok(Json(auth.write(Permission::RulesWrite, async |tx| tasks::update(tx, id, &body).await).await?))
}

/// The member's tasks: every active one within its window, with progress in the current
/// period (today, this week, or ever) and whether it is done.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/tasks", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Vec<MemberTask>), Unauthorized))]
async fn my_tasks(auth: MemberAuth) -> ApiResult<Json<Vec<MemberTask>>> {
    let member = auth.member_id;
    Ok(Json(auth.read(async |tx| view::mine(tx, member, Utc::now()).await).await?))
}
