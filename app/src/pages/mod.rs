mod home;
mod not_found;
mod sections;
mod setup;
mod sign_in;

pub use home::HomePage;
pub use not_found::NotFound;
pub use sections::{AdminPage, OrganizationsPage, ProjectsPage, WorkspacesPage};
pub use setup::SetupPage;
pub use sign_in::SignInPage;
