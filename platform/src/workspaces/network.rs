//! Managed networks: when the portal has an address pool, each workspace
//! gets its own block of it, made by a system task of its own that
//! provisioning waits for.

use std::net::Ipv4Addr;
use std::time::Duration;

use protocol::ids::WorkspaceId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;

use crate::tasks::{BoxFuture, Handler, StepContext, StepError, StepPlan, TaskSpec};

/// An IPv4 pool carved into equal blocks: `10.64.0.0/12` in /20s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    base: Ipv4Addr,
    prefix: u8,
    block: u8,
}

impl Pool {
    /// `pool` as `a.b.c.d/n`, blocks of `/block`.
    pub fn parse(pool: &str, block: u8) -> Result<Self, String> {
        let (addr, prefix) = pool
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("{pool:?} is not a CIDR block such as 10.64.0.0/12"))?;
        let base: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("/{prefix} is not a prefix length"))?;
        if block < prefix || block > 30 {
            return Err(format!(
                "blocks of /{block} do not fit a /{prefix} pool (use /{prefix} to /30)"
            ));
        }
        let mask = u32::MAX.checked_shl(u32::from(32 - prefix)).unwrap_or(0);
        if u32::from(base) & !mask != 0 {
            return Err(format!("{pool} has host bits set"));
        }
        Ok(Self {
            base,
            prefix,
            block,
        })
    }

    pub fn slots(&self) -> u32 {
        1u32.checked_shl(u32::from(self.block - self.prefix))
            .unwrap_or(u32::MAX)
    }

    pub fn cidr(&self, slot: u32) -> String {
        let size = 1u32.checked_shl(u32::from(32 - self.block)).unwrap_or(0);
        let start = u32::from(self.base).wrapping_add(slot.wrapping_mul(size));
        format!("{}/{}", Ipv4Addr::from(start), self.block)
    }
}

/// Makes a workspace's network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateNetwork {
    pub workspace: WorkspaceId,
}

impl TaskSpec for CreateNetwork {
    const KIND: &'static str = "network.create";

    fn title(&self) -> String {
        "Create the workspace network".into()
    }

    fn plan(&self) -> Vec<StepPlan> {
        vec![StepPlan::new("allocate"), StepPlan::new("activate")]
    }
}

pub struct CreateNetworkHandler {
    db: PgPool,
    pool: Pool,
}

impl CreateNetworkHandler {
    pub fn new(db: PgPool, pool: Pool) -> Self {
        Self { db, pool }
    }

    async fn step(&self, ctx: &StepContext) -> Result<Option<serde_json::Value>, StepError> {
        let task: CreateNetwork = ctx.input()?;
        match ctx.step() {
            "allocate" => {
                let mut tx = self.db.begin().await.map_err(StepError::retry)?;
                // One allocation at a time: the lowest free slot.
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext('networks.allocate'))")
                    .execute(&mut *tx)
                    .await
                    .map_err(StepError::retry)?;
                if let Some(cidr) = sqlx::query_scalar::<_, String>(
                    "SELECT cidr FROM networks WHERE workspace_id = $1",
                )
                .bind(task.workspace)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StepError::retry)?
                {
                    return Ok(Some(json!({ "cidr": cidr })));
                }
                let slot: Option<i32> = sqlx::query_scalar(
                    "SELECT min(s) FROM generate_series(0, $1 - 1) AS s
                     WHERE NOT EXISTS (SELECT 1 FROM networks n WHERE n.slot = s)",
                )
                .bind(i32::try_from(self.pool.slots()).unwrap_or(i32::MAX))
                .fetch_one(&mut *tx)
                .await
                .map_err(StepError::retry)?;
                let slot = slot.ok_or_else(|| {
                    StepError::fatal(
                        "the managed network pool is exhausted; an operator must enlarge it",
                    )
                })?;
                let cidr = self.pool.cidr(u32::try_from(slot).unwrap_or(0));
                sqlx::query(
                    "INSERT INTO networks (id, workspace_id, slot, cidr) VALUES (gen_random_uuid(), $1, $2, $3)",
                )
                .bind(task.workspace)
                .bind(slot)
                .bind(&cidr)
                .execute(&mut *tx)
                .await
                .map_err(StepError::retry)?;
                tx.commit().await.map_err(StepError::retry)?;
                Ok(Some(json!({ "cidr": cidr })))
            }
            "activate" => {
                sqlx::query("UPDATE networks SET state = 'ready' WHERE workspace_id = $1")
                    .bind(task.workspace)
                    .execute(&self.db)
                    .await
                    .map_err(StepError::retry)?;
                Ok(None)
            }
            other => Err(StepError::fatal(format!("unknown step {other}"))),
        }
    }
}

