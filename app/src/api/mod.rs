//! Server functions: thin wrappers that authenticate the caller, call one
//! platform function, and return its result. Authorization happens inside
//! the platform function.

pub mod account;
pub mod admin;
pub mod alerts;
pub mod auth;
pub mod hosts;
pub mod kubernetes;
pub mod load_balancers;
pub mod monitoring;
pub mod notifications;
pub mod tasks;
pub mod tenancy;
pub mod workspaces;
