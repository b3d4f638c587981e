//! Members of an organization, their role bindings, and invitations by email.
//! Every organization keeps at least one owner.

use std::collections::BTreeMap;

use protocol::ids::{AccountId, InvitationId, OrganizationId, RoleBindingId, RoleId};
use protocol::views::{BindingView, InvitationView, MemberView, RoleRef, ScopeKind, ScopeView};
use sqlx::{PgConnection, PgPool};
use time::{Duration, OffsetDateTime};

use crate::audit::{self, By, Entry};
use crate::authz::{Actor, BuiltinRole, Permission, Resource, authorize};
use crate::crypto::{new_token, token_digest};
use crate::error::{Error, Result};
use crate::identity::normalize_email;
use crate::mail;

pub const INVITATION_TTL: Duration = Duration::days(7);

/// A role to grant: built-in by key, or one of the organization's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleSpec {
    Builtin(BuiltinRole),
    Custom(RoleId),
}

impl RoleSpec {
    /// "owner", "admin", "member", "viewer" or "custom:<role id>".
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        if let Some(id) = raw.strip_prefix("custom:") {
            return id
                .parse()
                .map(RoleSpec::Custom)
                .map_err(|_| Error::invalid(field, "choose a role from the list"));
        }
        BuiltinRole::from_key(raw)
            .map(RoleSpec::Builtin)
            .ok_or_else(|| Error::invalid(field, "choose a role from the list"))
    }

    fn columns(self) -> (Option<&'static str>, Option<RoleId>) {
        match self {
            RoleSpec::Builtin(r) => (Some(r.key()), None),
            RoleSpec::Custom(id) => (None, Some(id)),
        }
    }
}

/// Where to bind a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Organization,
    Project(protocol::ids::ProjectId),
    Workspace(protocol::ids::WorkspaceId),
}

async fn is_owner(
    conn: &mut PgConnection,
    org: OrganizationId,
    account: AccountId,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM role_bindings WHERE organization_id = $1 AND account_id = $2
                        AND scope_kind = 'organization' AND builtin_role = 'owner')",
    )
    .bind(org)
    .bind(account)
    .fetch_one(conn)
    .await?)
}

/// Granting the owner role is for owners only.
async fn check_grantable(
    conn: &mut PgConnection,
    actor: &Actor,
    org: OrganizationId,
    role: RoleSpec,
) -> Result<()> {
    match role {
        RoleSpec::Builtin(BuiltinRole::Owner) if !is_owner(conn, org, actor.account_id).await? => {
            Err(Error::invalid(
                "role",
                "only owners can make someone an owner",
            ))
        }
        RoleSpec::Custom(id) => {
            let ours: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM roles WHERE id = $1 AND organization_id = $2)",
            )
            .bind(id)
            .bind(org)
            .fetch_one(conn)
            .await?;
            if ours {
                Ok(())
            } else {
                Err(Error::invalid("role", "choose a role from the list"))
            }
        }
        _ => Ok(()),
    }
}

/// Locks the organization and fails if removing `account`'s owner bindings
/// (all of them, or just `binding`) would leave it without an owner.
async fn keep_an_owner(
    conn: &mut PgConnection,
    org: OrganizationId,
    account: AccountId,
    binding: Option<RoleBindingId>,
) -> Result<()> {
    sqlx::query("SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE")
        .bind(org)
        .execute(&mut *conn)
        .await?;
    let remaining: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT account_id) FROM role_bindings
         WHERE organization_id = $1 AND scope_kind = 'organization' AND builtin_role = 'owner'
           AND NOT (account_id = $2 AND ($3::uuid IS NULL OR id = $3))",
    )
    .bind(org)
    .bind(account)
    .bind(binding)
    .fetch_one(&mut *conn)
    .await?;
    if remaining == 0 {
        Err(Error::Conflict(
            "the last owner cannot leave or lose the owner role; make someone else an owner first"
                .into(),
        ))
    } else {
        Ok(())
    }
}

