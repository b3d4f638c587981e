//! Keeps every load balancer applied at its backend: each pass resolves the
//! targets to their current addresses, converges the backend to the spec,
//! and stores what it reports (state, address, target health, drift it
//! corrected, errors). Load balancers marked for deletion are removed at
//! the backend, then their rows.
//!
//! One load balancer is worked on by one caller at a time (a transaction
//! advisory lock per id), whether the periodic pass or the prompt apply
//! after a change; whoever finds it busy leaves it to the other.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use protocol::ids::LoadBalancerId;
use protocol::views::load_balancers::{HealthCheck, LoadBalancerState};
use sqlx::types::Json;

use super::backends::Backend;
use super::local::LocalBalancers;
use super::spec::{Applied, BalancerSpec};
use super::{Row, StoredTarget, VIEW};
use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::error::{Error, Result};
use crate::tasks::{ReconcileOutcome, Reconciler};

/// Load balancers converged at once in a pass (each holds a connection
/// while its backend works).
const PARALLEL: usize = 4;
/// How often an unchanged cloud load balancer is checked for drift: each
/// check costs API requests, and Hetzner Cloud allows 3600 an hour per
/// project. Changes are applied at once regardless.
pub const CLOUD_RECHECK: Duration = Duration::from_secs(60);

/// What one pass did to one load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied; carries the drift it corrected, if any.
    Applied { corrected: Vec<String> },
    /// Removed at the backend and from the portal.
    Removed,
    /// The backend refused or failed; stored as `last_error`.
    Failed(String),
    /// Someone else is working on it right now.
    Busy,
}

pub fn reconciler(platform: Platform, interval: Duration) -> Reconciler {
    Reconciler::new(
        "loadbalancers",
        interval,
        Duration::from_secs(300),
        move || {
            let platform = platform.clone();
            async move {
                let outcomes = converge_due(&platform, CLOUD_RECHECK)
                    .await
                    .map_err(|e| e.to_string())?;
                let drifted = outcomes
                    .iter()
                    .filter(|(_, o)| matches!(o, Outcome::Applied { corrected } if !corrected.is_empty()))
                    .count();
                let failed = outcomes
                    .iter()
                    .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
                    .count();
                Ok(ReconcileOutcome::new(format!(
                    "{} load balancers, {drifted} drift corrected, {failed} failed",
                    outcomes.len()
                )))
            }
        },
    )
}

/// One pass over every load balancer.
pub async fn converge(platform: &Platform) -> Result<Vec<(LoadBalancerId, Outcome)>> {
    converge_due(platform, Duration::ZERO).await
}

/// One pass over the load balancers that are due: all local ones, and
/// cloud ones changed since their last apply or not checked for `recheck`.
pub async fn converge_due(
    platform: &Platform,
    recheck: Duration,
) -> Result<Vec<(LoadBalancerId, Outcome)>> {
    let all: Vec<Row> = sqlx::query_as(&format!("{VIEW} ORDER BY l.id"))
        .fetch_all(platform.db())
        .await?;
    let now = time::OffsetDateTime::now_utc();
    let due = |row: &Row| {
        row.backend == "local"
            || row.state == LoadBalancerState::Deleting
            || match row.reconciled_at {
                None => true,
                Some(at) => at < row.updated_at || (now - at).unsigned_abs() >= recheck,
            }
    };
    let (rows, skipped): (Vec<Row>, Vec<Row>) = all.into_iter().partition(|r| due(r));
    // Skipped rows are known, not orphans.
    let known: Vec<&Row> = rows.iter().chain(skipped.iter()).collect();
    // Local balancers the process lost (a portal restart) come back on the
    // addresses clients knew.
    let mut missing = HashSet::new();
    if let Some(local) = platform.local_balancers() {
        for row in rows.iter().filter(|r| r.backend == "local") {
            if row.backend_ref.is_some() && local.status(row.id).is_none() {
                missing.insert(row.id);
            }
        }
        restore_addresses(local, &rows, &missing).await;
        remove_orphans(platform, local, &known).await?;
    }
    let missing = Arc::new(missing);
    let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut work = tokio::task::JoinSet::new();
    for row in &rows {
        let (platform, missing, limit, id) =
            (platform.clone(), missing.clone(), limit.clone(), row.id);
        work.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let outcome = reconcile_one(&platform, id, missing.contains(&id)).await;
            (id, outcome)
        });
    }
    let mut outcomes = Vec::with_capacity(rows.len());
    while let Some(done) = work.join_next().await {
        let (id, outcome) = done.map_err(Error::internal)?;
        let outcome = outcome.unwrap_or_else(|e| Outcome::Failed(e.to_string()));
        outcomes.push((id, outcome));
    }
    outcomes.sort_by_key(|(id, _)| *id);
    Ok(outcomes)
}

