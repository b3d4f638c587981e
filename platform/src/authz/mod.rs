//! Authorization: who may do what to which resource. Every server function,
//! REST route and WebSocket upgrade asks [`authorize`] (single resources) or
//! filters through [`Bindings::permits`] (lists); both decide with the same
//! rules.

mod permission;

use std::collections::HashSet;
use std::net::IpAddr;

use protocol::ids::{AccountId, ApiKeyId, OrganizationId, ProjectId, WorkspaceId};
use sqlx::PgPool;

pub use permission::{BuiltinRole, Level, Permission};

use crate::error::{Error, Result};

/// Where a request came from, for the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub account_id: AccountId,
    pub email: String,
    pub is_operator: bool,
    /// Set when the request authenticated with an account API key.
    pub api_key: Option<ApiKeyId>,
    pub meta: RequestMeta,
}

/// Something permissions are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The operator console.
    Platform,
    Organization(OrganizationId),
    Project(ProjectId),
    Workspace(WorkspaceId),
}

/// What an allowed check resolved: the resource's place in the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub organization_id: Option<OrganizationId>,
    pub project_id: Option<ProjectId>,
    pub workspace_id: Option<WorkspaceId>,
}

/// The chain from a resource up to its organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    pub organization_id: OrganizationId,
    pub project_id: Option<ProjectId>,
    pub workspace_id: Option<WorkspaceId>,
}

impl Chain {
    fn level(&self) -> Level {
        match (self.project_id, self.workspace_id) {
            (_, Some(_)) => Level::Workspace,
            (Some(_), None) => Level::Project,
            (None, None) => Level::Organization,
        }
    }
}

/// One role binding of the caller in one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Binding {
    /// `None` for organization scope, else the project or workspace id.
    scope_id: Option<uuid::Uuid>,
    permissions: HashSet<Permission>,
}

/// All role bindings of one account in one organization, loaded once and
/// asked many times (for filtering lists).
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    bindings: Vec<Binding>,
}