pub async fn list(db: &PgPool, actor: &Actor, org: OrganizationId) -> Result<Vec<MemberView>> {
    authorize(
        db,
        actor,
        Permission::MemberRead,
        Resource::Organization(org),
    )
    .await?;
    let members: Vec<(AccountId, String, String, OffsetDateTime)> = sqlx::query_as(
        "SELECT a.id, a.email, a.display_name, m.created_at
         FROM memberships m JOIN accounts a ON a.id = m.account_id
         WHERE m.organization_id = $1 ORDER BY lower(a.display_name), a.email",
    )
    .bind(org)
    .fetch_all(db)
    .await?;
    type BindingRow = (
        RoleBindingId,
        AccountId,
        ScopeKind,
        Option<uuid::Uuid>,
        Option<String>,
        Option<String>,
        Option<RoleId>,
        Option<String>,
    );
    let bindings: Vec<BindingRow> = sqlx::query_as(
        "SELECT rb.id, rb.account_id, rb.scope_kind, rb.scope_id,
                coalesce(p.name, w.name), rb.builtin_role, r.id, r.name
         FROM role_bindings rb
         LEFT JOIN roles r ON r.id = rb.role_id
         LEFT JOIN projects p ON rb.scope_kind = 'project' AND p.id = rb.scope_id
         LEFT JOIN workspaces w ON rb.scope_kind = 'workspace' AND w.id = rb.scope_id
         WHERE rb.organization_id = $1 ORDER BY rb.scope_kind, rb.created_at",
    )
    .bind(org)
    .fetch_all(db)
    .await?;
    let mut by_account: BTreeMap<AccountId, Vec<BindingView>> = BTreeMap::new();
    for (id, account, kind, scope_id, scope_name, builtin, role_id, role_name) in bindings {
        let role = match (builtin, role_id, role_name) {
            (Some(key), _, _) => RoleRef::Builtin(key),
            (None, Some(id), Some(name)) => RoleRef::Custom { id, name },
            _ => continue,
        };
        by_account.entry(account).or_default().push(BindingView {
            id,
            scope: ScopeView {
                kind,
                id: scope_id,
                name: scope_name.unwrap_or_else(|| "whole organization".into()),
            },
            role,
        });
    }
    Ok(members
        .into_iter()
        .map(|(account_id, email, display_name, joined_at)| MemberView {
            bindings: by_account.remove(&account_id).unwrap_or_default(),
            account_id,
            email,
            display_name,
            joined_at,
        })
        .collect())
}

