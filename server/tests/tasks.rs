//! The task engine across real server processes sharing one database.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use platform::tasks::diagnostics::Exercise;
use platform::tasks::{self, Target};
use protocol::ids::TaskId;
use sqlx::PgPool;
use support::{Launch, Portal, fresh_database, server_fn, sign_up};

async fn enqueue(db: &PgPool, exercises: &[Exercise]) -> Vec<TaskId> {
    let mut tx = db.begin().await.unwrap();
    let mut ids = Vec::new();
    for e in exercises {
        ids.push(
            tasks::enqueue(&mut tx, e, Target::platform(), None)
                .await
                .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    ids
}

async fn wait_until_finished(db: &PgPool, ids: &[TaskId], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE id = ANY($1) AND state NOT IN ('succeeded', 'failed', 'cancelled')")
            .bind(ids.iter().map(|i| i.0).collect::<Vec<_>>())
            .fetch_one(db)
            .await
            .unwrap();
        if open == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{open} tasks still open after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn workers(db: &str, lease_secs: u64) -> Portal {
    Launch::with_database(db.to_string())
        .arg("--task-workers")
        .arg("4")
        .arg("--task-lease-secs")
        .arg(&lease_secs.to_string())
        .spawn()
}

#[tokio::test]
async fn two_processes_run_each_task_exactly_once() {
    let url = fresh_database().await;
    let mut a = workers(&url, 30);
    let mut b = workers(&url, 30);
    a.ready().await;
    b.ready().await;
    let db = PgPool::connect(&url).await.unwrap();

    let exercise = Exercise {
        steps: 2,
        sleep_ms: 5,
        ..Default::default()
    };
    let ids = enqueue(&db, &vec![exercise; 200]).await;
    wait_until_finished(&db, &ids, Duration::from_secs(90)).await;

    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state::text, count(*) FROM tasks GROUP BY 1")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(states, vec![("succeeded".to_string(), 200)]);
    let repeated: i64 = sqlx::query_scalar("SELECT count(*) FROM (SELECT task_id, step FROM diagnostic_runs GROUP BY 1, 2 HAVING count(*) <> 1) r")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(repeated, 0, "every step ran exactly once");
    let executions: i64 = sqlx::query_scalar("SELECT count(*) FROM diagnostic_runs")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(executions, 400);
    let per_replica: Vec<(String, i64)> =
        sqlx::query_as("SELECT replica, count(*) FROM diagnostic_runs GROUP BY 1")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        per_replica.len(),
        2,
        "both processes worked: {per_replica:?}"
    );
}

#[tokio::test]
async fn a_process_killed_mid_step_is_taken_over_and_the_step_takes_effect_once() {
    let url = fresh_database().await;
    let mut a = workers(&url, 2);
    let mut b = workers(&url, 2);
    a.ready().await;
    b.ready().await;
    let db = PgPool::connect(&url).await.unwrap();
    let ids = enqueue(
        &db,
        &[Exercise {
            steps: 3,
            sleep_ms: 2_500,
            ..Default::default()
        }],
    )
    .await;
    let id = ids[0];

    // Wait until step 2 is under way, then kill its process outright.
    let deadline = Instant::now() + Duration::from_secs(30);
    let owner: String = loop {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT t.lease_owner, s.state::text FROM tasks t JOIN task_steps s ON s.task_id = t.id AND s.position = 1
             WHERE t.id = $1 AND t.lease_owner IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&db)
        .await
        .unwrap();
        if let Some((owner, step)) = row
            && step == "running"
        {
            break owner;
        }
        assert!(Instant::now() < deadline, "step 2 never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (victim, survivor) = if owner.contains(&format!(":{}:", a.pid())) {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(
        owner.contains(&format!(":{}:", victim.pid())),
        "owner {owner}"
    );
    victim.signal(Signal::SIGKILL);
    let _ = victim.exit_status(Duration::from_secs(5)).await;

    wait_until_finished(&db, &ids, Duration::from_secs(30)).await;
    assert!(survivor.is_running());
    let (state, owner_after): (String, Option<String>) =
        sqlx::query_as("SELECT state::text, lease_owner FROM tasks WHERE id = $1")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(state, "succeeded");
    assert_eq!(owner_after, None);
    let runs: HashMap<String, i64> = sqlx::query_as(
        "SELECT step, count(*) FROM diagnostic_runs WHERE task_id = $1 GROUP BY step",
    )
    .bind(id)
    .fetch_all(&db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(runs["step 1"], 1, "finished steps are not repeated");
    assert_eq!(
        runs["step 2"], 2,
        "the interrupted step ran again on the other process"
    );
    assert_eq!(runs["step 3"], 1);
    let effects: Vec<String> =
        sqlx::query_scalar("SELECT step FROM diagnostic_effects WHERE task_id = $1 ORDER BY step")
            .bind(id)
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        effects,
        vec!["step 1", "step 2", "step 3"],
        "each step's effect happened once"
    );
    let takeover: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT replica FROM diagnostic_runs WHERE task_id = $1 AND step = 'step 3'",
    )
    .bind(id)
    .fetch_all(&db)
    .await
    .unwrap();
    assert!(
        takeover[0].contains(&format!(":{}:", survivor.pid())),
        "the survivor finished it"
    );
}

#[tokio::test]
async fn progress_streams_to_watchers_and_metrics_count_tasks() {
    let url = fresh_database().await;
    let mut portal = workers(&url, 30);
    portal.ready().await;
    let base = portal.url("");
    let db = PgPool::connect(&url).await.unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = sign_up(&client, &base, "olivia@example.com").await;
    sqlx::query("UPDATE accounts SET is_operator = true")
        .execute(&db)
        .await
        .unwrap();

    let started = server_fn(
        &client,
        &base,
        "admin_run_exercise",
        Some(&cookie),
        &[("steps", "3"), ("sleep_ms", "300"), ("fail_attempts", "0")],
    )
    .await;
    assert!(started.status().is_success(), "{}", started.status());
    let id: String = started.json().await.unwrap();

    let response = client
        .get(format!("{base}/api/tasks/{id}/events"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut response = response;
    let mut text = String::new();
    let collected = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(collected.is_ok(), "the stream ends when the task does");
    let updates: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        updates.len() >= 4,
        "several updates as steps progress, got {}",
        updates.len()
    );
    let last = updates.last().unwrap();
    assert_eq!(last["state"], "succeeded");
    assert!(
        last["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "succeeded")
    );
    assert!(
        updates.iter().any(|u| u["steps"][1]["state"] == "running"),
        "a step was seen running"
    );

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("loopback_tasks_running 0"), "{metrics}");
    assert!(metrics.contains("loopback_tasks_failed 0"), "{metrics}");
    assert!(
        metrics.contains(r#"loopback_task_duration_seconds_count{kind="diagnostics.exercise",outcome="succeeded"} 1"#),
        "{metrics}"
    );
}
