mod account;
mod admin;
mod auth;
mod catalog;
mod compute;
mod home;
mod invitations;
mod not_found;
pub(crate) mod orgs;
mod projects;
pub(crate) mod tasks;
pub(crate) mod workspaces;

pub use account::{AccountPage, ApiKeysPage, SecurityPage};
pub use admin::{
    AdminAuditPage, AdminComputePage, AdminKubernetesPage, AdminMailPage, AdminOrganizationsPage,
    AdminPage, AdminTasksPage,
};
pub use auth::{ForgotPasswordPage, ResetPasswordPage, SetupPage, SignInPage, SignUpPage};
pub use home::HomePage;
pub use invitations::InvitationPage;
pub use not_found::NotFound;
pub use orgs::{
    AuditPage, MembersPage, OrgSettingsPage, OrganizationPage, OrganizationsPage, RolesPage,
};
pub use projects::{ProjectPage, ProjectsPage, WorkspacesPage};
pub use tasks::TaskPage;
pub use workspaces::WorkspacePage;
