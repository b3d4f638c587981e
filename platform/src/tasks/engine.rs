//! The workers: a dispatcher claims due tasks (and ones whose lease lapsed)
//! for free worker slots, each task runs its steps in order under a renewed
//! lease, and every transition is recorded. One LISTEN connection per process
//! wakes the dispatcher, forwards cancellations to the running step, and
//! feeds progress to live views.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::ids::TaskId;
use rand::Rng;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::reconcile::{self, Reconciler};
use super::{CANCEL_CHANNEL, PROGRESS_CHANNEL, WAKE_CHANNEL};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a process runs tasks.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Tasks run at once by this process.
    pub workers: usize,
    /// How long a claim holds without renewal; a process that dies lets its
    /// tasks go after this.
    pub lease: Duration,
    /// How often idle workers look for due tasks without being woken.
    pub poll: Duration,
    /// This process's name in leases and reconciler runs.
    pub replica: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            workers: 8,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(5),
            replica: default_replica(),
        }
    }
}

/// "host:pid:random", unique per process start.
pub fn default_replica() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let tag: u32 = rand::rng().random();
    format!("{host}:{}:{tag:08x}", std::process::id())
}

/// Why a step did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Worth another attempt after the backoff (network, a resource not
    /// ready yet).
    #[error("{0}")]
    Retry(String),
    /// Will not get better by trying again (bad input, refused by a provider).
    #[error("{0}")]
    Fatal(String),
    /// The task was cancelled while the step waited.
    #[error("cancelled")]
    Cancelled,
}

impl StepError {
    pub fn retry(e: impl std::fmt::Display) -> Self {
        Self::Retry(e.to_string())
    }

    pub fn fatal(e: impl std::fmt::Display) -> Self {
        Self::Fatal(e.to_string())
    }
}

/// Runs the steps of one kind of task.
pub trait Handler: Send + Sync + 'static {
    fn kind(&self) -> &'static str;
    /// Runs `ctx.step()` once. Returns what later steps may need.
    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, StepError>>;

    /// Called once the task failed for good or was cancelled, with the
    /// reason kept on the task: the place to record the outcome on the thing
    /// the task worked on.
    fn stopped<'a>(&'a self, _input: &'a serde_json::Value, _reason: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// What a step knows about its task, and how it waits.
pub struct StepContext {
    task: TaskId,
    step: String,
    position: i32,
    attempt: u32,
    input: serde_json::Value,
    outputs: HashMap<String, serde_json::Value>,
    db: PgPool,
    replica: String,
    cancel: CancellationToken,
}

impl StepContext {
    pub fn task(&self) -> TaskId {
        self.task
    }

    pub fn step(&self) -> &str {
        &self.step
    }

