//! Server-side glue for server functions: reaching the platform from the
//! request context.

use platform::Platform;

use crate::error::AppError;

/// The platform the server put into the request's context.
pub fn platform() -> Result<Platform, AppError> {
    leptos::prelude::use_context::<Platform>()
        .ok_or_else(|| AppError::internal("platform missing from the request context"))
}
