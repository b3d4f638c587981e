//! The audit log: one entry per mutation, written in the mutation's own
//! transaction so that a change and its record commit or vanish together.

use protocol::ids::{AccountId, AuditEntryId, OrganizationId};
use protocol::views::AuditView;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::Result;

/// A mutation about to be recorded.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub organization_id: Option<OrganizationId>,
    /// Dotted verb, e.g. `project.create`.
    pub action: &'a str,
    pub target_kind: &'a str,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
}

impl<'a> Entry<'a> {
    pub fn new(action: &'a str, target_kind: &'a str, target_id: impl ToString) -> Self {
        Self {
            organization_id: None,
            action,
            target_kind,
            target_id: Some(target_id.to_string()),
            details: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn in_org(mut self, org: OrganizationId) -> Self {
        self.organization_id = Some(org);
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Who did it. Accounts not yet signed in (sign-up, password reset) are
/// recorded by their account id once known.
#[derive(Debug, Clone, Copy)]
pub enum By<'a> {
    Actor(&'a Actor),
    Account {
        id: AccountId,
        email: &'a str,
        meta: &'a crate::authz::RequestMeta,
    },
    System,
}

pub async fn record(conn: &mut PgConnection, by: By<'_>, entry: Entry<'_>) -> Result<()> {
    let (account, email, api_key, meta) = match by {
        By::Actor(a) => (
            Some(a.account_id),
            Some(a.email.as_str()),
            a.api_key,
            Some(&a.meta),
        ),
        By::Account { id, email, meta } => (Some(id), Some(email), None, Some(meta)),
        By::System => (None, None, None, None),
    };
    let ip = meta.and_then(|m| m.ip).map(|ip| ip.to_string());
    let user_agent = meta.and_then(|m| m.user_agent.clone());
    sqlx::query(
        "INSERT INTO audit_log (id, actor_account_id, actor_email, api_key_id, organization_id,
                                action, target_kind, target_id, details, ip, user_agent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::inet, $11)",
    )
    .bind(AuditEntryId::new())
    .bind(account)
    .bind(email)
    .bind(api_key)
    .bind(entry.organization_id)
    .bind(entry.action)
    .bind(entry.target_kind)
    .bind(entry.target_id)
    .bind(entry.details)
    .bind(ip)
    .bind(user_agent)
    .execute(conn)
    .await?;
    Ok(())
}

/// Filters for reading the log; every field narrows.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Prefix of the action, e.g. `project.` or `member.invite`.
    pub action: Option<String>,
    /// Substring of the actor's email.
    pub actor: Option<String>,
    pub since: Option<OffsetDateTime>,
    /// Entries strictly older than this (keyset pagination).
    pub before: Option<OffsetDateTime>,
    pub limit: i64,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            action: None,
            actor: None,
            since: None,
            before: None,
            limit: 50,
        }
    }
}

const SELECT: &str = "SELECT id, occurred_at, actor_email, api_key_id IS NOT NULL AS via_api_key,
        organization_id, action, target_kind, target_id, details::text AS details, host(ip) AS ip, user_agent
    FROM audit_log
    WHERE ($1::uuid IS NULL OR organization_id = $1)
      AND ($2::text IS NULL OR action LIKE $2 || '%')
      AND ($3::text IS NULL OR actor_email ILIKE '%' || $3 || '%')
      AND ($4::timestamptz IS NULL OR occurred_at >= $4)
      AND ($5::timestamptz IS NULL OR occurred_at < $5)
    ORDER BY occurred_at DESC, id DESC
    LIMIT $6";

async fn query(
    db: &PgPool,
    org: Option<OrganizationId>,
    filter: &Filter,
) -> Result<Vec<AuditView>> {
    Ok(sqlx::query_as(SELECT)
        .bind(org)
        .bind(filter.action.as_deref().filter(|s| !s.is_empty()))
        .bind(filter.actor.as_deref().filter(|s| !s.is_empty()))
        .bind(filter.since)
        .bind(filter.before)
        .bind(filter.limit.clamp(1, 500))
        .fetch_all(db)
        .await?)
}

/// An organization's log, for its owners and admins (`audit.read`).
pub async fn for_organization(
    db: &PgPool,
    actor: &Actor,
    org: OrganizationId,
    filter: &Filter,
) -> Result<Vec<AuditView>> {
    authorize(
        db,
        actor,
        Permission::AuditRead,
        Resource::Organization(org),
    )
    .await?;
    query(db, Some(org), filter).await
}

/// Every entry, for operators (`platform.audit`).
pub async fn all(db: &PgPool, actor: &Actor, filter: &Filter) -> Result<Vec<AuditView>> {
    authorize(db, actor, Permission::PlatformAudit, Resource::Platform).await?;
    query(db, None, filter).await
}
