//! System tasks as their watchers see them: one task, a workspace's tasks,
//! cancelling; and, for operators, every task, retries and exercises.

use leptos::prelude::*;
use protocol::ids::{TaskId, WorkspaceId};
use protocol::views::{Page, TaskView};

use crate::error::AppError;

#[server]
pub async fn get_task(task: TaskId) -> Result<TaskView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tasks::get(ctx.db(), &actor, task).await?)
}

#[server]
pub async fn cancel_task(task: TaskId) -> Result<TaskView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tasks::cancel(ctx.db(), &actor, task).await?)
}

#[server]
pub async fn workspace_tasks(
    workspace: WorkspaceId,
    page: u32,
) -> Result<Page<TaskView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let page = protocol::views::PageRequest::new(page, 20);
    Ok(platform::tasks::list_for_workspace(ctx.db(), &actor, workspace, page).await?)
}

/// `state`: "" or a task state; `kind`: a prefix; `age`: "", "1h", "24h" or
/// "7d".
#[server]
pub async fn admin_tasks(
    state: String,
    kind: String,
    age: String,
    page: u32,
) -> Result<Page<TaskView>, AppError> {
    use std::time::Duration;
    let (ctx, actor) = crate::server::signed_in().await?;
    let state = match state.as_str() {
        "" => None,
        s => Some(
            protocol::views::TaskState::from_label(s)
                .ok_or_else(|| AppError::invalid("state", "choose a task state"))?,
        ),
    };
    let newer_than = match age.as_str() {
        "" => None,
        "1h" => Some(Duration::from_secs(3600)),
        "24h" => Some(Duration::from_secs(86_400)),
        "7d" => Some(Duration::from_secs(7 * 86_400)),
        _ => return Err(AppError::invalid("age", "choose 1h, 24h or 7d")),
    };
    let filter = platform::tasks::Filter {
        state,
        kind: Some(kind),
        newer_than,
    };
    let page = protocol::views::PageRequest::new(page, 25);
    Ok(platform::tasks::list_all(ctx.db(), &actor, &filter, page).await?)
}

#[server]
pub async fn admin_retry_task(task: TaskId) -> Result<TaskView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tasks::retry(ctx.db(), &actor, task).await?)
}

/// Starts an exercise of the engine and opens its task page.
#[server]
pub async fn admin_run_exercise(
    steps: u32,
    sleep_ms: u64,
    fail_attempts: u32,
) -> Result<TaskId, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let exercise = platform::tasks::diagnostics::Exercise {
        steps,
        sleep_ms,
        fail_attempts,
        ..Default::default()
    };
    let id = platform::tasks::diagnostics::start_exercise(ctx.db(), &actor, &exercise).await?;
    leptos_axum::redirect(&format!("/tasks/{id}"));
    Ok(id)
}
