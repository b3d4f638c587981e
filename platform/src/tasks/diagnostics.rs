//! Task kinds for exercising the engine itself: a no-op (for throughput
//! figures) and an operator-triggered exercise whose steps can sleep, fail or
//! overrun on purpose, leaving a footprint to check: one `diagnostic_runs`
//! row per step execution and one idempotent `diagnostic_effects` row per
//! step.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use protocol::ids::TaskId;
use sqlx::PgPool;

use super::engine::BoxFuture;
use super::{Handler, StepContext, StepError, StepPlan, Target, TaskSpec, enqueue};
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};

/// Does nothing, in one step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Noop {}

impl TaskSpec for Noop {
    const KIND: &'static str = "diagnostics.noop";

    fn title(&self) -> String {
        "No-op".into()
    }

    fn plan(&self) -> Vec<StepPlan> {
        vec![StepPlan::new("nothing")]
    }
}

pub struct NoopHandler;

impl Handler for NoopHandler {
    fn kind(&self) -> &'static str {
        Noop::KIND
    }

    fn run<'a>(
        &'a self,
        _ctx: &'a StepContext,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, StepError>> {
        Box::pin(async { Ok(None) })
    }
}

/// An exercise for the engine: `steps` steps, each sleeping `sleep_ms`
/// (cancellable), failing its first `fail_attempts` executions (counted
/// across retries of the whole task too), limited to `timeout_ms` per
/// attempt and `max_attempts` attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exercise {
    pub steps: u32,
    pub sleep_ms: u64,
    pub fail_attempts: u32,
    pub timeout_ms: u64,
    pub max_attempts: u32,
    pub backoff_ms: u64,
}

impl Default for Exercise {
    fn default() -> Self {
        Self {
            steps: 3,
            sleep_ms: 500,
            fail_attempts: 0,
            timeout_ms: 30_000,
            max_attempts: 3,
            backoff_ms: 500,
        }
    }
}

impl Exercise {
    pub const MAX_STEPS: u32 = 20;
}

impl TaskSpec for Exercise {
    const KIND: &'static str = "diagnostics.exercise";

    fn title(&self) -> String {
        format!("Exercise the task engine ({} steps)", self.steps)
    }

    fn plan(&self) -> Vec<StepPlan> {
        (1..=self.steps.clamp(1, Self::MAX_STEPS))
            .map(|i| {
                StepPlan::new(format!("step {i}"))
                    .timeout(Duration::from_millis(self.timeout_ms.max(1)))
                    .max_attempts(self.max_attempts)
                    .backoff(Duration::from_millis(self.backoff_ms))
            })
            .collect()
    }
}

pub struct ExerciseHandler;

impl Handler for ExerciseHandler {
    fn kind(&self) -> &'static str {
        Exercise::KIND
    }

    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, StepError>> {
        Box::pin(async move {
            let exercise: Exercise = ctx.input()?;
            let earlier: i64 = sqlx::query_scalar(
                "WITH run AS (INSERT INTO diagnostic_runs (task_id, step, replica) VALUES ($1, $2, $3))
                 SELECT count(*) FROM diagnostic_runs WHERE task_id = $1 AND step = $2",
            )
            .bind(ctx.task())
            .bind(ctx.step())
            .bind(ctx.replica())
            .fetch_one(ctx.db())
            .await
            .map_err(StepError::retry)?;
            if earlier < i64::from(exercise.fail_attempts) {
                return Err(StepError::Retry(format!(
                    "injected failure on execution {}",
                    earlier + 1
                )));
            }
            ctx.sleep(Duration::from_millis(exercise.sleep_ms)).await?;
            // The step's external effect: idempotent, so a repeated step
            // leaves it once.
            sqlx::query("INSERT INTO diagnostic_effects (task_id, step) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(ctx.task())
                .bind(ctx.step())
                .execute(ctx.db())
                .await
                .map_err(StepError::retry)?;
            Ok(Some(
                serde_json::json!({ "replica": ctx.replica(), "attempt": ctx.attempt() }),
            ))
        })
    }
}

/// Operators start an exercise from the console to see the engine work.
pub async fn start_exercise(db: &PgPool, actor: &Actor, exercise: &Exercise) -> Result<TaskId> {
    authorize(db, actor, Permission::PlatformTasks, Resource::Platform).await?;
    if !(1..=Exercise::MAX_STEPS).contains(&exercise.steps) {
        return Err(Error::invalid(
            "steps",
            format!("choose 1 to {} steps", Exercise::MAX_STEPS),
        ));
    }
    if exercise.sleep_ms > 600_000 {
        return Err(Error::invalid(
            "sleep_ms",
            "at most 600000 ms (ten minutes) per step",
        ));
    }
    if exercise.max_attempts == 0 || exercise.max_attempts > 20 {
        return Err(Error::invalid("max_attempts", "choose 1 to 20 attempts"));
    }
    let mut tx = db.begin().await?;
    let id = enqueue(
        &mut tx,
        exercise,
        Target::platform(),
        Some(actor.account_id),
    )
    .await?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("task.start", "task", id)
            .details(serde_json::json!({ "kind": Exercise::KIND, "input": exercise })),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}