impl Handler for CreateNetworkHandler {
    fn kind(&self) -> &'static str {
        CreateNetwork::KIND
    }

    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, StepError>> {
        Box::pin(self.step(ctx))
    }
}

/// Provisioning's first step: queue the network task (once) and wait for it.
pub(crate) async fn ensure(
    db: &PgPool,
    ctx: &StepContext,
    workspace: WorkspaceId,
) -> Result<Option<serde_json::Value>, StepError> {
    let existing: Option<(protocol::ids::TaskId, String, Option<String>)> = sqlx::query_as(
        "SELECT id, state::text, error FROM tasks WHERE kind = $1 AND input->>'workspace' = $2
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(CreateNetwork::KIND)
    .bind(workspace.to_string())
    .fetch_optional(db)
    .await
    .map_err(StepError::retry)?;
    let task = match existing {
        Some((task, _, _)) => task,
        None => {
            let org: Option<protocol::ids::OrganizationId> = sqlx::query_scalar(
                "SELECT p.organization_id FROM workspaces w JOIN projects p ON p.id = w.project_id WHERE w.id = $1",
            )
            .bind(workspace)
            .fetch_optional(db)
            .await
            .map_err(StepError::retry)?;
            let mut tx = db.begin().await.map_err(StepError::retry)?;
            let task = crate::tasks::enqueue(
                &mut tx,
                &CreateNetwork { workspace },
                crate::tasks::Target {
                    organization: org,
                    workspace: Some(workspace),
                },
                None,
            )
            .await
            .map_err(StepError::retry)?;
            tx.commit().await.map_err(StepError::retry)?;
            task
        }
    };
    loop {
        let (state, error): (String, Option<String>) =
            sqlx::query_as("SELECT state::text, error FROM tasks WHERE id = $1")
                .bind(task)
                .fetch_one(db)
                .await
                .map_err(StepError::retry)?;
        match state.as_str() {
            "succeeded" => {
                let cidr: Option<String> =
                    sqlx::query_scalar("SELECT cidr FROM networks WHERE workspace_id = $1")
                        .bind(workspace)
                        .fetch_optional(db)
                        .await
                        .map_err(StepError::retry)?;
                return Ok(Some(json!({ "network_task": task, "cidr": cidr })));
            }
            "failed" | "cancelled" => {
                return Err(StepError::fatal(format!(
                    "the workspace network could not be created: {}",
                    error.unwrap_or(state)
                )));
            }
            _ => ctx.sleep(Duration::from_millis(200)).await?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pool;

    #[test]
    fn pools_are_carved_into_blocks() {
        let pool = Pool::parse("10.64.0.0/12", 20).unwrap();
        assert_eq!(pool.slots(), 256);
        assert_eq!(pool.cidr(0), "10.64.0.0/20");
        assert_eq!(pool.cidr(1), "10.64.16.0/20");
        assert_eq!(pool.cidr(255), "10.79.240.0/20");
        assert!(Pool::parse("10.64.0.1/12", 20).is_err());
        assert!(Pool::parse("10.64.0.0/12", 8).is_err());
        assert!(Pool::parse("nonsense", 20).is_err());
    }
}