impl Bindings {
    pub async fn load(db: &PgPool, account: AccountId, org: OrganizationId) -> Result<Self> {
        #[derive(sqlx::FromRow)]
        struct Row {
            scope_id: Option<uuid::Uuid>,
            builtin_role: Option<String>,
            permissions: Option<Vec<String>>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT rb.scope_id, rb.builtin_role, r.permissions
             FROM role_bindings rb LEFT JOIN roles r ON r.id = rb.role_id
             WHERE rb.account_id = $1 AND rb.organization_id = $2",
        )
        .bind(account)
        .bind(org)
        .fetch_all(db)
        .await?;
        Ok(Self {
            bindings: rows
                .into_iter()
                .map(|row| Binding {
                    scope_id: row.scope_id,
                    permissions: permissions_of(
                        row.builtin_role.as_deref(),
                        row.permissions.as_deref(),
                    ),
                })
                .collect(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// The keys the caller holds on the resource at the end of `chain`.
    pub fn effective(&self, chain: &Chain) -> HashSet<Permission> {
        let scopes = [
            chain.project_id.map(|p| p.0),
            chain.workspace_id.map(|w| w.0),
        ];
        self.bindings
            .iter()
            .filter(|b| match b.scope_id {
                None => true,
                Some(id) => scopes.contains(&Some(id)),
            })
            .flat_map(|b| b.permissions.iter().copied())
            .collect()
    }

    /// The single decision rule.
    pub fn permits(&self, permission: Permission, chain: &Chain) -> Decision {
        let held = self.effective(chain);
        if held.contains(&permission) {
            Decision::Allowed
        } else if held.contains(&Permission::read_key_for(chain.level())) {
            Decision::Forbidden
        } else {
            Decision::Hidden
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// The caller may see the resource but not do this to it.
    Forbidden,
    /// The caller may not even know the resource exists.
    Hidden,
}

/// For list queries that filter in SQL: the built-in roles that grant
/// `permission`, and its key (matched against custom roles). Use as
/// `(rb.builtin_role = ANY($roles) OR $key = ANY(r.permissions))` over
/// `role_bindings rb LEFT JOIN roles r ON r.id = rb.role_id`.
pub fn sql_grant(permission: Permission) -> (Vec<&'static str>, &'static str) {
    let roles = BuiltinRole::ALL
        .into_iter()
        .filter(|r| r.grants(permission))
        .map(BuiltinRole::key)
        .collect();
    (roles, permission.key())
}

fn permissions_of(builtin: Option<&str>, custom: Option<&[String]>) -> HashSet<Permission> {
    match (builtin.and_then(BuiltinRole::from_key), custom) {
        (Some(role), _) => role.permissions().into_iter().collect(),
        (None, Some(keys)) => keys
            .iter()
            .filter_map(|k| Permission::from_key(k))
            .filter(|p| p.level() != Level::Platform)
            .collect(),
        (None, None) => HashSet::new(),
    }
}

/// Resolves a resource to its chain and the organization's state.
async fn resolve(db: &PgPool, resource: Resource) -> Result<Option<(Chain, String, String)>> {
    type Row = (
        OrganizationId,
        Option<ProjectId>,
        Option<WorkspaceId>,
        String,
        String,
    );
    let row: Option<Row> = match resource {
        Resource::Platform => return Ok(None),
        Resource::Organization(id) => {
            sqlx::query_as(
                "SELECT o.id, NULL::uuid, NULL::uuid, o.verification::text, o.state::text
                 FROM organizations o WHERE o.id = $1",
            )
            .bind(id)
            .fetch_optional(db)
            .await?
        }
        Resource::Project(id) => {
            sqlx::query_as(
                "SELECT o.id, p.id, NULL::uuid, o.verification::text, o.state::text
                 FROM projects p JOIN organizations o ON o.id = p.organization_id WHERE p.id = $1",
            )
            .bind(id)
            .fetch_optional(db)
            .await?
        }
        Resource::Workspace(id) => {
            sqlx::query_as(
                "SELECT o.id, p.id, w.id, o.verification::text, o.state::text
                 FROM workspaces w JOIN projects p ON p.id = w.project_id
                 JOIN organizations o ON o.id = p.organization_id WHERE w.id = $1",
            )
            .bind(id)
            .fetch_optional(db)
            .await?
        }
    };
    Ok(row.map(
        |(organization_id, project_id, workspace_id, verification, state)| {
            (
                Chain {
                    organization_id,
                    project_id,
                    workspace_id,
                },
                verification,
                state,
            )
        },
    ))
}

/// May `actor` do `permission` to `resource`? Resources the actor may not see
/// answer [`Error::NotFound`]; visible ones without the key answer
/// [`Error::Forbidden`].
pub async fn authorize(
    db: &PgPool,
    actor: &Actor,
    permission: Permission,
    resource: Resource,
) -> Result<Grant> {
    if resource == Resource::Platform || permission.level() == Level::Platform {
        // Operator keys exist only on the platform, and only operators hold
        // them; to everyone else the console does not exist.
        return if actor.is_operator
            && resource == Resource::Platform
            && permission.level() == Level::Platform
        {
            Ok(Grant {
                organization_id: None,
                project_id: None,
                workspace_id: None,
            })
        } else {
            Err(Error::NotFound)
        };
    }
    let Some((chain, verification, state)) = resolve(db, resource).await? else {
        return Err(Error::NotFound);
    };
    let bindings = Bindings::load(db, actor.account_id, chain.organization_id).await?;
    match bindings.permits(permission, &chain) {
        Decision::Hidden => Err(Error::NotFound),
        Decision::Forbidden => Err(Error::Forbidden(permission)),
        Decision::Allowed => {
            if permission.needs_usable_organization() {
                if verification != "verified" {
                    return Err(Error::OrganizationNotUsable(format!(
                        "{verification} verification"
                    )));
                }
                if state != "active" {
                    return Err(Error::OrganizationNotUsable(state));
                }
            }
            Ok(Grant {
                organization_id: Some(chain.organization_id),
                project_id: chain.project_id,
                workspace_id: chain.workspace_id,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(project: Option<u128>, workspace: Option<u128>) -> Chain {
        Chain {
            organization_id: OrganizationId(uuid::Uuid::from_u128(1)),
            project_id: project.map(|p| ProjectId(uuid::Uuid::from_u128(p))),
            workspace_id: workspace.map(|w| WorkspaceId(uuid::Uuid::from_u128(w))),
        }
    }

    fn binding(scope: Option<u128>, role: BuiltinRole) -> Binding {
        Binding {
            scope_id: scope.map(uuid::Uuid::from_u128),
            permissions: role.permissions().into_iter().collect(),
        }
    }

    #[test]
    fn organization_bindings_reach_everything_below() {
        let b = Bindings {
            bindings: vec![binding(None, BuiltinRole::Member)],
        };
        assert_eq!(
            b.permits(Permission::HostShell, &chain(Some(10), Some(20))),
            Decision::Allowed
        );
        assert_eq!(
            b.permits(Permission::MemberManage, &chain(None, None)),
            Decision::Forbidden
        );
    }

    #[test]
    fn project_bindings_stop_at_their_project() {
        let b = Bindings {
            bindings: vec![binding(Some(10), BuiltinRole::Admin)],
        };
        assert_eq!(
            b.permits(Permission::WorkspaceCreate, &chain(Some(10), None)),
            Decision::Allowed
        );
        assert_eq!(
            b.permits(Permission::WorkspaceRead, &chain(Some(10), Some(20))),
            Decision::Allowed
        );
        assert_eq!(
            b.permits(Permission::ProjectRead, &chain(Some(11), None)),
            Decision::Hidden
        );
        assert_eq!(
            b.permits(Permission::OrganizationUpdate, &chain(None, None)),
            Decision::Hidden
        );
    }

    #[test]
    fn viewers_are_forbidden_not_blind() {
        let b = Bindings {
            bindings: vec![binding(None, BuiltinRole::Viewer)],
        };
        assert_eq!(
            b.permits(Permission::WorkspaceCreate, &chain(Some(10), None)),
            Decision::Forbidden
        );
        assert_eq!(
            b.permits(Permission::ProjectRead, &chain(Some(10), None)),
            Decision::Allowed
        );
    }

    #[test]
    fn custom_roles_grant_only_known_tenant_keys() {
        let keys = vec![
            "dns.read".to_string(),
            "platform.audit".to_string(),
            "made.up".to_string(),
        ];
        let perms = permissions_of(None, Some(&keys));
        assert_eq!(perms, HashSet::from([Permission::DnsRead]));
    }
}