    /// 1 for the first attempt.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn db(&self) -> &PgPool {
        &self.db
    }

    pub fn input<T: DeserializeOwned>(&self) -> Result<T, StepError> {
        serde_json::from_value(self.input.clone())
            .map_err(|e| StepError::Fatal(format!("unreadable task input: {e}")))
    }

    /// What an earlier step returned.
    pub fn output_of<T: DeserializeOwned>(&self, step: &str) -> Option<T> {
        self.outputs
            .get(step)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Waits, unless the task is cancelled first.
    pub async fn sleep(&self, duration: Duration) -> Result<(), StepError> {
        tokio::select! {
            () = tokio::time::sleep(duration) => Ok(()),
            () = self.cancel.cancelled() => Err(StepError::Cancelled),
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Records how far this step got: `note` for people (the task page
    /// shows it while the step runs), `data` for the handler, which a later
    /// attempt of the step reads back with [`Self::progress_data`].
    pub async fn progress(&self, note: &str, data: &serde_json::Value) -> Result<(), StepError> {
        sqlx::query(
            "UPDATE task_steps SET progress = $3, progress_data = $4
             WHERE task_id = $1 AND position = $2
               AND EXISTS (SELECT 1 FROM tasks WHERE id = $1 AND lease_owner = $5)",
        )
        .bind(self.task)
        .bind(self.position)
        .bind(note)
        .bind(data)
        .bind(&self.replica)
        .execute(&self.db)
        .await
        .map_err(StepError::retry)?;
        Ok(())
    }

    /// The data this step last recorded with [`Self::progress`], in this
    /// attempt or an earlier one.
    pub async fn progress_data<T: DeserializeOwned>(&self) -> Result<Option<T>, StepError> {
        let data: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT progress_data FROM task_steps WHERE task_id = $1 AND position = $2",
        )
        .bind(self.task)
        .bind(self.position)
        .fetch_optional(&self.db)
        .await
        .map_err(StepError::retry)?
        .flatten();
        Ok(data.and_then(|d| serde_json::from_value(d).ok()))
    }
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    /// Bookkeeping: committing step transitions without waiting for the
    /// disk. A crash may forget the last transitions, which only means an
    /// idempotent step runs again.
    db: PgPool,
    /// For steps' own work: ordinary durable commits.
    step_db: PgPool,
    config: EngineConfig,
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
    kinds: Vec<String>,
    reconcilers: Vec<Reconciler>,
    running: Mutex<HashMap<TaskId, CancellationToken>>,
    wake: Notify,
    progress: broadcast::Sender<TaskId>,
    durations: Mutex<Vec<Observation>>,
}

/// One finished task, for the duration histogram.
#[derive(Debug, Clone)]
pub struct Observation {
    pub kind: &'static str,
    pub outcome: &'static str,
    pub seconds: f64,
}

#[derive(sqlx::FromRow)]
struct Claimed {
    id: TaskId,
    kind: String,
    input: serde_json::Value,
    cancel_requested: bool,
    steps: sqlx::types::Json<Vec<PlannedStep>>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct PlannedStep {
    position: i32,
    name: String,
    state: protocol::views::StepState,
    attempts: i32,
    max_attempts: i32,
    timeout_ms: i64,
    backoff_ms: i64,
    output: Option<serde_json::Value>,
}

/// How one task's run ended in this process.
enum Ended {
    Succeeded,
    Failed(String),
    Cancelled,
    /// Waiting for a retry, or handed back at shutdown.
    Requeued,
    /// Another process took it over; nothing more to write.
    LostLease,
}

impl Engine {
    pub fn new(db: PgPool, config: EngineConfig) -> Self {
        // Bookkeeping commits asynchronously; see `Inner::db`.
        let options = db
            .connect_options()
            .as_ref()
            .clone()
            .options([("synchronous_commit", "off")]);
        // Workers hold a connection only for a transition, not for a step,
        // so a few serve many workers.
        let bookkeeping = PgPoolOptions::new()
            .max_connections(u32::try_from(config.workers.clamp(1, 8)).unwrap_or(8) + 2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options);
        let (progress, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                db: bookkeeping,
                step_db: db,
                config,
                handlers: HashMap::new(),
                kinds: Vec::new(),
                reconcilers: Vec::new(),
                running: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                progress,
                durations: Mutex::new(Vec::new()),
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner).expect("handlers are registered before the engine starts")
    }

    pub fn handler(mut self, handler: impl Handler) -> Self {
        let inner = self.inner_mut();
        inner.kinds.push(handler.kind().to_string());
        inner.handlers.insert(handler.kind(), Arc::new(handler));
        self
    }

    pub fn reconciler(mut self, reconciler: Reconciler) -> Self {
        self.inner_mut().reconcilers.push(reconciler);
        self
    }

    /// Task ids whose state changed, as this process hears of them.
    pub fn progress(&self) -> broadcast::Receiver<TaskId> {
        self.inner.progress.subscribe()
    }

    /// Finished-task durations observed by this process since the last call.
    pub fn take_observations(&self) -> Vec<Observation> {
        self.inner
            .durations
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default()
    }

    pub fn replica(&self) -> &str {
        &self.inner.config.replica
    }

    /// Starts the listener, the workers and the reconcilers; they stop when
    /// `stop` fires, handing running tasks back for another process.
    pub fn start(self, stop: CancellationToken) -> JoinSet<()> {
        let mut set = JoinSet::new();
        set.spawn(self.clone().listen(stop.clone()));
        set.spawn(self.clone().poll(stop.clone()));
        set.spawn(self.clone().dispatch(stop.clone()));
        for r in &self.inner.reconcilers {
            set.spawn(reconcile::run(
                r.clone(),
                self.inner.step_db.clone(),
                self.inner.config.replica.clone(),
                stop.clone(),
            ));
        }
        set
    }

    async fn listen(self, stop: CancellationToken) {
        loop {
            match self.listen_once(&stop).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "task notifications lost; reconnecting");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    async fn listen_once(&self, stop: &CancellationToken) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.inner.step_db).await?;
        listener
            .listen_all([WAKE_CHANNEL, PROGRESS_CHANNEL, CANCEL_CHANNEL])
            .await?;
        // Anything missed while not listening: look now.
        self.inner.wake.notify_one();
        loop {
            let notification = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                n = listener.recv() => n?,
            };
            match notification.channel() {
                WAKE_CHANNEL => self.inner.wake.notify_one(),
                PROGRESS_CHANNEL => {
                    if let Ok(id) = notification.payload().parse() {
                        let _ = self.inner.progress.send(id);
                    }
                }
                CANCEL_CHANNEL => {
                    let Ok(id) = notification.payload().parse::<TaskId>() else {
                        continue;
                    };
                    let token = self
                        .inner
                        .running
                        .lock()
                        .ok()
                        .and_then(|r| r.get(&id).cloned());
                    match token {
                        Some(token) => {
                            tracing::info!(task = %id, "cancellation requested; stopping the running step");
                            token.cancel();
                        }
                        None => {
                            tracing::debug!(task = %id, "cancellation requested for a task not running here")
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Claims due tasks as worker slots free up. One query hands out as many
    /// tasks as there are free slots, so a busy queue costs one claim per
    /// batch rather than one per task (each claim walks past the index
    /// entries of tasks just taken), and an idle queue one query per wake.
    async fn dispatch(self, stop: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.inner.config.workers.max(1)));
        let mut running = JoinSet::new();
        loop {
            while running.try_join_next().is_some() {}
            let first = tokio::select! {
                () = stop.cancelled() => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let mut permits = vec![first];
            while let Ok(permit) = slots.clone().try_acquire_owned() {
                permits.push(permit);
            }
            let wanted = permits.len();
            match self.claim(wanted).await {
                Ok(tasks) => {
                    let more = tasks.len() == wanted;
                    for (task, permit) in tasks.into_iter().zip(permits.drain(..)) {
                        let engine = self.clone();
                        let stop = stop.clone();
                        running.spawn(async move {
                            engine.execute(task, &stop).await;
                            drop(permit);
                        });
                    }
                    drop(permits);
                    if !more {
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = self.inner.wake.notified() => {}
                        }
                    }
                }
                Err(e) => {
                    drop(permits);
                    tracing::warn!(error = %e, "claiming tasks failed");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        // Running tasks see `stop` and hand their work back.
        while running.join_next().await.is_some() {}
    }

    /// Once per interval: hand tasks whose lease lapsed (their process died)
    /// back to the queue, then wake a worker, in case a notification was
    /// missed.
    async fn poll(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.inner.config.poll) => {}
            }
            match self.requeue_lapsed().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    tasks = n,
                    "took over tasks whose process stopped renewing its lease"
                ),
                Err(e) => tracing::warn!(error = %e, "looking for lapsed task leases failed"),
            }
            self.inner.wake.notify_one();
        }
    }

    async fn requeue_lapsed(&self) -> Result<u64, sqlx::Error> {
        sqlx::query(
            "UPDATE tasks SET state = 'queued', run_at = now(), lease_owner = NULL, lease_expires_at = NULL
             WHERE state = 'running' AND lease_expires_at < now()",
        )
        .execute(&self.inner.db)
        .await
        .map(|r| r.rows_affected())
    }

    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>, sqlx::Error> {
        sqlx::query_as(
            "WITH next AS (
                 SELECT id FROM tasks
                 WHERE state = 'queued' AND run_at <= now() AND kind = ANY($2)
                 ORDER BY run_at, id LIMIT $4 FOR UPDATE SKIP LOCKED
             ), claimed AS (
                 UPDATE tasks t SET state = 'running', lease_owner = $1,
                     lease_expires_at = now() + make_interval(secs => $3), claims = t.claims + 1,
                     started_at = coalesce(t.started_at, now())
                 FROM next WHERE t.id = next.id
                 RETURNING t.id, t.kind, t.input, t.cancel_requested_at IS NOT NULL AS cancel_requested
             )
             SELECT c.id, c.kind, c.input, c.cancel_requested,
                 (SELECT json_agg(json_build_object('position', s.position, 'name', s.name, 'state', s.state,
                      'attempts', s.attempts, 'max_attempts', s.max_attempts, 'timeout_ms', s.timeout_ms,
                      'backoff_ms', s.backoff_ms, 'output', s.output) ORDER BY s.position)
                  FROM task_steps s WHERE s.task_id = c.id) AS steps
             FROM claimed c",
        )
        .bind(&self.inner.config.replica)
        .bind(&self.inner.kinds)
        .bind(self.inner.config.lease.as_secs_f64())
        .bind(i64::try_from(limit).unwrap_or(1))
        .fetch_all(&self.inner.db)
        .await
    }

    async fn execute(&self, task: Claimed, stop: &CancellationToken) {
        let started = Instant::now();
        let kind = task.kind.clone();
        let token = stop.child_token();
        if task.cancel_requested {
            token.cancel();
        }
        if let Ok(mut running) = self.inner.running.lock() {
            running.insert(task.id, token.clone());
        }
        let id = task.id;
        let input = task.input.clone();
        let handler = self.inner.handlers.get(kind.as_str()).cloned();
        let ended = match handler.clone() {
            Some(handler) => self.run_steps(task, handler, &token, stop).await,
            None => Ok(Ended::Requeued),
        };
        if let (Some(handler), Ok(ended)) = (&handler, &ended) {
            match ended {
                Ended::Failed(reason) => handler.stopped(&input, reason).await,
                Ended::Cancelled => handler.stopped(&input, "cancelled").await,
                _ => {}
            }
        }
        if let Ok(mut running) = self.inner.running.lock() {
            running.remove(&id);
        }
        let outcome = match ended {
            Ok(Ended::Succeeded) => "succeeded",
            Ok(Ended::Failed(_)) => "failed",
            Ok(Ended::Cancelled) => "cancelled",
            Ok(Ended::Requeued | Ended::LostLease) => return,
            Err(e) => {
                tracing::warn!(task = %id, error = %e, "recording task progress failed; the lease will lapse and the task resume");
                return;
            }
        };
        tracing::info!(task = %id, kind, outcome, seconds = started.elapsed().as_secs_f64(), "task finished");
        if let (Some(kind), Ok(mut d)) = (
            self.inner
                .handlers
                .get_key_value(kind.as_str())
                .map(|(k, _)| *k),
            self.inner.durations.lock(),
        ) {
            // Bounded: /metrics drains it; without a scraper, keep the newest.
            if d.len() >= 10_000 {
                d.drain(..5_000);
            }
            d.push(Observation {
                kind,
                outcome,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
    }

    async fn run_steps(
        &self,
        task: Claimed,
        handler: Arc<dyn Handler>,
        token: &CancellationToken,
        stop: &CancellationToken,
    ) -> Result<Ended, sqlx::Error> {
        let steps = task.steps.0;
        let mut outputs: HashMap<String, serde_json::Value> = steps
            .iter()
            .filter_map(|s| s.output.clone().map(|o| (s.name.clone(), o)))
            .collect();
        let last = steps.iter().map(|s| s.position).max().unwrap_or(0);
        for step in steps
            .iter()
            .filter(|s| s.state != protocol::views::StepState::Succeeded)
        {
            if stop.is_cancelled() {
                return self
                    .hand_back(
                        task.id,
                        step,
                        "the portal process stopped; another will continue",
                    )
                    .await;
            }
            if token.is_cancelled() {
                return self.finish_cancelled(task.id, step).await;
            }
            if step.attempts >= step.max_attempts {
                let message = format!(
                    "gave up after {} attempts (the last was interrupted)",
                    step.attempts
                );
                return self.finish_failed(task.id, step, &message).await;
            }
            let Some(attempt) = self.start_step(task.id, step).await? else {
                return Ok(Ended::LostLease);
            };
            let ctx = StepContext {
                task: task.id,
                step: step.name.clone(),
                position: step.position,
                attempt: u32::try_from(attempt).unwrap_or(1),
                input: task.input.clone(),
                outputs: outputs.clone(),
                db: self.inner.step_db.clone(),
                replica: self.inner.config.replica.clone(),
                cancel: token.clone(),
            };
            let timeout = Duration::from_millis(u64::try_from(step.timeout_ms).unwrap_or(60_000));
            let run = tokio::time::timeout(timeout, handler.run(&ctx));
            tokio::pin!(run);
            let mut renew = tokio::time::interval(self.inner.config.lease / 3);
            renew.tick().await;
            let mut lost = false;
            let result = loop {
                tokio::select! {
                    r = &mut run => break r,
                    _ = renew.tick() => match self.renew(task.id).await? {
                        None => { lost = true; token.cancel(); }
                        Some(true) => token.cancel(),
                        Some(false) => {}
                    },
                    () = stop.cancelled() => {
                        return self.hand_back(task.id, step, "the portal process stopped during this step; another will repeat it").await;
                    }
                }
            };
            if lost {
                return Ok(Ended::LostLease);
            }
            match result {
                Ok(Ok(output)) => {
                    if let Some(o) = &output {
                        outputs.insert(step.name.clone(), o.clone());
                    }
                    if !self
                        .finish_step(task.id, step, output, step.position == last)
                        .await?
                    {
                        return Ok(Ended::LostLease);
                    }
                }
                // The task's token is a child of `stop`: a step that saw it
                // at shutdown was not cancelled by anyone; hand it back.
                Ok(Err(StepError::Cancelled)) if stop.is_cancelled() => {
                    return self
                        .hand_back(
                            task.id,
                            step,
                            "the portal process stopped during this step; another will repeat it",
                        )
                        .await;
                }
                Ok(Err(StepError::Cancelled)) => return self.finish_cancelled(task.id, step).await,
                Ok(Err(StepError::Fatal(message))) => {
                    return self.finish_failed(task.id, step, &message).await;
                }
                Ok(Err(StepError::Retry(message))) => {
                    return self.retry_or_fail(task.id, step, attempt, &message).await;
                }
                Err(_) => {
                    let message = format!(
                        "timed out after {}",
                        protocol::views::display_duration(
                            time::OffsetDateTime::UNIX_EPOCH,
                            time::OffsetDateTime::UNIX_EPOCH + timeout,
                        )
                    );
                    return self.retry_or_fail(task.id, step, attempt, &message).await;
                }
            }
        }
        Ok(Ended::Succeeded)
    }

    /// Tells this process's watchers that `task` changed. Transitions are not
    /// announced through PostgreSQL: NOTIFY serialises the commits of every
    /// notifying transaction, which would cap throughput. Watchers elsewhere
    /// re-read periodically instead.
    fn announce(&self, task: TaskId, changed: bool) {
        if changed {
            let _ = self.inner.progress.send(task);
        }
    }

    /// Marks the step running; `None` when the lease is no longer ours.
    async fn start_step(
        &self,
        task: TaskId,
        step: &PlannedStep,
    ) -> Result<Option<i32>, sqlx::Error> {
        sqlx::query_scalar(
            "WITH s AS (
                 UPDATE task_steps SET state = 'running', attempts = attempts + 1, started_at = now(),
                     finished_at = NULL, message = NULL
                 WHERE task_id = $1 AND position = $2
                   AND EXISTS (SELECT 1 FROM tasks WHERE id = $1 AND lease_owner = $3)
                 RETURNING attempts
             )
             SELECT s.attempts FROM s",
        )
        .bind(task)
        .bind(step.position)
        .bind(&self.inner.config.replica)
        .fetch_optional(&self.inner.db)
        .await
        .inspect(|started| self.announce(task, started.is_some()))
    }

    /// Extends the lease. `None`: lost it; `Some(true)`: cancellation asked.
    async fn renew(&self, task: TaskId) -> Result<Option<bool>, sqlx::Error> {
        sqlx::query_scalar(
            "UPDATE tasks SET lease_expires_at = now() + make_interval(secs => $3)
             WHERE id = $1 AND lease_owner = $2 RETURNING cancel_requested_at IS NOT NULL",
        )
        .bind(task)
        .bind(&self.inner.config.replica)
        .bind(self.inner.config.lease.as_secs_f64())
        .fetch_optional(&self.inner.db)
        .await
    }

    /// Records a succeeded step (and the task, after its last step).
    async fn finish_step(
        &self,
        task: TaskId,
        step: &PlannedStep,
        output: Option<serde_json::Value>,
        last: bool,
    ) -> Result<bool, sqlx::Error> {
        let done: Option<i32> = sqlx::query_scalar(
            "WITH s AS (
                 UPDATE task_steps SET state = 'succeeded', finished_at = now(), output = $4
                 WHERE task_id = $1 AND position = $2
                   AND EXISTS (SELECT 1 FROM tasks WHERE id = $1 AND lease_owner = $3)
                 RETURNING 1 AS one
             ), t AS (
                 UPDATE tasks SET state = 'succeeded', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = $1 AND $5 AND lease_owner = $3 AND EXISTS (SELECT 1 FROM s)
                 RETURNING 1
             )
             SELECT s.one FROM s",
        )
        .bind(task)
        .bind(step.position)
        .bind(&self.inner.config.replica)
        .bind(output)
        .bind(last)
        .fetch_optional(&self.inner.db)
        .await?;
        self.announce(task, done.is_some());
        Ok(done.is_some())
    }

    /// Ends the task with a step state and a task state, if the lease is
    /// still ours.
    async fn end(
        &self,
        task: TaskId,
        step: &PlannedStep,
        step_state: &str,
        task_state: &str,
        message: Option<&str>,
        run_after: Option<Duration>,
    ) -> Result<bool, sqlx::Error> {
        let requeue = run_after.is_some();
        // Others may take it at once; a delayed retry wakes this process when
        // due (and any process's poll finds it too).
        let wake_everyone = run_after == Some(Duration::ZERO);
        let ended: Option<i32> = sqlx::query_scalar(
            "WITH t AS (
                 UPDATE tasks SET state = $4::task_state,
                     error = CASE WHEN $4 = 'failed' THEN $6 ELSE error END,
                     finished_at = CASE WHEN $7 THEN NULL ELSE now() END,
                     run_at = CASE WHEN $7 THEN now() + make_interval(secs => $8) ELSE run_at END,
                     lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = $1 AND lease_owner = $3
                 RETURNING 1 AS one
             ), s AS (
                 UPDATE task_steps SET state = $5::step_state, message = $6,
                     finished_at = CASE WHEN $5 = 'pending' THEN finished_at ELSE now() END
                 WHERE task_id = $1 AND position = $2 AND EXISTS (SELECT 1 FROM t)
             )
             SELECT t.one, CASE WHEN $10 THEN pg_notify($9, 'requeued') END FROM t",
        )
        .bind(task)
        .bind(step.position)
        .bind(&self.inner.config.replica)
        .bind(task_state)
        .bind(step_state)
        .bind(message)
        .bind(requeue)
        .bind(run_after.unwrap_or_default().as_secs_f64())
        .bind(WAKE_CHANNEL)
        .bind(wake_everyone)
        .fetch_optional(&self.inner.db)
        .await?;
        self.announce(task, ended.is_some());
        if let Some(wait) = run_after.filter(|w| !w.is_zero())
            && ended.is_some()
        {
            let engine = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                engine.inner.wake.notify_one();
            });
        }
        Ok(ended.is_some())
    }

    async fn retry_or_fail(
        &self,
        task: TaskId,
        step: &PlannedStep,
        attempt: i32,
        message: &str,
    ) -> Result<Ended, sqlx::Error> {
        if attempt >= step.max_attempts {
            let message = format!("{message} (gave up after {attempt} attempts)");
            return self.finish_failed(task, step, &message).await;
        }
        let wait = backoff(
            Duration::from_millis(u64::try_from(step.backoff_ms).unwrap_or(1000)),
            attempt,
        );
        tracing::info!(%task, step = %step.name, attempt, error = message, retry_in = ?wait, "step failed; retrying");
        let note = format!("attempt {attempt} failed: {message}; retrying");
        Ok(
            if self
                .end(task, step, "pending", "queued", Some(&note), Some(wait))
                .await?
            {
                Ended::Requeued
            } else {
                Ended::LostLease
            },
        )
    }

    async fn finish_failed(
        &self,
        task: TaskId,
        step: &PlannedStep,
        message: &str,
    ) -> Result<Ended, sqlx::Error> {
        tracing::warn!(%task, step = %step.name, error = message, "task failed");
        Ok(
            if self
                .end(task, step, "failed", "failed", Some(message), None)
                .await?
            {
                Ended::Failed(message.to_string())
            } else {
                Ended::LostLease
            },
        )
    }

    async fn finish_cancelled(
        &self,
        task: TaskId,
        step: &PlannedStep,
    ) -> Result<Ended, sqlx::Error> {
        Ok(
            if self
                .end(task, step, "cancelled", "cancelled", None, None)
                .await?
            {
                Ended::Cancelled
            } else {
                Ended::LostLease
            },
        )
    }

    /// Gives the task back at shutdown so another process continues now,
    /// not when the lease lapses.
    async fn hand_back(
        &self,
        task: TaskId,
        step: &PlannedStep,
        message: &str,
    ) -> Result<Ended, sqlx::Error> {
        self.end(
            task,
            step,
            "pending",
            "queued",
            Some(message),
            Some(Duration::ZERO),
        )
        .await?;
        Ok(Ended::Requeued)
    }
}

/// `base · 2^(attempt-1)`, at most five minutes, ±20 % jitter so that tasks
/// failing together do not retry together.
pub(crate) fn backoff(base: Duration, attempt: i32) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let raw = base
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(Duration::from_secs(300));
    let jitter: f64 = rand::rng().random_range(0.8..1.2);
    raw.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_with_jitter_and_a_ceiling() {
        for _ in 0..100 {
            let first = backoff(Duration::from_secs(1), 1);
            assert!(
                first >= Duration::from_millis(800) && first <= Duration::from_millis(1200),
                "{first:?}"
            );
            let third = backoff(Duration::from_secs(1), 3);
            assert!(
                third >= Duration::from_millis(3200) && third <= Duration::from_millis(4800),
                "{third:?}"
            );
            assert!(backoff(Duration::from_secs(1), 40) <= Duration::from_secs(360));
        }
    }
}
