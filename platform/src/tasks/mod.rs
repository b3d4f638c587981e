//! System tasks: durable sequences of named steps that long operations run
//! as (provisioning, host orders, drains, upgrades).
//!
//! A task is enqueued in the transaction of the change that asks for it, with
//! its whole plan of steps. Workers in every portal process claim tasks with
//! `FOR UPDATE SKIP LOCKED` under a lease they renew; a lapsed lease (the
//! process died) lets another process take the task over, resuming at the
//! first step not yet succeeded. Steps must therefore be idempotent: check,
//! then act.

pub mod diagnostics;
mod engine;
mod reconcile;

use std::time::Duration;

use protocol::ids::{AccountId, OrganizationId, TaskId, WorkspaceId};
use protocol::views::{Page, PageRequest, TaskState, TaskView};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

pub use engine::{
    BoxFuture, Engine, EngineConfig, Handler, Observation, StepContext, StepError, default_replica,
};
pub use reconcile::{ReconcileOutcome, Reconciler, prune_runs, run_once as reconcile_once};

use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};

/// Wakes idle workers: a task became due. Payload: the kind.
pub const WAKE_CHANNEL: &str = "loopback_tasks";
/// A task was cancelled or retried (rare changes made outside the engine).
/// Payload: the task id. Step transitions are announced in process only.
pub const PROGRESS_CHANNEL: &str = "loopback_task_progress";
/// Someone asked to cancel a task. Payload: the task id.
pub const CANCEL_CHANNEL: &str = "loopback_task_cancel";

/// One step of a task's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan {
    pub name: String,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Attempts before the task fails.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles for each further one (with
    /// jitter), up to five minutes.
    pub backoff: Duration,
}

impl StepPlan {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            timeout: Duration::from_secs(60),
            max_attempts: 5,
            backoff: Duration::from_secs(1),
        }
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }
}

/// A kind of task, as the domain enqueues it. Its handler, registered with
/// the [`Engine`] under the same [`TaskSpec::KIND`], runs the steps.
pub trait TaskSpec: Serialize {
    const KIND: &'static str;
    fn title(&self) -> String;
    fn plan(&self) -> Vec<StepPlan>;
}

/// What a task works on; decides who may see and cancel it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Target {
    pub organization: Option<OrganizationId>,
    pub workspace: Option<WorkspaceId>,
}

impl Target {
    /// The platform itself: visible to operators only.
    pub fn platform() -> Self {
        Self::default()
    }
}