pub async fn bind(
    db: &PgPool,
    actor: &Actor,
    org: OrganizationId,
    account: AccountId,
    scope: Scope,
    role: RoleSpec,
) -> Result<RoleBindingId> {
    let resource = match scope {
        Scope::Organization => Resource::Organization(org),
        Scope::Project(p) => Resource::Project(p),
        Scope::Workspace(w) => Resource::Workspace(w),
    };
    let grant = authorize(db, actor, Permission::MemberManage, resource).await?;
    if grant.organization_id != Some(org) {
        return Err(Error::NotFound);
    }
    let (kind, scope_id) = match scope {
        Scope::Organization => ("organization", None),
        Scope::Project(p) => ("project", Some(p.0)),
        Scope::Workspace(w) => ("workspace", Some(w.0)),
    };
    if scope != Scope::Organization && role == RoleSpec::Builtin(BuiltinRole::Owner) {
        return Err(Error::invalid(
            "role",
            "owner applies to the whole organization only",
        ));
    }
    let mut tx = db.begin().await?;
    check_grantable(&mut tx, actor, org, role).await?;
    let member: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM memberships WHERE organization_id = $1 AND account_id = $2)",
    )
    .bind(org)
    .bind(account)
    .fetch_one(&mut *tx)
    .await?;
    if !member {
        return Err(Error::invalid(
            "account",
            "invite this person to the organization first",
        ));
    }
    let (builtin, role_id) = role.columns();
    let id = RoleBindingId::new();
    sqlx::query(
        "INSERT INTO role_bindings (id, organization_id, account_id, scope_kind, scope_id, builtin_role, role_id)
         VALUES ($1, $2, $3, $4::scope_kind, $5, $6, $7)",
    )
    .bind(id)
    .bind(org)
    .bind(account)
    .bind(kind)
    .bind(scope_id)
    .bind(builtin)
    .bind(role_id)
    .execute(&mut *tx)
    .await
    .map_err(|e| Error::unique_violation_as(e, "this member already has that role there"))?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("member.bind", "account", account)
            .in_org(org)
            .details(serde_json::json!({ "binding": id, "scope": kind, "scope_id": scope_id, "role": builtin.map(str::to_string).or(role_id.map(|r| r.to_string())) })),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn unbind(
    db: &PgPool,
    actor: &Actor,
    org: OrganizationId,
    binding: RoleBindingId,
) -> Result<()> {
    authorize(
        db,
        actor,
        Permission::MemberManage,
        Resource::Organization(org),
    )
    .await?;
    let mut tx = db.begin().await?;
    let row: Option<(AccountId, Option<String>)> = sqlx::query_as(
        "SELECT account_id, builtin_role FROM role_bindings WHERE id = $1 AND organization_id = $2",
    )
    .bind(binding)
    .bind(org)
    .fetch_optional(&mut *tx)
    .await?;
    let (account, builtin) = row.ok_or(Error::NotFound)?;
    if builtin.as_deref() == Some("owner") {
        if !is_owner(&mut tx, org, actor.account_id).await? {
            return Err(Error::invalid(
                "role",
                "only owners can take the owner role away",
            ));
        }
        keep_an_owner(&mut tx, org, account, Some(binding)).await?;
    }
    sqlx::query("DELETE FROM role_bindings WHERE id = $1")
        .bind(binding)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("member.unbind", "account", account)
            .in_org(org)
            .details(serde_json::json!({ "binding": binding, "role": builtin })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes a member (or, for oneself, leaves the organization).
pub async fn remove(
    db: &PgPool,
    actor: &Actor,
    org: OrganizationId,
    account: AccountId,
) -> Result<()> {
    let leaving = account == actor.account_id;
    let needed = if leaving {
        Permission::OrganizationRead
    } else {
        Permission::MemberManage
    };
    authorize(db, actor, needed, Resource::Organization(org)).await?;
    let mut tx = db.begin().await?;
    let member: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM memberships WHERE organization_id = $1 AND account_id = $2)",
    )
    .bind(org)
    .bind(account)
    .fetch_one(&mut *tx)
    .await?;
    if !member {
        return Err(Error::NotFound);
    }
    if is_owner(&mut tx, org, account).await? {
        if !leaving && !is_owner(&mut tx, org, actor.account_id).await? {
            return Err(Error::invalid("account", "only owners can remove an owner"));
        }
        keep_an_owner(&mut tx, org, account, None).await?;
    }
    sqlx::query("DELETE FROM memberships WHERE organization_id = $1 AND account_id = $2")
        .bind(org)
        .bind(account)
        .execute(&mut *tx)
        .await?;
    let action = if leaving {
        "member.leave"
    } else {
        "member.remove"
    };
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new(action, "account", account).in_org(org),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

// ----- invitations -----

type InvitationRow = (
    InvitationId,
    OrganizationId,
    String,
    String,
    Option<String>,
    Option<RoleId>,
    Option<String>,
    Option<String>,
    OffsetDateTime,
    OffsetDateTime,
);

const INVITATION_SELECT: &str = "SELECT i.id, i.organization_id, o.name, i.email, i.builtin_role, i.role_id, r.name, inviter.email, i.created_at, i.expires_at
    FROM invitations i JOIN organizations o ON o.id = i.organization_id
    LEFT JOIN roles r ON r.id = i.role_id
    LEFT JOIN accounts inviter ON inviter.id = i.invited_by";

const PENDING: &str = "i.accepted_at IS NULL AND i.declined_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()";

fn invitation_view(row: InvitationRow) -> InvitationView {
    let (
        id,
        organization_id,
        organization_name,
        email,
        builtin,
        role_id,
        role_name,
        invited_by,
        created_at,
        expires_at,
    ) = row;
    let role = match (builtin, role_id, role_name) {
        (Some(key), _, _) => RoleRef::Builtin(key),
        (None, Some(id), Some(name)) => RoleRef::Custom { id, name },
        _ => RoleRef::Builtin("viewer".into()),
    };
    InvitationView {
        id,
        organization_id,
        organization_name,
        email,
        role,
        invited_by,
        created_at,
        expires_at,
    }
}

/// Invites `email` with `role`, mailing them a link. A newer invitation to
/// the same address replaces a pending one.
pub async fn invite(
    db: &PgPool,
    actor: &Actor,
    public_url: &url::Url,
    org: OrganizationId,
    email: &str,
    role: RoleSpec,
) -> Result<InvitationView> {
    authorize(
        db,
        actor,
        Permission::MemberInvite,
        Resource::Organization(org),
    )
    .await?;
    let email = normalize_email("email", email)?;
    let mut tx = db.begin().await?;
    check_grantable(&mut tx, actor, org, role).await?;
    let already: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM memberships m JOIN accounts a ON a.id = m.account_id
                        WHERE m.organization_id = $1 AND a.email = $2)",
    )
    .bind(org)
    .bind(&email)
    .fetch_one(&mut *tx)
    .await?;
    if already {
        return Err(Error::invalid("email", "this person is already a member"));
    }
    sqlx::query(&format!(
        "UPDATE invitations i SET revoked_at = now() WHERE i.organization_id = $1 AND i.email = $2 AND {PENDING}"
    ))
    .bind(org)
    .bind(&email)
    .execute(&mut *tx)
    .await?;
    let token = new_token();
    let id = InvitationId::new();
    let (builtin, role_id) = role.columns();
    sqlx::query(
        "INSERT INTO invitations (id, organization_id, email, builtin_role, role_id, token_hash, invited_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(org)
    .bind(&email)
    .bind(builtin)
    .bind(role_id)
    .bind(token_digest(&token))
    .bind(actor.account_id)
    .bind(OffsetDateTime::now_utc() + INVITATION_TTL)
    .execute(&mut *tx)
    .await?;
    let view = invitation_view(
        sqlx::query_as(&format!("{INVITATION_SELECT} WHERE i.id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?,
    );
    let link = format!(
        "{}/invitations/{token}",
        public_url.as_str().trim_end_matches('/')
    );
    mail::enqueue(
        &mut tx,
        &email,
        &format!("You are invited to {} on Loopback", view.organization_name),
        &format!(
            "Hello,\n\n{} invited you to join the organization \"{}\" on Loopback as {}.\n\n\
             Open this link within 7 days to accept or decline (sign up first if you have no account yet, with this address):\n\n{link}\n",
            actor.email,
            view.organization_name,
            view.role.name()
        ),
    )
    .await?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("member.invite", "invitation", id)
            .in_org(org)
            .details(serde_json::json!({ "email": email, "role": view.role.name() })),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

pub async fn list_invitations(
    db: &PgPool,
    actor: &Actor,
    org: OrganizationId,
) -> Result<Vec<InvitationView>> {
    authorize(
        db,
        actor,
        Permission::MemberRead,
        Resource::Organization(org),
    )
    .await?;
    let rows: Vec<InvitationRow> = sqlx::query_as(&format!(
        "{INVITATION_SELECT} WHERE i.organization_id = $1 AND {PENDING} ORDER BY i.created_at DESC"
    ))
    .bind(org)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(invitation_view).collect())
}

pub async fn revoke_invitation(
    db: &PgPool,
    actor: &Actor,
    org: OrganizationId,
    id: InvitationId,
) -> Result<()> {
    authorize(
        db,
        actor,
        Permission::MemberInvite,
        Resource::Organization(org),
    )
    .await?;
    let mut tx = db.begin().await?;
    let revoked = sqlx::query(&format!(
        "UPDATE invitations i SET revoked_at = now() WHERE i.id = $1 AND i.organization_id = $2 AND {PENDING}"
    ))
    .bind(id)
    .bind(org)
    .execute(&mut *tx)
    .await?;
    if revoked.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("member.invite_revoke", "invitation", id).in_org(org),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Pending invitations addressed to the caller's email.
pub async fn my_invitations(db: &PgPool, actor: &Actor) -> Result<Vec<InvitationView>> {
    let rows: Vec<InvitationRow> = sqlx::query_as(&format!(
        "{INVITATION_SELECT} WHERE i.email = $1 AND {PENDING} ORDER BY i.created_at DESC"
    ))
    .bind(&actor.email)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(invitation_view).collect())
}

/// The pending invitation behind an emailed link, if it is for the caller.
pub async fn invitation_for_link(
    db: &PgPool,
    actor: &Actor,
    token: &str,
) -> Result<InvitationView> {
    let row: Option<InvitationRow> = sqlx::query_as(&format!(
        "{INVITATION_SELECT} WHERE i.token_hash = $1 AND {PENDING}"
    ))
    .bind(token_digest(token))
    .fetch_optional(db)
    .await?;
    let view = row.map(invitation_view).ok_or_else(|| {
        Error::invalid(
            "token",
            "this invitation is not valid any more; ask for a new one",
        )
    })?;
    if view.email != actor.email {
        return Err(Error::invalid(
            "token",
            format!(
                "this invitation is for {}; sign in with that address to answer it",
                view.email
            ),
        ));
    }
    Ok(view)
}

/// Accepts or declines one of the caller's pending invitations.
pub async fn respond(db: &PgPool, actor: &Actor, id: InvitationId, accept: bool) -> Result<()> {
    let mut tx = db.begin().await?;
    let row: Option<(OrganizationId, Option<String>, Option<RoleId>)> = sqlx::query_as(&format!(
        "SELECT i.organization_id, i.builtin_role, i.role_id FROM invitations i
         WHERE i.id = $1 AND i.email = $2 AND {PENDING} FOR UPDATE"
    ))
    .bind(id)
    .bind(&actor.email)
    .fetch_optional(&mut *tx)
    .await?;
    let (org, builtin, role_id) = row.ok_or(Error::NotFound)?;
    let column = if accept { "accepted_at" } else { "declined_at" };
    sqlx::query(&format!(
        "UPDATE invitations SET {column} = now() WHERE id = $1"
    ))
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if accept {
        sqlx::query("INSERT INTO memberships (organization_id, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(org)
            .bind(actor.account_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO role_bindings (id, organization_id, account_id, scope_kind, builtin_role, role_id)
             VALUES ($1, $2, $3, 'organization', $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(RoleBindingId::new())
        .bind(org)
        .bind(actor.account_id)
        .bind(builtin)
        .bind(role_id)
        .execute(&mut *tx)
        .await?;
    }
    let action = if accept {
        "member.invite_accept"
    } else {
        "member.invite_decline"
    };
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new(action, "invitation", id).in_org(org),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
