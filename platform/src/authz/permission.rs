//! Every permission key the portal knows, in one place. Roles are sets of
//! these keys; `authorize` checks one of them against a resource.

use serde::{Deserialize, Serialize};

/// The level of the hierarchy a permission applies to. A binding at a scope
/// grants its keys on that resource and everything below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Platform,
    Organization,
    Project,
    Workspace,
}

macro_rules! permissions {
    ($( $variant:ident => $key:literal, $level:ident, $description:literal; )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Permission {
            $( #[doc = $description] $variant, )*
        }

        impl Permission {
            pub const ALL: &'static [Permission] = &[ $( Permission::$variant, )* ];

            /// The stable key stored in custom roles, e.g. `workspace.read`.
            pub fn key(self) -> &'static str {
                match self { $( Permission::$variant => $key, )* }
            }

            pub fn description(self) -> &'static str {
                match self { $( Permission::$variant => $description, )* }
            }

            pub fn level(self) -> Level {
                match self { $( Permission::$variant => Level::$level, )* }
            }

            pub fn from_key(key: &str) -> Option<Self> {
                match key { $( $key => Some(Permission::$variant), )* _ => None }
            }
        }
    };
}

permissions! {
    OrganizationRead => "organization.read", Organization, "See the organization, its verification state and settings.";
    OrganizationUpdate => "organization.update", Organization, "Rename the organization and change its settings.";
    MemberRead => "member.read", Organization, "See members, their roles and pending invitations.";
    MemberInvite => "member.invite", Organization, "Invite people by email and revoke invitations.";
    MemberManage => "member.manage", Organization, "Change members' role bindings and remove members.";
    RoleManage => "role.manage", Organization, "Create, change and delete custom roles.";
    AuditRead => "audit.read", Organization, "Read the organization's audit log.";
    ProjectCreate => "project.create", Organization, "Create projects.";
    ProjectRead => "project.read", Project, "See the project and what it contains.";
    ProjectUpdate => "project.update", Project, "Rename the project.";
    ProjectDelete => "project.delete", Project, "Delete the project once it holds no workspaces.";
    WorkspaceCreate => "workspace.create", Project, "Create workspaces in the project (the organization must be verified and active).";
    WorkspaceRead => "workspace.read", Workspace, "List and open workspaces.";
    WorkspaceUpdate => "workspace.update", Workspace, "Change a workspace's name and metadata.";
    WorkspaceDelete => "workspace.delete", Workspace, "Delete workspaces.";
    WorkspaceKubernetesRead => "workspace.kubernetes.read", Workspace, "See Kubernetes details: versions, nodes, upgrade matrix.";
    WorkspaceKubeconfigAdmin => "workspace.kubeconfig.admin", Workspace, "Download the admin kubeconfig (cluster-admin; treat like root).";
    WorkspaceKubeconfigOidc => "workspace.kubeconfig.oidc", Workspace, "Download the OIDC kubeconfig for interactive login.";
    WorkspaceMaintenanceUpdate => "workspace.maintenance.update", Workspace, "Change maintenance windows and automatic patching.";
    WorkspaceUpgrade => "workspace.upgrade", Workspace, "Upgrade the workspace's Kubernetes version.";
    AgentTokenManage => "agent_token.manage", Workspace, "Create and revoke agent tokens.";
    HostRead => "host.read", Workspace, "See hosts, their state and facts.";
    HostCreate => "host.create", Workspace, "Order hosts and manage scaling groups.";
    HostDelete => "host.delete", Workspace, "Delete hosts (and their servers at the provider).";
    HostPower => "host.power", Workspace, "Power hosts on, off or reset them.";
    HostShell => "host.shell", Workspace, "Open an interactive shell on hosts (high risk).";
    NodeDrain => "node.drain", Workspace, "Cordon, drain and uncordon Kubernetes nodes.";
    LoadBalancerRead => "loadbalancer.read", Project, "See load balancers and target health.";
    LoadBalancerManage => "loadbalancer.manage", Project, "Create, change and delete load balancers.";
    DnsRead => "dns.read", Project, "See DNS zones and records.";
    DnsManage => "dns.manage", Project, "Create, change and delete DNS zones and records.";
    MonitoringRead => "monitoring.read", Project, "See monitoring objects, results and alerts.";
    MonitoringManage => "monitoring.manage", Project, "Create and change monitoring objects, conditions and silences.";
    NotificationManage => "notification.manage", Organization, "Manage the organization's notification channels.";
    TaskRead => "task.read", Workspace, "See system tasks and their steps.";
    TaskCancel => "task.cancel", Workspace, "Cancel running system tasks.";
    PlatformOrganizations => "platform.organizations", Platform, "Operators: verify, reject, suspend and reactivate organizations.";
    PlatformMail => "platform.mail", Platform, "Operators: read the local mail outbox.";
    PlatformAudit => "platform.audit", Platform, "Operators: read every organization's audit log.";
    PlatformCatalog => "platform.catalog", Platform, "Operators: manage versions, management clusters, applications, providers and profiles.";
    PlatformTasks => "platform.tasks", Platform, "Operators: see and retry every system task.";
}