/// Enqueues a task in the caller's transaction; workers wake when it commits.
pub async fn enqueue<T: TaskSpec>(
    conn: &mut PgConnection,
    spec: &T,
    target: Target,
    by: Option<AccountId>,
) -> Result<TaskId> {
    let id = TaskId::new();
    let plan = spec.plan();
    if plan.is_empty() {
        return Err(Error::internal(format!(
            "task kind {} planned no steps",
            T::KIND
        )));
    }
    let input = serde_json::to_value(spec).map_err(Error::internal)?;
    sqlx::query(
        "INSERT INTO tasks (id, kind, title, input, organization_id, workspace_id, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(T::KIND)
    .bind(spec.title())
    .bind(input)
    .bind(target.organization)
    .bind(target.workspace)
    .bind(by)
    .execute(&mut *conn)
    .await?;
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let positions: Vec<i32> = (0..plan.len() as i32).collect();
    let names: Vec<&str> = plan.iter().map(|s| s.name.as_str()).collect();
    let attempts: Vec<i32> = plan
        .iter()
        .map(|s| i32::try_from(s.max_attempts).unwrap_or(i32::MAX))
        .collect();
    let timeouts: Vec<i64> = plan.iter().map(|s| millis(s.timeout)).collect();
    let backoffs: Vec<i64> = plan.iter().map(|s| millis(s.backoff)).collect();
    sqlx::query(
        "INSERT INTO task_steps (task_id, position, name, max_attempts, timeout_ms, backoff_ms)
         SELECT $1, * FROM unnest($2::int[], $3::text[], $4::int[], $5::bigint[], $6::bigint[])",
    )
    .bind(id)
    .bind(&positions)
    .bind(&names)
    .bind(&attempts)
    .bind(&timeouts)
    .bind(&backoffs)
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(WAKE_CHANNEL)
        .bind(T::KIND)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

const VIEW: &str = "SELECT t.id, t.kind, t.title, t.state, t.workspace_id, t.error,
        t.cancel_requested_at IS NOT NULL AS cancel_requested, t.created_at, t.started_at, t.finished_at,
        coalesce((SELECT json_agg(json_build_object(
                    'position', s.position, 'name', s.name, 'state', s.state, 'attempts', s.attempts,
                    'max_attempts', s.max_attempts, 'started_at', s.started_at, 'finished_at', s.finished_at,
                    'message', s.message, 'progress', s.progress) ORDER BY s.position)
                  FROM task_steps s WHERE s.task_id = t.id), '[]') AS steps
    FROM tasks t";

#[derive(sqlx::FromRow)]
struct Row {
    id: TaskId,
    kind: String,
    title: String,
    state: TaskState,
    workspace_id: Option<WorkspaceId>,
    error: Option<String>,
    cancel_requested: bool,
    created_at: OffsetDateTime,
    started_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
    steps: sqlx::types::Json<Vec<protocol::views::StepView>>,
}

impl From<Row> for TaskView {
    fn from(r: Row) -> Self {
        TaskView {
            id: r.id,
            kind: r.kind,
            title: r.title,
            state: r.state,
            workspace_id: r.workspace_id,
            error: r.error,
            cancel_requested: r.cancel_requested,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            steps: r.steps.0,
        }
    }
}

/// May `actor` do `tenant` (a workspace-level key) to this task? Operators
/// may do anything with any task; everyone else needs the key on the
/// task's workspace, and tasks without one are the operators' alone.
async fn authorize_task(
    db: &PgPool,
    actor: &Actor,
    workspace: Option<WorkspaceId>,
    tenant: Permission,
) -> Result<()> {
    if actor.is_operator {
        return authorize(db, actor, Permission::PlatformTasks, Resource::Platform)
            .await
            .map(|_| ());
    }
    match workspace {
        Some(w) => authorize(db, actor, tenant, Resource::Workspace(w))
            .await
            .map(|_| ()),
        None => Err(Error::NotFound),
    }
}

async fn find(db: &PgPool, id: TaskId) -> Result<TaskView> {
    sqlx::query_as::<_, Row>(&format!("{VIEW} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .map(TaskView::from)
        .ok_or(Error::NotFound)
}

pub async fn get(db: &PgPool, actor: &Actor, id: TaskId) -> Result<TaskView> {
    let task = find(db, id).await?;
    authorize_task(db, actor, task.workspace_id, Permission::TaskRead).await?;
    Ok(task)
}

/// A workspace's tasks, newest first.
pub async fn list_for_workspace(
    db: &PgPool,
    actor: &Actor,
    workspace: WorkspaceId,
    page: PageRequest,
) -> Result<Page<TaskView>> {
    authorize(
        db,
        actor,
        Permission::TaskRead,
        Resource::Workspace(workspace),
    )
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE workspace_id = $1")
        .bind(workspace)
        .fetch_one(db)
        .await?;
    let items: Vec<Row> = sqlx::query_as(&format!(
        "{VIEW} WHERE t.workspace_id = $1 ORDER BY t.created_at DESC, t.id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(workspace)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Ok(page.page_of(items.into_iter().map(TaskView::from).collect(), total))
}

/// Filters for the operators' task list; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub state: Option<TaskState>,
    /// Prefix of the kind, e.g. `workspace.`.
    pub kind: Option<String>,
    /// Only tasks created within this long.
    pub newer_than: Option<Duration>,
}

/// Every task, for operators.
pub async fn list_all(
    db: &PgPool,
    actor: &Actor,
    filter: &Filter,
    page: PageRequest,
) -> Result<Page<TaskView>> {
    authorize(db, actor, Permission::PlatformTasks, Resource::Platform).await?;
    let since = filter.newer_than.map(|d| OffsetDateTime::now_utc() - d);
    let kind = filter
        .kind
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let condition = "($1::task_state IS NULL OR t.state = $1)
        AND ($2::text IS NULL OR t.kind LIKE $2 || '%')
        AND ($3::timestamptz IS NULL OR t.created_at >= $3)";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM tasks t WHERE {condition}"))
        .bind(filter.state)
        .bind(kind)
        .bind(since)
        .fetch_one(db)
        .await?;
    let items: Vec<Row> = sqlx::query_as(&format!(
        "{VIEW} WHERE {condition} ORDER BY t.created_at DESC, t.id DESC LIMIT $4 OFFSET $5"
    ))
    .bind(filter.state)
    .bind(kind)
    .bind(since)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Ok(page.page_of(items.into_iter().map(TaskView::from).collect(), total))
}

/// Asks a task to stop. A queued task ends at once; a running one stops at
/// its next step boundary or when its current step notices (long waits do).
pub async fn cancel(db: &PgPool, actor: &Actor, id: TaskId) -> Result<TaskView> {
    let task = find(db, id).await?;
    authorize_task(db, actor, task.workspace_id, Permission::TaskCancel).await?;
    let mut tx = db.begin().await?;
    let changed: Option<TaskState> = sqlx::query_scalar(
        "UPDATE tasks SET cancel_requested_at = coalesce(cancel_requested_at, now()), cancelled_by = $2,
             state = CASE WHEN state = 'queued' THEN 'cancelled'::task_state ELSE state END,
             finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END
         WHERE id = $1 AND state IN ('queued', 'running')
         RETURNING state",
    )
    .bind(id)
    .bind(actor.account_id)
    .fetch_optional(&mut *tx)
    .await?;
    if changed.is_none() {
        return Err(Error::Conflict(format!(
            "the task has already {}",
            task.state.label()
        )));
    }
    notify(&mut tx, CANCEL_CHANNEL, id).await?;
    notify(&mut tx, PROGRESS_CHANNEL, id).await?;
    let mut entry =
        Entry::new("task.cancel", "task", id).details(serde_json::json!({ "kind": task.kind }));
    entry.organization_id = organization_of(&mut tx, id).await?;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    find(db, id).await
}

/// Runs a failed or cancelled task again from its first unfinished step,
/// with fresh attempts. Operators only.
pub async fn retry(db: &PgPool, actor: &Actor, id: TaskId) -> Result<TaskView> {
    authorize(db, actor, Permission::PlatformTasks, Resource::Platform).await?;
    let mut tx = db.begin().await?;
    let kind: Option<String> = sqlx::query_scalar(
        "UPDATE tasks SET state = 'queued', error = NULL, finished_at = NULL, run_at = now(),
             cancel_requested_at = NULL, cancelled_by = NULL, lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1 AND state IN ('failed', 'cancelled') RETURNING kind",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(kind) = kind else {
        return Err(match find(db, id).await {
            Ok(t) => Error::Conflict(format!(
                "only failed or cancelled tasks can be retried; this one is {}",
                t.state.label()
            )),
            Err(e) => e,
        });
    };
    sqlx::query(
        "UPDATE task_steps SET state = 'pending', attempts = 0, message = NULL, finished_at = NULL,
             progress = NULL, progress_data = NULL
         WHERE task_id = $1 AND state <> 'succeeded'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(WAKE_CHANNEL)
        .bind(&kind)
        .execute(&mut *tx)
        .await?;
    notify(&mut tx, PROGRESS_CHANNEL, id).await?;
    let mut entry =
        Entry::new("task.retry", "task", id).details(serde_json::json!({ "kind": kind }));
    entry.organization_id = organization_of(&mut tx, id).await?;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    find(db, id).await
}

/// Asks the queued or running tasks of `kind` whose input field `key` is
/// `value` to stop, as the system (a host being deleted stops its order).
pub(crate) async fn cancel_matching(
    conn: &mut PgConnection,
    kind: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    let ids: Vec<TaskId> = sqlx::query_scalar(
        "UPDATE tasks SET cancel_requested_at = coalesce(cancel_requested_at, now()),
             state = CASE WHEN state = 'queued' THEN 'cancelled'::task_state ELSE state END,
             finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END
         WHERE kind = $1 AND input->>$2 = $3 AND state IN ('queued', 'running')
         RETURNING id",
    )
    .bind(kind)
    .bind(key)
    .bind(value)
    .fetch_all(&mut *conn)
    .await?;
    for id in ids {
        notify(&mut *conn, CANCEL_CHANNEL, id).await?;
        notify(&mut *conn, PROGRESS_CHANNEL, id).await?;
    }
    Ok(())
}

async fn notify(conn: &mut PgConnection, channel: &str, id: TaskId) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

async fn organization_of(conn: &mut PgConnection, id: TaskId) -> Result<Option<OrganizationId>> {
    Ok(
        sqlx::query_scalar("SELECT organization_id FROM tasks WHERE id = $1")
            .bind(id)
            .fetch_one(conn)
            .await?,
    )
}

/// Queue figures for /metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFigures {
    /// (kind, queued and due)
    pub queued: Vec<(String, i64)>,
    pub running: i64,
    pub failed: i64,
}

pub async fn queue_figures(db: &PgPool) -> Result<QueueFigures> {
    let queued: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, count(*) FROM tasks WHERE state = 'queued' GROUP BY kind ORDER BY kind",
    )
    .fetch_all(db)
    .await?;
    let (running, failed): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'running'), count(*) FILTER (WHERE state = 'failed') FROM tasks
         WHERE state IN ('running', 'failed')",
    )
    .fetch_one(db)
    .await?;
    Ok(QueueFigures {
        queued,
        running,
        failed,
    })
}
