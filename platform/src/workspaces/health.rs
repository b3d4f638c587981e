//! Drift: periodically compares each active Kubernetes workspace with its
//! tenant and records what it saw, so the workspace page shows an API that
//! stopped answering.

use std::time::Duration;

use protocol::ids::WorkspaceId;

use crate::Platform;
use crate::tasks::{ReconcileOutcome, Reconciler};

/// Checks at most this many workspaces per run, least recently checked
/// first, so a large estate is covered over several runs.
const BATCH: i64 = 50;

pub fn reconciler(platform: Platform, interval: Duration) -> Reconciler {
    Reconciler::new(
        "workspaces.drift",
        interval,
        Duration::from_secs(120),
        move || {
            let platform = platform.clone();
            async move {
                let checked = check_batch(&platform).await.map_err(|e| e.to_string())?;
                Ok(ReconcileOutcome::new(format!(
                    "{checked} workspace(s) compared with their tenants"
                )))
            }
        },
    )
}

pub async fn check_batch(platform: &Platform) -> Result<usize, sqlx::Error> {
    let due: Vec<WorkspaceId> = sqlx::query_scalar(
        "SELECT id FROM workspaces WHERE state = 'active' AND kind = 'kubernetes'
           AND management_cluster_id IS NOT NULL
         ORDER BY health_checked_at NULLS FIRST LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(platform.db())
    .await?;
    for id in &due {
        let health = match check(platform, *id).await {
            Ok(()) => "healthy".to_string(),
            Err(e) => format!("API unhealthy: {e}"),
        };
        sqlx::query("UPDATE workspaces SET health = $2, health_checked_at = now() WHERE id = $1")
            .bind(id)
            .bind(health)
            .execute(platform.db())
            .await?;
    }
    Ok(due.len())
}

async fn check(platform: &Platform, id: WorkspaceId) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let client = super::pipeline::tenant_client(platform, id)
            .await
            .map_err(|e| e.to_string())?;
        super::pipeline::healthz(&client).await
    })
    .await
    .map_err(|_| "no answer within 10 s".to_string())?
}
