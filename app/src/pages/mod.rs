mod account;
mod admin;
pub(crate) mod alerts;
mod auth;
mod catalog;
mod compute;
mod home;
pub(crate) mod hosts;
mod invitations;
pub(crate) mod load_balancers;
pub(crate) mod monitor;
pub(crate) mod monitor_form;
pub(crate) mod monitoring;
mod not_found;
pub(crate) mod notifications;
pub(crate) mod orgs;
mod projects;
mod shell;
pub(crate) mod tasks;
mod workspace_hosts;
pub(crate) mod workspace_kubernetes;
pub(crate) mod workspaces;

pub use account::{AccountPage, ApiKeysPage, SecurityPage};
pub use admin::{
    AdminAuditPage, AdminComputePage, AdminKubernetesPage, AdminMailPage, AdminOrganizationsPage,
    AdminPage, AdminTasksPage,
};
pub use alerts::AlertsPage;
pub use auth::{ForgotPasswordPage, ResetPasswordPage, SetupPage, SignInPage, SignUpPage};
pub use home::HomePage;
pub use hosts::HostPage;
pub use invitations::InvitationPage;
pub use load_balancers::LoadBalancerPage;
pub use monitor::MonitorPage;
pub use monitoring::{MonitoringPage, PublicStatusPage};
pub use not_found::NotFound;
pub use notifications::NotificationsPage;
pub use orgs::{
    AuditPage, MembersPage, OrgSettingsPage, OrganizationPage, OrganizationsPage, RolesPage,
};
pub use projects::{ProjectPage, ProjectsPage, WorkspacesPage};
pub use shell::ShellPage;
pub use tasks::TaskPage;
pub use workspace_kubernetes::WorkspaceNodesPage;
pub use workspaces::WorkspacePage;
