//! The task engine in process, against a real database: steps in order,
//! retries, giving up, timeouts, cancellation, operator retries, progress.

mod support;

use std::time::{Duration, Instant};

use platform::Error;
use platform::tasks::diagnostics::{Exercise, ExerciseHandler, NoopHandler};
use platform::tasks::{self, Engine, EngineConfig, Target};
use protocol::ids::TaskId;
use protocol::views::{StepState, TaskState, TaskView};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

fn engine(db: &PgPool, replica: &str) -> Engine {
    Engine::new(
        db.clone(),
        EngineConfig {
            workers: 4,
            lease: Duration::from_secs(5),
            poll: Duration::from_secs(2),
            replica: replica.into(),
        },
    )
    .handler(ExerciseHandler)
    .handler(NoopHandler)
}

async fn enqueue(db: &PgPool, exercise: &Exercise) -> TaskId {
    let mut tx = db.begin().await.unwrap();
    let id = tasks::enqueue(&mut tx, exercise, Target::platform(), None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn wait_for(
    db: &PgPool,
    operator: &platform::authz::Actor,
    id: TaskId,
    within: Duration,
) -> TaskView {
    let deadline = Instant::now() + within;
    loop {
        let task = tasks::get(db, operator, id).await.unwrap();
        if task.state.is_finished() {
            return task;
        }
        assert!(
            Instant::now() < deadline,
            "task still {:?} after {within:?}: {task:#?}",
            task.state
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn runs(db: &PgPool, id: TaskId) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT step, count(*) FROM diagnostic_runs WHERE task_id = $1 GROUP BY step ORDER BY step",
    )
    .bind(id)
    .fetch_all(db)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn steps_run_in_order_and_the_task_succeeds(db: PgPool) {
    let op = support::operator(&db).await;
    let stop = CancellationToken::new();
    let mut running = engine(&db, "r1").start(stop.clone());
    let id = enqueue(
        &db,
        &Exercise {
            steps: 3,
            sleep_ms: 10,
            ..Default::default()
        },
    )
    .await;
    let task = wait_for(&db, &op, id, Duration::from_secs(10)).await;
    assert_eq!(task.state, TaskState::Succeeded);
    assert_eq!(
        task.steps.iter().map(|s| s.state).collect::<Vec<_>>(),
        vec![StepState::Succeeded; 3]
    );
    assert!(
        task.steps
            .windows(2)
            .all(|w| w[0].finished_at <= w[1].started_at),
        "in order"
    );
    assert!(task.steps.iter().all(|s| s.attempts == 1));
    assert_eq!(
        runs(&db, id).await,
        vec![
            ("step 1".into(), 1),
            ("step 2".into(), 1),
            ("step 3".into(), 1)
        ]
    );
    stop.cancel();
    while running.join_next().await.is_some() {}
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn failing_steps_retry_with_backoff_then_succeed_or_give_up(db: PgPool) {
    let op = support::operator(&db).await;
    let stop = CancellationToken::new();
    let _running = engine(&db, "r1").start(stop.clone());
    let recovers = enqueue(
        &db,
        &Exercise {
            steps: 2,
            sleep_ms: 0,
            fail_attempts: 2,
            max_attempts: 3,
            backoff_ms: 50,
            ..Default::default()
        },
    )
    .await;
    let gives_up = enqueue(
        &db,
        &Exercise {
            steps: 2,
            sleep_ms: 0,
            fail_attempts: 5,
            max_attempts: 2,
            backoff_ms: 50,
            ..Default::default()
        },
    )
    .await;

    let task = wait_for(&db, &op, recovers, Duration::from_secs(15)).await;
    assert_eq!(task.state, TaskState::Succeeded, "{task:#?}");
    assert!(task.steps.iter().all(|s| s.attempts == 3));

    let task = wait_for(&db, &op, gives_up, Duration::from_secs(15)).await;
    assert_eq!(task.state, TaskState::Failed);
    let error = task.error.clone().unwrap();
    assert!(
        error.contains("injected failure") && error.contains("gave up after 2 attempts"),
        "{error}"
    );
    assert_eq!(task.steps[0].state, StepState::Failed);
    assert_eq!(
        task.steps[1].state,
        StepState::Pending,
        "later steps never ran"
    );
    assert_eq!(runs(&db, gives_up).await, vec![("step 1".into(), 2)]);

    // An operator retry starts the failed step afresh; the exercise's
    // injected failures are used up by now, so it succeeds.
    let exhausted = enqueue(
        &db,
        &Exercise {
            steps: 1,
            sleep_ms: 0,
            fail_attempts: 1,
            max_attempts: 1,
            backoff_ms: 50,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        wait_for(&db, &op, exhausted, Duration::from_secs(15))
            .await
            .state,
        TaskState::Failed
    );
    let retried = tasks::retry(&db, &op, exhausted).await.unwrap();
    // Queued, or already claimed by the time retry read it back.
    assert_ne!(retried.state, TaskState::Failed);
    assert_eq!(
        wait_for(&db, &op, exhausted, Duration::from_secs(15))
            .await
            .state,
        TaskState::Succeeded
    );
    assert!(
        matches!(
            tasks::retry(&db, &op, exhausted).await,
            Err(Error::Conflict(_))
        ),
        "only failed tasks"
    );
    stop.cancel();
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_step_that_overruns_its_timeout_is_retried_then_fails(db: PgPool) {
    let op = support::operator(&db).await;
    let stop = CancellationToken::new();
    let _running = engine(&db, "r1").start(stop.clone());
    let started = Instant::now();
    let id = enqueue(
        &db,
        &Exercise {
            steps: 1,
            sleep_ms: 5_000,
            timeout_ms: 200,
            max_attempts: 2,
            backoff_ms: 50,
            ..Default::default()
        },
    )
    .await;
    let task = wait_for(&db, &op, id, Duration::from_secs(10)).await;
    assert_eq!(task.state, TaskState::Failed);
    let error = task.error.unwrap();
    assert!(
        error.contains("timed out after 200 ms") && error.contains("2 attempts"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "did not wait for the 5 s sleep: {:?}",
        started.elapsed()
    );
    assert_eq!(task.steps[0].attempts, 2);
    let effects: i64 =
        sqlx::query_scalar("SELECT count(*) FROM diagnostic_effects WHERE task_id = $1")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(effects, 0, "an overrun step's work is abandoned");
    stop.cancel();
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn cancellation_stops_a_long_wait_and_skips_later_steps(db: PgPool) {
    let op = support::operator(&db).await;
    let stop = CancellationToken::new();
    let _running = engine(&db, "r1").start(stop.clone());
    let id = enqueue(
        &db,
        &Exercise {
            steps: 3,
            sleep_ms: 30_000,
            ..Default::default()
        },
    )
    .await;
    // Wait until step 1 is under way.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tasks::get(&db, &op, id).await.unwrap().steps[0].state != StepState::Running {
        assert!(Instant::now() < deadline, "step 1 never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let asked = Instant::now();
    let view = tasks::cancel(&db, &op, id).await.unwrap();
    assert!(view.cancel_requested);
    let task = wait_for(&db, &op, id, Duration::from_secs(5)).await;
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "cancelled within {:?}",
        asked.elapsed()
    );
    assert_eq!(task.state, TaskState::Cancelled);
    assert_eq!(task.steps[0].state, StepState::Cancelled);
    assert_eq!(task.steps[1].state, StepState::Pending);
    assert_eq!(runs(&db, id).await.len(), 1);
    assert!(
        matches!(tasks::cancel(&db, &op, id).await, Err(Error::Conflict(_))),
        "already finished"
    );
    stop.cancel();
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_queued_task_cancels_at_once(db: PgPool) {
    let op = support::operator(&db).await;
    let id = enqueue(&db, &Exercise::default()).await;
    let view = tasks::cancel(&db, &op, id).await.unwrap();
    assert_eq!(view.state, TaskState::Cancelled);
    let audit: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'task.cancel'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(audit, 1);
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_task_whose_process_vanished_is_taken_over_after_the_lease(db: PgPool) {
    let op = support::operator(&db).await;
    let id = enqueue(
        &db,
        &Exercise {
            steps: 2,
            sleep_ms: 10,
            ..Default::default()
        },
    )
    .await;
    // A process claimed it, finished step 1, started step 2 and died.
    sqlx::query("UPDATE tasks SET state = 'running', lease_owner = 'dead', lease_expires_at = now() - interval '1 second', claims = 1 WHERE id = $1")
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE task_steps SET state = 'succeeded', attempts = 1 WHERE task_id = $1 AND position = 0")
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE task_steps SET state = 'running', attempts = 1 WHERE task_id = $1 AND position = 1",
    )
    .bind(id)
    .execute(&db)
    .await
    .unwrap();
    let stop = CancellationToken::new();
    let _running = engine(&db, "survivor").start(stop.clone());
    let task = wait_for(&db, &op, id, Duration::from_secs(10)).await;
    assert_eq!(task.state, TaskState::Succeeded);
    assert_eq!(task.steps[1].attempts, 2, "step 2 ran again");
    assert_eq!(
        runs(&db, id).await,
        vec![("step 2".into(), 1)],
        "step 1 was not repeated"
    );
    stop.cancel();
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn progress_is_announced_and_new_tasks_wake_workers_at_once(db: PgPool) {
    let op = support::operator(&db).await;
    let stop = CancellationToken::new();
    let engine = Engine::new(
        db.clone(),
        EngineConfig {
            workers: 2,
            lease: Duration::from_secs(5),
            poll: Duration::from_secs(60),
            replica: "r1".into(),
        },
    )
    .handler(ExerciseHandler);
    let mut progress = engine.progress();
    let _running = engine.start(stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // With a 60 s poll, only the notification can start it promptly.
    let id = enqueue(
        &db,
        &Exercise {
            steps: 1,
            sleep_ms: 0,
            ..Default::default()
        },
    )
    .await;
    let task = wait_for(&db, &op, id, Duration::from_secs(5)).await;
    assert_eq!(task.state, TaskState::Succeeded);
    let heard = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if progress.recv().await.unwrap() == id {
                break;
            }
        }
    })
    .await;
    assert!(heard.is_ok(), "a progress notification for the task");
    stop.cancel();
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn tenants_see_only_their_workspaces_tasks(db: PgPool) {
    let alice = support::actor(&db, "alice@example.com").await;
    let mallory = support::actor(&db, "mallory@example.com").await;
    let op = support::operator(&db).await;
    let org = platform::tenancy::organizations::create(&db, &alice, "Acme")
        .await
        .unwrap();
    platform::tenancy::organizations::set_verification(
        &db,
        &op,
        org.id,
        protocol::views::Verification::Verified,
        "",
    )
    .await
    .unwrap();
    let project = platform::tenancy::projects::create(&db, &alice, org.id, "Web")
        .await
        .unwrap();
    let ws = support::workspace(&db, &alice, project.id, "prod")
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    let id = tasks::enqueue(
        &mut tx,
        &Exercise::default(),
        Target {
            organization: Some(org.id),
            workspace: Some(ws.id),
        },
        Some(alice.account_id),
    )
    .await
    .unwrap();
    let system = tasks::enqueue(&mut tx, &Exercise::default(), Target::platform(), None)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(tasks::get(&db, &alice, id).await.unwrap().id, id);
    assert!(matches!(
        tasks::get(&db, &mallory, id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        tasks::cancel(&db, &mallory, id).await,
        Err(Error::NotFound)
    ));
    assert!(
        matches!(tasks::get(&db, &alice, system).await, Err(Error::NotFound)),
        "system tasks are the operators'"
    );
    // The exercise and the workspace's own provisioning task.
    assert_eq!(
        tasks::list_for_workspace(&db, &alice, ws.id, Default::default())
            .await
            .unwrap()
            .total,
        2
    );
    assert!(matches!(
        tasks::list_for_workspace(&db, &mallory, ws.id, Default::default()).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        tasks::list_all(&db, &alice, &Default::default(), Default::default()).await,
        Err(Error::NotFound)
    ));
    assert!(
        matches!(tasks::retry(&db, &alice, id).await, Err(Error::NotFound)),
        "retrying is for operators"
    );
    assert_eq!(
        tasks::list_all(&db, &op, &Default::default(), Default::default())
            .await
            .unwrap()
            .total,
        3
    );
    let figures = tasks::queue_figures(&db).await.unwrap();
    assert_eq!(
        figures.queued,
        vec![
            ("diagnostics.exercise".to_string(), 2),
            ("workspace.provision".to_string(), 1)
        ]
    );
}