/// Applies one load balancer now (after a change), so its address and
/// state show without waiting for the next pass. Failures are stored on
/// the row like the reconciler's.
pub(crate) async fn apply_now(platform: &Platform, id: LoadBalancerId) {
    let backend: Option<String> =
        sqlx::query_scalar("SELECT backend FROM load_balancers WHERE id = $1")
            .bind(id)
            .fetch_optional(platform.db())
            .await
            .ok()
            .flatten();
    let Some(backend) = backend else { return };
    if backend == "local" {
        // Local applies take milliseconds: answer with the result.
        if let Err(e) = reconcile_one(platform, id, false).await {
            tracing::warn!(%id, error = %e, "applying a load balancer failed");
        }
    } else {
        // Cloud actions take seconds to minutes; the reconciler's lock
        // keeps this and the periodic pass apart.
        let platform = platform.clone();
        tokio::spawn(async move {
            if let Err(e) = reconcile_one(&platform, id, false).await {
                tracing::warn!(%id, error = %e, "applying a load balancer failed");
            }
        });
    }
}

/// The spec a backend is given for `row`, its host targets resolved.
async fn spec_of(platform: &Platform, row: &Row) -> Result<BalancerSpec> {
    let hosts = super::target_hosts(platform.db(), row.targets.0.iter().copied()).await?;
    let mut targets: Vec<IpAddr> = Vec::new();
    for target in &row.targets.0 {
        if let Some(address) = super::resolve(*target, &hosts)
            && !targets.contains(&address)
        {
            targets.push(address);
        }
    }
    Ok(BalancerSpec {
        id: row.id,
        name: backend_name(&row.name, row.id),
        listeners: row.listeners.0.clone(),
        targets,
        algorithm: row.algorithm.0,
        health: row.health.0.clone(),
    })
}

/// A name unique across every organization sharing a backend account,
/// still recognisable: `<name>-<12 hex digits of the id>`.
fn backend_name(name: &str, id: LoadBalancerId) -> String {
    let simple = id.0.simple().to_string();
    let suffix = &simple[simple.len() - 12..];
    let head: String = name.chars().take(50).collect();
    format!("{}-{suffix}", head.trim_end_matches('-'))
}

