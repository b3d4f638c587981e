//! Organizations, projects, members and roles.

pub mod members;
pub mod organizations;
pub mod projects;
pub mod roles;
