//! Compute: the provider accounts servers are ordered from and the profiles
//! (server SKUs) customers choose. The API clients live in
//! [`crate::providers`].

pub mod profiles;
pub mod providers;