async fn reconcile_one(platform: &Platform, id: LoadBalancerId, missing: bool) -> Result<Outcome> {
    let db = platform.db();
    let mut tx = db.begin().await?;
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("loadbalancer:{id}"))
            .fetch_one(&mut *tx)
            .await?;
    if !locked {
        return Ok(Outcome::Busy);
    }
    let row: Option<Row> = sqlx::query_as(&format!("{VIEW} WHERE l.id = $1"))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else {
        return Ok(Outcome::Removed);
    };
    let backend = match Backend::of(platform, &row.backend, row.provider_id).await {
        Ok(backend) => backend,
        Err(e) => {
            record_error(&mut tx, id, &e).await?;
            tx.commit().await?;
            return Ok(Outcome::Failed(e));
        }
    };
    if row.state == LoadBalancerState::Deleting {
        return match backend.remove(id, row.backend_ref.as_deref()).await {
            Ok(()) => {
                sqlx::query("DELETE FROM load_balancers WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Outcome::Removed)
            }
            Err(e) => {
                record_error(&mut tx, id, &e).await?;
                tx.commit().await?;
                Ok(Outcome::Failed(e))
            }
        };
    }
    let spec = spec_of(platform, &row).await?;
    let applied = backend.apply(&spec, row.backend_ref.as_deref()).await;
    let outcome = match applied {
        Ok(mut applied) => {
            if missing && !applied.corrected.iter().any(|c| c.contains("not running")) {
                applied
                    .corrected
                    .insert(0, "the load balancer was not running".into());
            }
            record_applied(&mut tx, &row, &applied).await?;
            Outcome::Applied {
                corrected: applied.corrected,
            }
        }
        Err(e) => {
            record_error(&mut tx, id, &e).await?;
            Outcome::Failed(e)
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

async fn record_applied(tx: &mut sqlx::PgConnection, row: &Row, applied: &Applied) -> Result<()> {
    let statuses: Vec<StoredTarget> = applied
        .status
        .targets
        .iter()
        .map(|t| StoredTarget {
            address: t.address,
            port: t.port,
            health: t.health,
        })
        .collect();
    let drift = (!applied.corrected.is_empty()).then(|| applied.corrected.join("; "));
    // A delete saved while the backend worked wins over this result.
    sqlx::query(
        "UPDATE load_balancers SET
             state = CASE WHEN state = 'deleting' THEN state ELSE 'active' END,
             backend_ref = $2, address = coalesce($3, address), target_status = $4,
             last_error = NULL, drift = coalesce($5, drift),
             drift_at = CASE WHEN $5::text IS NULL THEN drift_at ELSE now() END,
             reconciled_at = now()
         WHERE id = $1",
    )
    .bind(row.id)
    .bind(&applied.backend_ref)
    .bind(applied.status.address.map(|a| a.to_string()))
    .bind(Json(&statuses))
    .bind(&drift)
    .execute(&mut *tx)
    .await?;
    if let Some(drift) = drift {
        tracing::info!(id = %row.id, name = %row.name, %drift, "load balancer drift corrected");
        audit::record(
            tx,
            By::System,
            Entry::new("loadbalancer.drift_corrected", "load_balancer", row.id)
                .in_org(row.organization_id)
                .details(serde_json::json!({ "name": row.name, "corrected": applied.corrected })),
        )
        .await?;
    }
    Ok(())
}

async fn record_error(tx: &mut sqlx::PgConnection, id: LoadBalancerId, error: &str) -> Result<()> {
    sqlx::query(
        "UPDATE load_balancers SET
             state = CASE WHEN state = 'deleting' THEN state ELSE 'error' END,
             last_error = $2, reconciled_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The local backend derives a balancer's address from its id (probing on
/// when that one is taken), so a restarted balancer usually gets its old
/// address back whatever the order; claiming them one by one in creation
/// order (ids are time-ordered) also repeats how collisions were resolved.
/// Each is claimed empty under its own id; the pass then applies its spec.
async fn restore_addresses(
    local: &LocalBalancers,
    rows: &[Row],
    missing: &HashSet<LoadBalancerId>,
) {
    for row in rows.iter().filter(|r| missing.contains(&r.id)) {
        if let Err(e) = local.apply(&empty_spec(row.id)).await {
            tracing::warn!(id = %row.id, error = %e, "cannot restart a local load balancer");
        }
    }
}

fn empty_spec(id: LoadBalancerId) -> BalancerSpec {
    BalancerSpec {
        id,
        name: format!("restoring-{id}"),
        listeners: Vec::new(),
        targets: Vec::new(),
        algorithm: Default::default(),
        health: HealthCheck::default(),
    }
}

/// Local balancers without a row (deleted while the portal was down, or
/// with their workspace) stop.
async fn remove_orphans(platform: &Platform, local: &LocalBalancers, rows: &[&Row]) -> Result<()> {
    let known: HashSet<LoadBalancerId> = rows.iter().map(|r| r.id).collect();
    let candidates: Vec<LoadBalancerId> = local
        .ids()
        .into_iter()
        .filter(|id| !known.contains(id))
        .collect();
    if candidates.is_empty() {
        return Ok(());
    }
    // Rows created since the pass read the table are not orphans.
    let exist: Vec<LoadBalancerId> =
        sqlx::query_scalar("SELECT id FROM load_balancers WHERE id = ANY($1)")
            .bind(&candidates)
            .fetch_all(platform.db())
            .await?;
    for id in candidates.into_iter().filter(|id| !exist.contains(id)) {
        tracing::info!(%id, "stopping a local load balancer that has no record");
        local.remove(id).await;
    }
    Ok(())
}