impl Permission {
    /// Keys that, besides the role, need an organization that is verified and
    /// active: everything that creates or runs infrastructure.
    pub fn needs_usable_organization(self) -> bool {
        matches!(
            self,
            Permission::WorkspaceCreate
                | Permission::HostCreate
                | Permission::HostPower
                | Permission::WorkspaceUpgrade
                | Permission::LoadBalancerManage
                | Permission::DnsManage
        )
    }

    /// The key that lets a caller know a resource of this level exists. Without
    /// it a resource answers "not found" rather than "forbidden".
    pub fn read_key_for(level: Level) -> Permission {
        match level {
            Level::Platform => Permission::PlatformAudit,
            Level::Organization => Permission::OrganizationRead,
            Level::Project => Permission::ProjectRead,
            Level::Workspace => Permission::WorkspaceRead,
        }
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// The roles every organization has. Their keys are defined here, in code, so
/// that a new permission reaches existing organizations without a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinRole {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl BuiltinRole {
    pub const ALL: [BuiltinRole; 4] = [Self::Owner, Self::Admin, Self::Member, Self::Viewer];

    pub fn key(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Viewer => "viewer",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.key() == key)
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::Owner => {
                "Everything, including members, roles and the audit log. Every organization keeps at least one owner."
            }
            Self::Admin => "Everything an owner can do except granting the owner role.",
            Self::Member => {
                "Builds and runs infrastructure; cannot manage members, roles or read the audit log."
            }
            Self::Viewer => "Reads everything, changes nothing; no kubeconfigs and no shell.",
        }
    }

    pub fn grants(self, permission: Permission) -> bool {
        use Permission::*;
        if permission.level() == Level::Platform {
            return false;
        }
        match self {
            Self::Owner | Self::Admin => true,
            Self::Member => !matches!(
                permission,
                OrganizationUpdate
                    | MemberInvite
                    | MemberManage
                    | RoleManage
                    | AuditRead
                    | NotificationManage
            ),
            Self::Viewer => matches!(
                permission,
                OrganizationRead
                    | MemberRead
                    | ProjectRead
                    | WorkspaceRead
                    | WorkspaceKubernetesRead
                    | HostRead
                    | LoadBalancerRead
                    | DnsRead
                    | MonitoringRead
                    | TaskRead
            ),
        }
    }

    pub fn permissions(self) -> Vec<Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(|p| self.grants(*p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_are_unique_and_round_trip() {
        let keys: HashSet<&str> = Permission::ALL.iter().map(|p| p.key()).collect();
        assert_eq!(keys.len(), Permission::ALL.len());
        for p in Permission::ALL {
            assert_eq!(Permission::from_key(p.key()), Some(*p));
            assert!(!p.description().is_empty());
        }
        assert_eq!(Permission::from_key("workspace.destroy_everything"), None);
    }

    #[test]
    fn design_keys_exist() {
        for key in [
            "workspace.read",
            "workspace.kubernetes.read",
            "workspace.kubeconfig.admin",
            "workspace.kubeconfig.oidc",
            "workspace.maintenance.update",
            "host.create",
            "host.shell",
            "host.power",
            "node.drain",
            "loadbalancer.read",
            "loadbalancer.manage",
            "monitoring.read",
            "monitoring.manage",
        ] {
            assert!(Permission::from_key(key).is_some(), "{key}");
        }
    }

    #[test]
    fn viewers_read_but_never_change_or_reach_hosts() {
        let viewer = BuiltinRole::Viewer;
        assert!(viewer.grants(Permission::ProjectRead));
        assert!(!viewer.grants(Permission::WorkspaceCreate));
        assert!(!viewer.grants(Permission::HostShell));
        assert!(!viewer.grants(Permission::WorkspaceKubeconfigAdmin));
        for p in viewer.permissions() {
            assert!(p.key().ends_with(".read"), "{p} is not a read key");
        }
    }

    #[test]
    fn no_tenant_role_grants_platform_keys() {
        for role in BuiltinRole::ALL {
            assert!(
                role.permissions()
                    .iter()
                    .all(|p| p.level() != Level::Platform)
            );
        }
        assert!(BuiltinRole::Member.grants(Permission::WorkspaceCreate));
        assert!(!BuiltinRole::Member.grants(Permission::MemberManage));
    }
}
