//! Typed identifiers. Every table's key is a UUIDv7 wrapped in its own
//! newtype, so an organization id can never be passed where a project id is
//! expected — not in the domain, not in a server function's arguments.

macro_rules! typed_ids {
    ($( $(#[$meta:meta])* $name:ident; )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "server", derive(sqlx::Type, utoipa::ToSchema), sqlx(transparent), schema(value_type = String, format = Uuid))]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        #[cfg(feature = "server")]
        impl $name {
            /// A new, time-ordered id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    )*};
}

typed_ids! {
    AccountId;
    ApiKeyId;
    PasskeyId;
    OrganizationId;
    ProjectId;
    WorkspaceId;
    RoleId;
    RoleBindingId;
    InvitationId;
    AuditEntryId;
    EmailId;
    SetupTokenId;
    TaskId;
    KubernetesVersionId;
    ManagementClusterId;
    ApplicationId;
    ComputeProviderId;
    ComputeProfileId;
    HostId;
    AgentTokenId;
    ScalingGroupId;
    ShellSessionId;
    CommandId;
    AgentReleaseId;
    LoadBalancerId;
    MonitorId;
    ConditionId;
    AlertId;
    SilenceId;
    NotificationChannelId;
    NotificationId;
    ProbeId;
}
