//! The authorization matrix: every server function and every REST route,
//! enumerated from the binary itself (`loopback routes`), is called by an
//! account of another organization, by a viewer of the victim organization,
//! and without credentials. Refusals must reveal nothing about the victim,
//! and nothing of the victim's may change. A route missing from the table
//! below fails the test, so new routes cannot be forgotten.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use platform::authz::{BuiltinRole, Permission, RequestMeta};
use platform::identity::{self, SignUp, api_keys};
use platform::tenancy::members::{self, RoleSpec};
use platform::tenancy::{organizations, projects, roles};
use protocol::views::Verification;
use serde_json::Value;
use sqlx::PgPool;
use support::{Launch, PASSWORD, fresh_database, run_to_exit, sign_in};

/// Strings that belong to the victim and must never appear in a refusal.
const SECRETS: [&str; 5] = [
    "Acme Victim Corp",
    "Victim Project",
    "victim-ws",
    "Victim Role",
    "invitee@victim.example",
];

struct Victim {
    task: String,
    org: String,
    project: String,
    workspace: String,
    role: String,
    invitation: String,
    alice: String,
    alice_owner_binding: String,
    alice_key_id: String,
    alice_key: String,
    host: String,
    agent_token: String,
    shell_session: String,
    scaling_group: String,
    load_balancer: String,
    monitor: String,
    notification_channel: String,
    notification: String,
    /// A firing alert of the victim's project, and an active silence.
    alert: String,
    silence: String,
    /// The victim workspace's API key (the in-cluster API's credential).
    workspace_key: String,
    /// Another organization's workspace API key.
    mallory_workspace_key: String,
}

async fn account(db: &PgPool, email: &str) -> platform::authz::Actor {
    identity::sign_up(
        db,
        SignUp {
            email: email.into(),
            display_name: email.into(),
            password: PASSWORD.into(),
        },
        &RequestMeta::default(),
    )
    .await
    .unwrap()
    .actor(RequestMeta::default())
}

async fn fixture(db: &PgPool, public_url: &url::Url) -> Victim {
    let alice = account(db, "alice@victim.example").await;
    let vic = account(db, "vic@victim.example").await;
    let mallory = account(db, "mallory@elsewhere.example").await;
    let op = account(db, "op@loopback.example").await;
    sqlx::query("UPDATE accounts SET is_operator = true WHERE email = 'op@loopback.example'")
        .execute(db)
        .await
        .unwrap();
    let op = identity::find(db, op.account_id)
        .await
        .unwrap()
        .unwrap()
        .actor(RequestMeta::default());

    let org = organizations::create(db, &alice, "Acme Victim Corp")
        .await
        .unwrap();
    organizations::set_verification(db, &op, org.id, Verification::Verified, "")
        .await
        .unwrap();
    let project = projects::create(db, &alice, org.id, "Victim Project")
        .await
        .unwrap();
    let portal = platform::Platform::new(
        db.clone(),
        platform::SecretBox::from_key([9; 32]),
        public_url.clone(),
        Default::default(),
    )
    .unwrap();
    let created_workspace = platform::workspaces::create(
        &portal,
        &alice,
        project.id,
        &protocol::views::NewWorkspace::baremetal("victim-ws"),
    )
    .await
    .unwrap();
    let workspace_key = created_workspace.api_key;
    let workspace = created_workspace.workspace;
    let role = roles::create(db, &alice, org.id, "Victim Role", "", &["dns.read".into()])
        .await
        .unwrap();
    let vic_invite = members::invite(
        db,
        &alice,
        public_url,
        org.id,
        "vic@victim.example",
        RoleSpec::Builtin(BuiltinRole::Viewer),
    )
    .await
    .unwrap();
    members::respond(db, &vic, vic_invite.id, true)
        .await
        .unwrap();
    let invitation = members::invite(
        db,
        &alice,
        public_url,
        org.id,
        "invitee@victim.example",
        RoleSpec::Builtin(BuiltinRole::Member),
    )
    .await
    .unwrap();
    let key = api_keys::create(db, &alice, "victim key", None)
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    let task = platform::tasks::enqueue(
        &mut tx,
        &platform::tasks::diagnostics::Exercise {
            steps: 1,
            sleep_ms: 0,
            ..Default::default()
        },
        platform::tasks::Target {
            organization: Some(org.id),
            workspace: Some(workspace.id),
        },
        Some(alice.account_id),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let alice_owner_binding = members::list(db, &alice, org.id)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.account_id == alice.account_id)
        .unwrap()
        .bindings[0]
        .id;

    // Mallory runs her own, verified organization.
    let theirs = organizations::create(db, &mallory, "Mallory Org")
        .await
        .unwrap();
    organizations::set_verification(db, &op, theirs.id, Verification::Verified, "")
        .await
        .unwrap();
    let mallory_project = projects::create(db, &mallory, theirs.id, "Mallory Project")
        .await
        .unwrap();
    let mallory_workspace_key = platform::workspaces::create(
        &portal,
        &mallory,
        mallory_project.id,
        &protocol::views::NewWorkspace::baremetal("mallory-ws"),
    )
    .await
    .unwrap()
    .api_key;

    // A host with an agent token, a shell session and a scaling group,
    // written directly: ordering needs a provider, which this test has not.
    let (host, agent_token, shell_session, scaling_group) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    sqlx::query(
        "WITH profile AS (
             INSERT INTO compute_profiles (id, name, provider_kind, cpu, ram_mb, disk_gb, price_cents)
             VALUES (gen_random_uuid(), 'victim-profile', 'local', 1, 512, 10, 0) RETURNING id),
         grp AS (
             INSERT INTO scaling_groups (id, workspace_id, name, profile_id, desired)
             SELECT $4, $2, 'victim-group', id, 0 FROM profile RETURNING id),
         h AS (
             INSERT INTO hosts (id, organization_id, workspace_id, hostname, profile_id, state, online)
             SELECT $1, $3, $2, 'victim-host', id, 'running', true FROM profile RETURNING id)
         SELECT 1",
    )
    .bind(host)
    .bind(workspace.id)
    .bind(org.id)
    .bind(scaling_group)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO agent_tokens (id, workspace_id, host_id, digest, prefix)
         VALUES ($1, $2, $3, 'x', 'lba_victim')",
    )
    .bind(agent_token)
    .bind(workspace.id)
    .bind(host)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO shell_sessions (id, host_id, workspace_id, organization_id, account_id,
             account_email, reconnect_digest)
         VALUES ($1, $2, $3, $4, $5, 'alice@victim.example', 'x')",
    )
    .bind(shell_session)
    .bind(host)
    .bind(workspace.id)
    .bind(org.id)
    .bind(alice.account_id)
    .execute(db)
    .await
    .unwrap();

    // A load balancer of the victim's workspace, made by the in-cluster
    // API for Service default/web, written directly (no backend runs here).
    let load_balancer = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO load_balancers (id, organization_id, project_id, workspace_id, name, backend,
             listeners, targets, algorithm, health, service)
         VALUES ($1, $2, $3, $4, 'victim-lb', 'local',
             '[{\"protocol\": \"tcp\", \"port\": 80, \"target_port\": 30080}]', '[]',
             '\"round_robin\"',
             '{\"protocol\": \"tcp\", \"port\": null, \"path\": \"/\", \"interval_seconds\": 15,
               \"timeout_seconds\": 10, \"healthy_threshold\": 2, \"unhealthy_threshold\": 3}',
             'default/web')",
    )
    .bind(load_balancer)
    .bind(org.id)
    .bind(project.id)
    .bind(workspace.id)
    .execute(db)
    .await
    .unwrap();

    // A monitor of the victim's workspace whose first run is a day away,
    // so no probe runs during the test.
    let monitor = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO monitors (id, organization_id, project_id, workspace_id, name, kind, probe,
             interval_seconds, sources, failure_threshold, success_threshold,
             repeat_interval_seconds, next_run_at)
         VALUES ($1, $2, $3, $4, 'victim-monitor', 'tcp',
             '{\"kind\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": 9, \"timeout_ms\": 1000}',
             3600, '[{\"type\": \"builtin\"}]', 3, 2, 14400, now() + interval '1 day')",
    )
    .bind(monitor)
    .bind(org.id)
    .bind(project.id)
    .bind(workspace.id)
    .execute(db)
    .await
    .unwrap();

    // A notification channel of the victim's organization with one failed
    // delivery (the config is never opened: every probe is refused first).
    let notification_channel = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO notification_channels (id, organization_id, name, kind, config, destination)
         VALUES ($1, $2, 'victim-hook', 'webhook', '\\x00', 'https://hooks.victim.example')",
    )
    .bind(notification_channel)
    .bind(org.id)
    .execute(db)
    .await
    .unwrap();
    let notification = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO notifications (id, organization_id, channel_id, kind, subject, message, state)
         VALUES ($1, $2, $3, 'test', 'Test notification from Loopback', '{}', 'failed')",
    )
    .bind(notification)
    .bind(org.id)
    .bind(notification_channel)
    .execute(db)
    .await
    .unwrap();

    // A paused monitor of the victim's project with a firing alert and an
    // active silence, written directly (no engine runs here).
    let alerting_monitor = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO monitors (id, organization_id, project_id, name, kind, probe,
             interval_seconds, sources, failure_threshold, success_threshold,
             repeat_interval_seconds, paused, next_run_at)
         VALUES ($1, $2, $3, 'victim-alerting', 'tcp',
             '{\"kind\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": 9, \"timeout_ms\": 1000}',
             60, '[{\"type\": \"builtin\"}]', 1, 1, 3600, true, now() + interval '1 day')",
    )
    .bind(alerting_monitor)
    .bind(org.id)
    .bind(project.id)
    .execute(db)
    .await
    .unwrap();
    let alert = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO alerts (id, organization_id, project_id, monitor_id, summary, severity,
             state, value, started_at, fired_at)
         VALUES ($1, $2, $3, $4, 'status is down', 'critical', 'firing', 0, now(), now())",
    )
    .bind(alert)
    .bind(org.id)
    .bind(project.id)
    .bind(alerting_monitor)
    .execute(db)
    .await
    .unwrap();
    let silence = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO monitor_silences (id, organization_id, project_id, monitor_id, comment, ends_at)
         VALUES ($1, $2, $3, $4, 'victim maintenance', now() + interval '1 day')",
    )
    .bind(silence)
    .bind(org.id)
    .bind(project.id)
    .bind(alerting_monitor)
    .execute(db)
    .await
    .unwrap();

    Victim {
        notification_channel: notification_channel.to_string(),
        alert: alert.to_string(),
        silence: silence.to_string(),
        notification: notification.to_string(),
        load_balancer: load_balancer.to_string(),
        monitor: monitor.to_string(),
        workspace_key,
        mallory_workspace_key,
        host: host.to_string(),
        agent_token: agent_token.to_string(),
        shell_session: shell_session.to_string(),
        scaling_group: scaling_group.to_string(),
        task: task.to_string(),
        org: org.id.to_string(),
        project: project.id.to_string(),
        workspace: workspace.id.to_string(),
        role: role.id.to_string(),
        invitation: invitation.id.to_string(),
        alice: alice.account_id.to_string(),
        alice_owner_binding: alice_owner_binding.to_string(),
        alice_key_id: key.key.id.to_string(),
        alice_key: key.secret,
    }
}

/// What a route does, and so what each caller must get.
#[derive(Debug, Clone)]
enum Kind {
    /// Public by design; the reason is the documentation.
    Public(&'static str),
    /// Acts on the victim's tenant resources and needs this permission key.
    Tenant(&'static str),
    /// Acts on the caller's own account but names a victim's object by id:
    /// must answer not found.
    OwnWithVictimId,
    /// Lists or changes only the caller's own things; must show nothing of
    /// the victim's.
    Own,
    /// The operator console.
    Operator,
    /// The in-cluster API: only a workspace API key gets in. `true` when
    /// another workspace's key must not find the victim's object (404);
    /// `false` when it acts on its own workspace only.
    WorkspaceKey(bool),
}

struct Probe {
    kind: Kind,
    /// Form fields (server functions) or JSON body (REST).
    args: Vec<(&'static str, String)>,
    /// REST: the path with ids filled in.
    path: Option<String>,
}

fn probe(kind: Kind, args: &[(&'static str, &str)]) -> Probe {
    Probe {
        kind,
        args: args.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        path: None,
    }
}

/// A drain's form fields as the portal's pages send them (nested, as
/// `serde_qs` reads them).
fn drain_args(workspace: &str) -> [(&'static str, &str); 7] {
    [
        ("workspace", workspace),
        ("nodes[0]", "victim-node"),
        ("options[ignore_daemonsets]", "true"),
        ("options[delete_emptydir_data]", "false"),
        ("options[force]", "false"),
        ("options[grace_period_seconds]", "-1"),
        ("options[timeout_seconds]", "120"),
    ]
}

fn server_function_probes(v: &Victim) -> BTreeMap<&'static str, Probe> {
    use Kind::*;
    let random = uuid::Uuid::now_v7().to_string();
    let o = v.org.as_str();
    let p = v.project.as_str();
    BTreeMap::from([
        (
            "current_account",
            probe(Public("answers who the caller is, or nobody"), &[]),
        ),
        ("sign_up", probe(Public("creates an account"), &[])),
        ("sign_in", probe(Public("checks a password"), &[])),
        (
            "sign_in_code",
            probe(Public("second step of signing in; needs the first"), &[]),
        ),
        (
            "passkey_sign_in_start",
            probe(Public("second step of signing in; needs the first"), &[]),
        ),
        (
            "passkey_sign_in_finish",
            probe(Public("second step of signing in; needs the first"), &[]),
        ),
        (
            "sign_out",
            probe(Public("ends the caller's own session"), &[]),
        ),
        (
            "request_password_reset",
            probe(Public("mails a link to the address's owner only"), &[]),
        ),
        (
            "reset_password",
            probe(Public("needs the mailed token"), &[]),
        ),
        (
            "check_setup_link",
            probe(Public("needs the printed setup token"), &[]),
        ),
        (
            "create_operator",
            probe(Public("needs the printed setup token"), &[]),
        ),
        (
            "portal_status",
            probe(Public("the portal's own health"), &[]),
        ),
        (
            "permission_catalogue",
            probe(
                Public("reference data: permission keys and built-in roles"),
                &[],
            ),
        ),
        (
            "change_password",
            probe(
                Own,
                &[
                    ("current_password", "wrong wrong wrong"),
                    ("new_password", "another long password"),
                ],
            ),
        ),
        (
            "sign_out_everywhere",
            probe(
                Public("ends the caller's own sessions; probed last would sign the prober out"),
                &[],
            ),
        ),
        ("security_overview", probe(Own, &[])),
        ("totp_begin", probe(Own, &[])),
        ("totp_confirm", probe(Own, &[("code", "000000")])),
        (
            "totp_disable",
            probe(Own, &[("current_password", "wrong wrong wrong")]),
        ),
        ("recovery_codes_regenerate", probe(Own, &[])),
        ("passkey_register_start", probe(Own, &[])),
        (
            "passkey_register_finish",
            probe(
                Public("completes the caller's own registration from session state; JSON-only"),
                &[],
            ),
        ),
        (
            "passkey_rename",
            probe(OwnWithVictimId, &[("id", &random), ("name", "x")]),
        ),
        ("passkey_remove", probe(OwnWithVictimId, &[("id", &random)])),
        ("api_keys_list", probe(Own, &[])),
        (
            "api_key_create",
            probe(Own, &[("name", "prober"), ("expires_in_days", "")]),
        ),
        (
            "api_key_revoke",
            probe(OwnWithVictimId, &[("id", &v.alice_key_id)]),
        ),
        ("list_organizations", probe(Own, &[("page", "1")])),
        ("create_organization", probe(Own, &[("name", "Prober Org")])),
        ("list_my_projects", probe(Own, &[("page", "1")])),
        ("list_my_workspaces", probe(Own, &[("page", "1")])),
        ("my_invitations", probe(Own, &[])),
        ("invitation_for_link", probe(Own, &[("token", "made-up")])),
        (
            "respond_invitation",
            probe(
                OwnWithVictimId,
                &[("invitation", &v.invitation), ("accept", "true")],
            ),
        ),
        (
            "get_organization",
            probe(Tenant("organization.read"), &[("org", o)]),
        ),
        (
            "rename_organization",
            probe(
                Tenant("organization.update"),
                &[("org", o), ("name", "Hacked")],
            ),
        ),
        (
            "list_projects",
            probe(Tenant("organization.read"), &[("org", o), ("page", "1")]),
        ),
        (
            "create_project",
            probe(Tenant("project.create"), &[("org", o), ("name", "Planted")]),
        ),
        (
            "get_project",
            probe(Tenant("project.read"), &[("project", p)]),
        ),
        (
            "rename_project",
            probe(
                Tenant("project.update"),
                &[("project", p), ("name", "Hacked")],
            ),
        ),
        (
            "delete_project",
            probe(Tenant("project.delete"), &[("project", p)]),
        ),
        (
            "list_workspaces",
            probe(Tenant("project.read"), &[("project", p)]),
        ),
        (
            "create_workspace",
            probe(
                Tenant("workspace.create"),
                &[("project", p), ("name", "planted"), ("kind", "baremetal")],
            ),
        ),
        ("list_members", probe(Tenant("member.read"), &[("org", o)])),
        (
            "list_invitations",
            probe(Tenant("member.read"), &[("org", o)]),
        ),
        (
            "invite_member",
            probe(
                Tenant("member.invite"),
                &[
                    ("org", o),
                    ("email", "planted@elsewhere.example"),
                    ("role", "owner"),
                ],
            ),
        ),
        (
            "revoke_invitation",
            probe(
                Tenant("member.invite"),
                &[("org", o), ("invitation", &v.invitation)],
            ),
        ),
        (
            "remove_member",
            probe(
                Tenant("member.manage"),
                &[("org", o), ("account", &v.alice)],
            ),
        ),
        (
            "bind_role",
            probe(
                Tenant("member.manage"),
                &[
                    ("org", o),
                    ("account", &v.alice),
                    ("scope", "organization"),
                    ("role", "viewer"),
                ],
            ),
        ),
        (
            "unbind_role",
            probe(
                Tenant("member.manage"),
                &[("org", o), ("binding", &v.alice_owner_binding)],
            ),
        ),
        ("list_roles", probe(Tenant("member.read"), &[("org", o)])),
        (
            "create_role",
            probe(
                Tenant("role.manage"),
                &[
                    ("org", o),
                    ("name", "Planted"),
                    ("description", ""),
                    ("permissions", "project.read"),
                ],
            ),
        ),
        (
            "update_role",
            probe(
                Tenant("role.manage"),
                &[
                    ("org", o),
                    ("role", &v.role),
                    ("name", "Hacked"),
                    ("description", ""),
                    ("permissions", "project.read"),
                ],
            ),
        ),
        (
            "delete_role",
            probe(Tenant("role.manage"), &[("org", o), ("role", &v.role)]),
        ),
        (
            "audit_log",
            probe(
                Tenant("audit.read"),
                &[
                    ("org", o),
                    ("action", ""),
                    ("actor_email", ""),
                    ("before", ""),
                ],
            ),
        ),
        ("get_task", probe(Tenant("task.read"), &[("task", &v.task)])),
        (
            "cancel_task",
            probe(Tenant("task.cancel"), &[("task", &v.task)]),
        ),
        (
            "get_workspace_details",
            probe(Tenant("workspace.read"), &[("workspace", &v.workspace)]),
        ),
        ("get_workspace_options", probe(Own, &[])),
        (
            "update_maintenance",
            probe(
                Tenant("workspace.maintenance.update"),
                &[("workspace", &v.workspace), ("weekday", "1"), ("hour", "4")],
            ),
        ),
        (
            "delete_workspace",
            probe(Tenant("workspace.delete"), &[("workspace", &v.workspace)]),
        ),
        ("admin_versions", probe(Operator, &[])),
        (
            "admin_add_version",
            probe(Operator, &[("version", "1.30.1")]),
        ),
        (
            "admin_set_version_active",
            probe(Operator, &[("version", &random), ("active", "true")]),
        ),
        ("admin_clusters", probe(Operator, &[])),
        (
            "admin_register_cluster",
            probe(
                Operator,
                &[
                    ("name", "planted"),
                    ("kind", "kamaji"),
                    ("provider_type", "local"),
                    ("domain", "planted.example.com"),
                    ("kubeconfig", "not: a kubeconfig"),
                    ("capacity", "1"),
                ],
            ),
        ),
        (
            "admin_set_cluster_active",
            probe(Operator, &[("cluster", &random), ("active", "true")]),
        ),
        (
            "admin_check_cluster",
            probe(Operator, &[("cluster", &random)]),
        ),
        ("admin_applications", probe(Operator, &[])),
        ("admin_compute_providers", probe(Operator, &[])),
        (
            "admin_create_compute_provider",
            probe(
                Operator,
                &[("name", "planted"), ("kind", "local"), ("secret", "")],
            ),
        ),
        (
            "admin_check_compute_provider",
            probe(Operator, &[("provider", &random)]),
        ),
        (
            "admin_set_compute_provider_active",
            probe(Operator, &[("provider", &random), ("active", "true")]),
        ),
        ("admin_compute_profiles", probe(Operator, &[])),
        (
            "admin_create_compute_profile",
            probe(
                Operator,
                &[
                    ("name", "planted"),
                    ("provider_kind", "local"),
                    ("cpu", "1"),
                    ("ram_mb", "512"),
                    ("disk_gb", "10"),
                    ("price_cents", "0"),
                ],
            ),
        ),
        (
            "admin_set_compute_profile_active",
            probe(Operator, &[("profile", &random), ("active", "true")]),
        ),
        (
            "admin_profile_availability",
            probe(Operator, &[("profile", &random)]),
        ),
        (
            "admin_add_application",
            probe(
                Operator,
                &[
                    ("name", "planted"),
                    ("version", "1"),
                    ("source", "manifests"),
                    (
                        "manifests",
                        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: planted\n",
                    ),
                    ("position", "0"),
                    ("install_timeout_secs", "1"),
                ],
            ),
        ),
        (
            "admin_set_application_active",
            probe(Operator, &[("application", &random), ("active", "true")]),
        ),
        (
            "workspace_tasks",
            probe(
                Tenant("task.read"),
                &[("workspace", &v.workspace), ("page", "1")],
            ),
        ),
        (
            "admin_tasks",
            probe(
                Operator,
                &[("state", ""), ("kind", ""), ("age", ""), ("page", "1")],
            ),
        ),
        ("admin_retry_task", probe(Operator, &[("task", &v.task)])),
        (
            "admin_run_exercise",
            probe(
                Operator,
                &[("steps", "1"), ("sleep_ms", "0"), ("fail_attempts", "0")],
            ),
        ),
        (
            "admin_organizations",
            probe(
                Operator,
                &[("verification", ""), ("search", ""), ("page", "1")],
            ),
        ),
        (
            "admin_set_verification",
            probe(
                Operator,
                &[("org", o), ("verification", "rejected"), ("note", "")],
            ),
        ),
        (
            "admin_set_state",
            probe(
                Operator,
                &[("org", o), ("state", "suspended"), ("note", "")],
            ),
        ),
        ("admin_mail", probe(Operator, &[("page", "1")])),
        (
            "workspace_hosts",
            probe(Tenant("host.read"), &[("workspace", &v.workspace)]),
        ),
        (
            "order_host",
            probe(
                Tenant("host.create"),
                &[
                    ("workspace", &v.workspace),
                    ("hostname", "planted"),
                    ("compute_profile", &random),
                ],
            ),
        ),
        ("get_host", probe(Tenant("host.read"), &[("host", &v.host)])),
        (
            "delete_host",
            probe(Tenant("host.delete"), &[("host", &v.host)]),
        ),
        (
            "power_host",
            probe(
                Tenant("host.power"),
                &[("host", &v.host), ("action", "off")],
            ),
        ),
        (
            "revoke_agent_token",
            probe(
                Tenant("host.create"),
                &[("host", &v.host), ("token", &v.agent_token)],
            ),
        ),
        (
            "update_agent",
            probe(Tenant("host.create"), &[("host", &v.host)]),
        ),
        (
            "start_shell",
            probe(Tenant("host.shell"), &[("host", &v.host)]),
        ),
        (
            "end_shell",
            probe(
                Tenant("host.delete"),
                &[("host", &v.host), ("session", &v.shell_session)],
            ),
        ),
        (
            "create_scaling_group",
            probe(
                Tenant("host.create"),
                &[
                    ("workspace", &v.workspace),
                    ("name", "planted"),
                    ("compute_profile", &random),
                    ("desired", "1"),
                ],
            ),
        ),
        (
            "set_scaling_group_desired",
            probe(
                Tenant("host.create"),
                &[("group", &v.scaling_group), ("desired", "5")],
            ),
        ),
        (
            "delete_scaling_group",
            probe(Tenant("host.delete"), &[("group", &v.scaling_group)]),
        ),
        (
            "get_cluster_summary",
            probe(
                Tenant("workspace.kubernetes.read"),
                &[("workspace", &v.workspace)],
            ),
        ),
        (
            "get_upgrade_matrix",
            probe(
                Tenant("workspace.kubernetes.read"),
                &[("workspace", &v.workspace)],
            ),
        ),
        (
            "get_workspace_nodes",
            probe(
                Tenant("workspace.kubernetes.read"),
                &[("workspace", &v.workspace)],
            ),
        ),
        (
            "plan_drain",
            probe(Tenant("node.drain"), &drain_args(&v.workspace)),
        ),
        (
            "start_drain",
            probe(Tenant("node.drain"), &drain_args(&v.workspace)),
        ),
        (
            "stop_drain",
            probe(
                Tenant("node.drain"),
                &[("workspace", &v.workspace), ("task", &v.task)],
            ),
        ),
        (
            "cordon_node",
            probe(
                Tenant("node.drain"),
                &[("workspace", &v.workspace), ("node", "victim-node")],
            ),
        ),
        (
            "uncordon_node",
            probe(
                Tenant("node.drain"),
                &[("workspace", &v.workspace), ("node", "victim-node")],
            ),
        ),
        (
            "list_load_balancers",
            probe(Tenant("loadbalancer.read"), &[("workspace", &v.workspace)]),
        ),
        (
            "get_load_balancer",
            probe(
                Tenant("loadbalancer.read"),
                &[("load_balancer", &v.load_balancer)],
            ),
        ),
        (
            "save_load_balancer",
            probe(
                Tenant("loadbalancer.manage"),
                &[
                    ("load_balancer", &v.load_balancer),
                    ("name", "planted"),
                    ("listeners", "tcp 80 8080"),
                    ("targets", ""),
                    ("algorithm", "round_robin"),
                    ("health_protocol", "tcp"),
                    ("health_interval", "15"),
                    ("health_timeout", "10"),
                    ("healthy_threshold", "2"),
                    ("unhealthy_threshold", "3"),
                ],
            ),
        ),
        (
            "delete_load_balancer",
            probe(
                Tenant("loadbalancer.manage"),
                &[("load_balancer", &v.load_balancer)],
            ),
        ),
        (
            "list_monitors",
            probe(Tenant("monitoring.read"), &[("workspace", &v.workspace)]),
        ),
        (
            "get_monitor",
            probe(Tenant("monitoring.read"), &[("monitor", &v.monitor)]),
        ),
        (
            "get_monitor_form_options",
            probe(Tenant("workspace.read"), &[("workspace", &v.workspace)]),
        ),
        (
            "load_monitor_series",
            probe(
                Tenant("monitoring.read"),
                &[("monitor", &v.monitor), ("range", "day")],
            ),
        ),
        (
            "list_monitor_results",
            probe(
                Tenant("monitoring.read"),
                &[("monitor", &v.monitor), ("page", "1")],
            ),
        ),
        (
            "save_monitor",
            probe(
                Tenant("monitoring.manage"),
                &[
                    ("monitor", &v.monitor),
                    ("form[name]", "planted"),
                    ("form[kind]", "tcp"),
                    ("form[host]", "127.0.0.1"),
                    ("form[port]", "9"),
                ],
            ),
        ),
        (
            "pause_monitor",
            probe(
                Tenant("monitoring.manage"),
                &[("monitor", &v.monitor), ("paused", "true")],
            ),
        ),
        (
            "delete_monitor",
            probe(Tenant("monitoring.manage"), &[("monitor", &v.monitor)]),
        ),
        (
            "get_status_page",
            probe(
                Public("a project's status page shows only the monitors its owners made public"),
                &[],
            ),
        ),
        // Alerts and silences (app/src/api/alerts.rs).
        (
            "list_alerts",
            probe(Tenant("monitoring.read"), &[("project", p)]),
        ),
        (
            "get_alert",
            probe(Tenant("monitoring.read"), &[("alert", &v.alert)]),
        ),
        (
            "acknowledge_alert",
            probe(
                Tenant("monitoring.manage"),
                &[("alert", &v.alert), ("comment", "planted")],
            ),
        ),
        (
            "list_silences",
            probe(Tenant("monitoring.read"), &[("project", p)]),
        ),
        (
            "create_silence",
            probe(
                Tenant("monitoring.manage"),
                &[("project", p), ("duration", "1h"), ("comment", "planted")],
            ),
        ),
        (
            "expire_silence",
            probe(Tenant("monitoring.manage"), &[("silence", &v.silence)]),
        ),
        // Notification channels (app/src/api/notifications.rs).
        (
            "list_notification_channels",
            probe(Tenant("organization.read"), &[("organization", o)]),
        ),
        (
            "save_notification_channel",
            probe(
                Tenant("notification.manage"),
                &[
                    ("channel", &v.notification_channel),
                    ("name", "planted"),
                    ("kind", "email"),
                    ("addresses", "planted@example.com"),
                ],
            ),
        ),
        (
            "delete_notification_channel",
            probe(
                Tenant("notification.manage"),
                &[("channel", &v.notification_channel)],
            ),
        ),
        (
            "send_test_notification",
            probe(
                Tenant("notification.manage"),
                &[("channel", &v.notification_channel)],
            ),
        ),
        (
            "list_notification_deliveries",
            probe(Tenant("notification.manage"), &[("organization", o)]),
        ),
        (
            "retry_notification",
            probe(
                Tenant("notification.manage"),
                &[("notification", &v.notification)],
            ),
        ),
        ("agent_releases", probe(Operator, &[])),
        (
            "publish_bundled_agent",
            probe(Operator, &[("version", "9.9.9")]),
        ),
        (
            "set_host_limit",
            probe(Operator, &[("organization", o), ("limit", "0")]),
        ),
        (
            "admin_audit",
            probe(
                Operator,
                &[("action", ""), ("actor_email", ""), ("before", "")],
            ),
        ),
    ])
}

fn rest_probes(v: &Victim) -> BTreeMap<(String, String), Probe> {
    use Kind::*;
    let rest = |kind, method: &str, template: &str, path: String, body: &[(&'static str, &str)]| {
        (
            (method.to_string(), template.to_string()),
            Probe {
                kind,
                args: body.iter().map(|(k, val)| (*k, val.to_string())).collect(),
                path: Some(path),
            },
        )
    };
    let (o, p) = (&v.org, &v.project);
    BTreeMap::from([
        rest(
            Own,
            "GET",
            "/api/v1/organizations",
            "/api/v1/organizations".into(),
            &[],
        ),
        rest(
            Tenant("workspace.create"),
            "POST",
            "/api/v1/projects/{project}/workspaces",
            format!("/api/v1/projects/{}/workspaces", v.project),
            &[("name", "planted"), ("kind", "baremetal")],
        ),
        rest(
            Tenant("project.read"),
            "GET",
            "/api/v1/projects/{project}/workspaces",
            format!("/api/v1/projects/{}/workspaces", v.project),
            &[],
        ),
        rest(
            Tenant("workspace.read"),
            "GET",
            "/api/v1/workspaces/{workspace}",
            format!("/api/v1/workspaces/{}", v.workspace),
            &[],
        ),
        rest(
            Tenant("workspace.delete"),
            "DELETE",
            "/api/v1/workspaces/{workspace}",
            format!("/api/v1/workspaces/{}", v.workspace),
            &[],
        ),
        rest(
            Own,
            "POST",
            "/api/v1/organizations",
            "/api/v1/organizations".into(),
            &[("name", "Prober Org 2")],
        ),
        rest(
            Tenant("host.create"),
            "POST",
            "/api/v1/workspaces/{workspace}/hosts",
            format!("/api/v1/workspaces/{}/hosts", v.workspace),
            &[("hostname", "planted"), ("compute_profile", &v.agent_token)],
        ),
        rest(
            Tenant("host.read"),
            "GET",
            "/api/v1/workspaces/{workspace}/hosts",
            format!("/api/v1/workspaces/{}/hosts", v.workspace),
            &[],
        ),
        rest(
            Tenant("host.read"),
            "GET",
            "/api/v1/hosts/{host}",
            format!("/api/v1/hosts/{}", v.host),
            &[],
        ),
        rest(
            Tenant("host.delete"),
            "DELETE",
            "/api/v1/hosts/{host}",
            format!("/api/v1/hosts/{}", v.host),
            &[],
        ),
        rest(
            Tenant("host.power"),
            "POST",
            "/api/v1/hosts/{host}/power",
            format!("/api/v1/hosts/{}/power", v.host),
            &[("action", "off")],
        ),
        rest(
            Tenant("organization.read"),
            "GET",
            "/api/v1/organizations/{org}",
            format!("/api/v1/organizations/{o}"),
            &[],
        ),
        rest(
            Tenant("organization.update"),
            "PATCH",
            "/api/v1/organizations/{org}",
            format!("/api/v1/organizations/{o}"),
            &[("name", "Hacked")],
        ),
        rest(
            Tenant("organization.read"),
            "GET",
            "/api/v1/organizations/{org}/projects",
            format!("/api/v1/organizations/{o}/projects"),
            &[],
        ),
        rest(
            Tenant("project.create"),
            "POST",
            "/api/v1/organizations/{org}/projects",
            format!("/api/v1/organizations/{o}/projects"),
            &[("name", "Planted")],
        ),
        rest(
            Tenant("project.read"),
            "GET",
            "/api/v1/projects/{project}",
            format!("/api/v1/projects/{p}"),
            &[],
        ),
        rest(
            Tenant("project.update"),
            "PATCH",
            "/api/v1/projects/{project}",
            format!("/api/v1/projects/{p}"),
            &[("name", "Hacked")],
        ),
        rest(
            Tenant("project.delete"),
            "DELETE",
            "/api/v1/projects/{project}",
            format!("/api/v1/projects/{p}"),
            &[],
        ),
        rest(
            Tenant("member.read"),
            "GET",
            "/api/v1/organizations/{org}/members",
            format!("/api/v1/organizations/{o}/members"),
            &[],
        ),
        rest(
            Tenant("member.manage"),
            "DELETE",
            "/api/v1/organizations/{org}/members/{account}",
            format!("/api/v1/organizations/{o}/members/{}", v.alice),
            &[],
        ),
        rest(
            Tenant("member.read"),
            "GET",
            "/api/v1/organizations/{org}/invitations",
            format!("/api/v1/organizations/{o}/invitations"),
            &[],
        ),
        rest(
            Tenant("member.invite"),
            "POST",
            "/api/v1/organizations/{org}/invitations",
            format!("/api/v1/organizations/{o}/invitations"),
            &[("email", "planted@elsewhere.example"), ("role", "owner")],
        ),
        rest(
            Tenant("member.invite"),
            "DELETE",
            "/api/v1/organizations/{org}/invitations/{invitation}",
            format!("/api/v1/organizations/{o}/invitations/{}", v.invitation),
            &[],
        ),
        rest(
            Own,
            "GET",
            "/api/v1/account/api-keys",
            "/api/v1/account/api-keys".into(),
            &[],
        ),
        rest(
            Own,
            "POST",
            "/api/v1/account/api-keys",
            "/api/v1/account/api-keys".into(),
            &[("name", "prober")],
        ),
        rest(
            OwnWithVictimId,
            "DELETE",
            "/api/v1/account/api-keys/{key}",
            format!("/api/v1/account/api-keys/{}", v.alice_key_id),
            &[],
        ),
        rest(
            Tenant("loadbalancer.read"),
            "GET",
            "/api/v1/projects/{project}/load-balancers",
            format!("/api/v1/projects/{p}/load-balancers"),
            &[],
        ),
        rest(
            Tenant("loadbalancer.manage"),
            "POST",
            "/api/v1/projects/{project}/load-balancers",
            format!("/api/v1/projects/{p}/load-balancers"),
            &[("json", PLANTED_BALANCER)],
        ),
        rest(
            Tenant("loadbalancer.read"),
            "GET",
            "/api/v1/workspaces/{workspace}/load-balancers",
            format!("/api/v1/workspaces/{}/load-balancers", v.workspace),
            &[],
        ),
        rest(
            Tenant("loadbalancer.manage"),
            "POST",
            "/api/v1/workspaces/{workspace}/load-balancers",
            format!("/api/v1/workspaces/{}/load-balancers", v.workspace),
            &[("json", PLANTED_BALANCER)],
        ),
        rest(
            Tenant("loadbalancer.read"),
            "GET",
            "/api/v1/load-balancers/{load_balancer}",
            format!("/api/v1/load-balancers/{}", v.load_balancer),
            &[],
        ),
        rest(
            Tenant("loadbalancer.manage"),
            "PUT",
            "/api/v1/load-balancers/{load_balancer}",
            format!("/api/v1/load-balancers/{}", v.load_balancer),
            &[("json", PLANTED_BALANCER)],
        ),
        rest(
            Tenant("loadbalancer.manage"),
            "DELETE",
            "/api/v1/load-balancers/{load_balancer}",
            format!("/api/v1/load-balancers/{}", v.load_balancer),
            &[],
        ),
        rest(
            Tenant("organization.read"),
            "GET",
            "/api/v1/organizations/{org}/notification-channels",
            format!("/api/v1/organizations/{o}/notification-channels"),
            &[],
        ),
        rest(
            Tenant("notification.manage"),
            "POST",
            "/api/v1/organizations/{org}/notification-channels",
            format!("/api/v1/organizations/{o}/notification-channels"),
            &[("json", PLANTED_CHANNEL)],
        ),
        rest(
            Tenant("notification.manage"),
            "PUT",
            "/api/v1/notification-channels/{channel}",
            format!("/api/v1/notification-channels/{}", v.notification_channel),
            &[("json", PLANTED_CHANNEL)],
        ),
        rest(
            Tenant("notification.manage"),
            "DELETE",
            "/api/v1/notification-channels/{channel}",
            format!("/api/v1/notification-channels/{}", v.notification_channel),
            &[],
        ),
        rest(
            Tenant("notification.manage"),
            "POST",
            "/api/v1/notification-channels/{channel}/test",
            format!(
                "/api/v1/notification-channels/{}/test",
                v.notification_channel
            ),
            &[],
        ),
        rest(
            Tenant("notification.manage"),
            "GET",
            "/api/v1/organizations/{org}/notifications",
            format!("/api/v1/organizations/{o}/notifications"),
            &[],
        ),
        rest(
            Tenant("notification.manage"),
            "POST",
            "/api/v1/notifications/{notification}/retry",
            format!("/api/v1/notifications/{}/retry", v.notification),
            &[],
        ),
        rest(
            Tenant("monitoring.read"),
            "GET",
            "/api/v1/projects/{project}/monitors",
            format!("/api/v1/projects/{p}/monitors"),
            &[],
        ),
        rest(
            Tenant("monitoring.manage"),
            "POST",
            "/api/v1/projects/{project}/monitors",
            format!("/api/v1/projects/{p}/monitors"),
            &[("json", PLANTED_MONITOR)],
        ),
        rest(
            Tenant("monitoring.read"),
            "GET",
            "/api/v1/workspaces/{workspace}/monitors",
            format!("/api/v1/workspaces/{}/monitors", v.workspace),
            &[],
        ),
        rest(
            Tenant("monitoring.manage"),
            "POST",
            "/api/v1/workspaces/{workspace}/monitors",
            format!("/api/v1/workspaces/{}/monitors", v.workspace),
            &[("json", PLANTED_MONITOR)],
        ),
        rest(
            Tenant("monitoring.read"),
            "GET",
            "/api/v1/monitors/{monitor}",
            format!("/api/v1/monitors/{}", v.monitor),
            &[],
        ),
        rest(
            Tenant("monitoring.manage"),
            "PUT",
            "/api/v1/monitors/{monitor}",
            format!("/api/v1/monitors/{}", v.monitor),
            &[("json", PLANTED_MONITOR)],
        ),
        rest(
            Tenant("monitoring.manage"),
            "DELETE",
            "/api/v1/monitors/{monitor}",
            format!("/api/v1/monitors/{}", v.monitor),
            &[],
        ),
        rest(
            Tenant("monitoring.read"),
            "GET",
            "/api/v1/monitors/{monitor}/results",
            format!("/api/v1/monitors/{}/results", v.monitor),
            &[],
        ),
        rest(
            Tenant("monitoring.read"),
            "GET",
            "/api/v1/monitors/{monitor}/series",
            format!("/api/v1/monitors/{}/series", v.monitor),
            &[],
        ),
        rest(
            Tenant("monitoring.read"),
            "GET",
            "/api/v1/projects/{project}/alerts",
            format!("/api/v1/projects/{p}/alerts"),
            &[],
        ),
        rest(
            Tenant("monitoring.read"),
            "GET",
            "/api/v1/alerts/{alert}",
            format!("/api/v1/alerts/{}", v.alert),
            &[],
        ),
        rest(
            Tenant("monitoring.manage"),
            "POST",
            "/api/v1/alerts/{alert}/acknowledge",
            format!("/api/v1/alerts/{}/acknowledge", v.alert),
            &[("comment", "planted")],
        ),
        rest(
            Tenant("monitoring.read"),
            "GET",
            "/api/v1/projects/{project}/silences",
            format!("/api/v1/projects/{p}/silences"),
            &[],
        ),
        rest(
            Tenant("monitoring.manage"),
            "POST",
            "/api/v1/projects/{project}/silences",
            format!("/api/v1/projects/{p}/silences"),
            &[("json", PLANTED_SILENCE)],
        ),
        rest(
            Tenant("monitoring.manage"),
            "DELETE",
            "/api/v1/silences/{silence}",
            format!("/api/v1/silences/{}", v.silence),
            &[],
        ),
        rest(
            WorkspaceKey(false),
            "GET",
            "/api/v1/cluster/load-balancers",
            "/api/v1/cluster/load-balancers".into(),
            &[],
        ),
        rest(
            WorkspaceKey(true),
            "GET",
            "/api/v1/cluster/load-balancers/{namespace}/{name}",
            "/api/v1/cluster/load-balancers/default/web".into(),
            &[],
        ),
        rest(
            WorkspaceKey(false),
            "PUT",
            "/api/v1/cluster/load-balancers/{namespace}/{name}",
            "/api/v1/cluster/load-balancers/default/web".into(),
            &[(
                "json",
                r#"{"listeners": [{"protocol": "tcp", "port": 81, "target_port": 30081}]}"#,
            )],
        ),
        rest(
            WorkspaceKey(true),
            "DELETE",
            "/api/v1/cluster/load-balancers/{namespace}/{name}",
            "/api/v1/cluster/load-balancers/default/web".into(),
            &[],
        ),
    ])
}

/// A valid notification channel body, so that probes reach authorization.
const PLANTED_CHANNEL: &str = r#"{"name": "planted",
    "config": {"kind": "email", "addresses": ["planted@example.com"]}}"#;

/// A valid monitor body, so that probes reach authorization.
const PLANTED_MONITOR: &str = r#"{"name": "planted",
    "probe": {"kind": "tcp", "host": "127.0.0.1", "port": 9, "timeout_ms": 1000},
    "interval_seconds": 60, "sources": [{"type": "builtin"}], "conditions": [],
    "channels": [], "failure_threshold": 3, "success_threshold": 2,
    "repeat_interval_seconds": 14400, "public": false, "maintenance_opt_in": false,
    "paused": false}"#;

/// A valid silence body.
const PLANTED_SILENCE: &str = r#"{"monitor": null, "duration_seconds": 3600,
    "comment": "planted"}"#;

/// A valid load balancer body, so that probes reach authorization.
const PLANTED_BALANCER: &str = r#"{"name": "planted",
    "listeners": [{"protocol": "tcp", "port": 80, "target_port": 8080}], "targets": []}"#;

struct Answer {
    status: u16,
    body: String,
}

async fn call_server_function(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    cookie: Option<&str>,
    args: &[(&'static str, String)],
) -> Answer {
    let mut request = client
        .post(format!("{base}/api/{name}"))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(args);
    if let Some(c) = cookie {
        request = request.header(reqwest::header::COOKIE, c);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        body: response.text().await.unwrap(),
    }
}

async fn call_rest(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &[(&'static str, String)],
) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method.clone(), format!("{base}{path}"));
    if let Some(k) = key {
        request = request.bearer_auth(k);
    }
    if let [("json", raw)] = body {
        // A body that is not a flat object of strings, sent as it is.
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(raw.clone());
    } else if method == reqwest::Method::POST || method == reqwest::Method::PATCH {
        let json: serde_json::Map<String, Value> = body
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
            .collect();
        request = request.json(&json);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        body: response.text().await.unwrap(),
    }
}

fn reveals_nothing(answer: &Answer, what: &str) {
    for secret in SECRETS {
        assert!(
            !answer.body.contains(secret),
            "{what}: the refusal reveals {secret:?}: {}",
            answer.body
        );
    }
}

fn viewer_may(permission: &str) -> bool {
    BuiltinRole::Viewer.grants(
        Permission::from_key(permission)
            .unwrap_or_else(|| panic!("{permission} is not a permission key")),
    )
}

#[tokio::test]
async fn every_route_refuses_other_tenants_and_viewers_without_the_key() {
    let database = fresh_database().await;
    let mut portal = Launch::with_database(database.clone()).spawn();
    portal.ready().await;
    let base = portal.url("");
    let db = PgPool::connect(&database).await.unwrap();
    let victim = fixture(&db, &url::Url::parse(&base).unwrap()).await;

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mallory = sign_in(&client, &base, "mallory@elsewhere.example").await;
    let vic = sign_in(&client, &base, "vic@victim.example").await;
    let mallory_actor = identity::sign_in_with_password(
        &db,
        "mallory@elsewhere.example",
        PASSWORD,
        &RequestMeta::default(),
    )
    .await
    .unwrap();
    let identity::PasswordOutcome::SignedIn(mallory_account) = mallory_actor else {
        panic!("no second factor")
    };
    let mallory_key = api_keys::create(
        &db,
        &mallory_account.actor(RequestMeta::default()),
        "mallory",
        None,
    )
    .await
    .unwrap()
    .secret;
    let vic_account = identity::sign_in_with_password(
        &db,
        "vic@victim.example",
        PASSWORD,
        &RequestMeta::default(),
    )
    .await
    .unwrap();
    let identity::PasswordOutcome::SignedIn(vic_account) = vic_account else {
        panic!("no second factor")
    };
    let vic_key = api_keys::create(&db, &vic_account.actor(RequestMeta::default()), "vic", None)
        .await
        .unwrap()
        .secret;

    // The routes, from the binary.
    let (status, stdout, _) = run_to_exit(&["routes"], &[]);
    assert!(status.success());
    let routes: Value = serde_json::from_str(&stdout).unwrap();

    // Server functions.
    let probes = server_function_probes(&victim);
    let listed: BTreeSet<String> = routes["server_functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["path"]
                .as_str()
                .unwrap()
                .trim_start_matches("/api/")
                .to_string()
        })
        .collect();
    let unknown: Vec<&String> = listed
        .iter()
        .filter(|n| !probes.contains_key(n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "new server functions missing from the authorization matrix: {unknown:?}"
    );
    let stale: Vec<&&str> = probes.keys().filter(|n| !listed.contains(**n)).collect();
    assert!(
        stale.is_empty(),
        "the matrix names server functions that no longer exist: {stale:?}"
    );

    let mut checked = 0;
    for (name, probe) in &probes {
        let what = format!("server function {name}");
        match &probe.kind {
            Kind::Public(reason) => {
                assert!(!reason.is_empty(), "{what}: say why it is public");
                continue;
            }
            Kind::Tenant(permission) => {
                let outsider =
                    call_server_function(&client, &base, name, Some(&mallory), &probe.args).await;
                assert_eq!(
                    outsider.status, 404,
                    "{what} by another tenant: {}",
                    outsider.body
                );
                assert_eq!(outsider.body, "\"NotFound\"", "{what} by another tenant");
                let viewer =
                    call_server_function(&client, &base, name, Some(&vic), &probe.args).await;
                if viewer_may(permission) {
                    assert_eq!(
                        viewer.status, 200,
                        "{what} by a viewer (holds {permission}): {}",
                        viewer.body
                    );
                } else {
                    assert_eq!(
                        viewer.status, 403,
                        "{what} by a viewer (lacks {permission}): {}",
                        viewer.body
                    );
                    assert_eq!(
                        viewer.body,
                        format!("{{\"Forbidden\":\"{permission}\"}}"),
                        "{what} by a viewer"
                    );
                }
            }
            Kind::OwnWithVictimId => {
                let outsider =
                    call_server_function(&client, &base, name, Some(&mallory), &probe.args).await;
                assert_eq!(
                    outsider.status, 404,
                    "{what} naming the victim's object: {}",
                    outsider.body
                );
                reveals_nothing(&outsider, &what);
            }
            Kind::Own => {
                let outsider =
                    call_server_function(&client, &base, name, Some(&mallory), &probe.args).await;
                assert!(
                    outsider.status < 500,
                    "{what}: {} {}",
                    outsider.status,
                    outsider.body
                );
                reveals_nothing(&outsider, &what);
            }
            Kind::WorkspaceKey(_) => {
                panic!("{what}: server functions take sessions, not workspace keys")
            }
            Kind::Operator => {
                for (who, cookie) in [("another tenant", &mallory), ("a viewer", &vic)] {
                    let answer =
                        call_server_function(&client, &base, name, Some(cookie), &probe.args).await;
                    assert_eq!(answer.status, 404, "{what} by {who}: {}", answer.body);
                    assert_eq!(answer.body, "\"NotFound\"");
                }
            }
        }
        let anonymous = call_server_function(&client, &base, name, None, &probe.args).await;
        assert_eq!(
            anonymous.status, 401,
            "{what} without a session: {}",
            anonymous.body
        );
        reveals_nothing(&anonymous, &what);
        checked += 1;
    }

    // REST routes.
    let rest = rest_probes(&victim);
    let listed: BTreeSet<(String, String)> = routes["rest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let unknown: Vec<_> = listed.iter().filter(|r| !rest.contains_key(*r)).collect();
    assert!(
        unknown.is_empty(),
        "new REST routes missing from the authorization matrix: {unknown:?}"
    );
    for ((method, template), probe) in &rest {
        let what = format!("{method} {template}");
        let path = probe.path.as_deref().unwrap();
        match &probe.kind {
            Kind::Tenant(permission) => {
                let outsider = call_rest(
                    &client,
                    &base,
                    method,
                    path,
                    Some(&mallory_key),
                    &probe.args,
                )
                .await;
                assert_eq!(
                    outsider.status, 404,
                    "{what} by another tenant: {}",
                    outsider.body
                );
                reveals_nothing(&outsider, &what);
                let viewer =
                    call_rest(&client, &base, method, path, Some(&vic_key), &probe.args).await;
                if viewer_may(permission) {
                    assert_eq!(viewer.status, 200, "{what} by a viewer: {}", viewer.body);
                } else {
                    assert_eq!(viewer.status, 403, "{what} by a viewer: {}", viewer.body);
                    reveals_nothing(&viewer, &what);
                }
            }
            Kind::OwnWithVictimId => {
                let outsider = call_rest(
                    &client,
                    &base,
                    method,
                    path,
                    Some(&mallory_key),
                    &probe.args,
                )
                .await;
                assert_eq!(outsider.status, 404, "{what}: {}", outsider.body);
            }
            Kind::Own => {
                let outsider = call_rest(
                    &client,
                    &base,
                    method,
                    path,
                    Some(&mallory_key),
                    &probe.args,
                )
                .await;
                assert!(
                    outsider.status < 300,
                    "{what}: {} {}",
                    outsider.status,
                    outsider.body
                );
                reveals_nothing(&outsider, &what);
            }
            Kind::WorkspaceKey(victims_object) => {
                // Account credentials of anyone, the victim's own owner
                // included, are not workspace keys.
                for (who, key) in [
                    ("another tenant's account key", mallory_key.as_str()),
                    ("a viewer's account key", vic_key.as_str()),
                    ("the owner's account key", victim.alice_key.as_str()),
                ] {
                    let answer =
                        call_rest(&client, &base, method, path, Some(key), &probe.args).await;
                    assert_eq!(answer.status, 401, "{what} with {who}: {}", answer.body);
                    reveals_nothing(&answer, &what);
                }
                let by_session = client
                    .request(
                        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                        format!("{base}{path}"),
                    )
                    .header(reqwest::header::COOKIE, &mallory)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(by_session.status(), 401, "{what} with a session");
                let other = call_rest(
                    &client,
                    &base,
                    method,
                    path,
                    Some(&victim.mallory_workspace_key),
                    &probe.args,
                )
                .await;
                if *victims_object {
                    assert_eq!(
                        other.status, 404,
                        "{what} with another workspace's key: {}",
                        other.body
                    );
                } else {
                    assert!(
                        other.status < 500,
                        "{what} with another workspace's key: {} {}",
                        other.status,
                        other.body
                    );
                }
                reveals_nothing(&other, &what);
                if method == "GET" {
                    let own = call_rest(
                        &client,
                        &base,
                        method,
                        path,
                        Some(&victim.workspace_key),
                        &probe.args,
                    )
                    .await;
                    assert_eq!(own.status, 200, "{what} with its own key: {}", own.body);
                }
            }
            other => panic!("{what}: unexpected kind {other:?}"),
        }
        let anonymous = call_rest(&client, &base, method, path, None, &probe.args).await;
        assert_eq!(
            anonymous.status, 401,
            "{what} without a key: {}",
            anonymous.body
        );
        let forged = call_rest(
            &client,
            &base,
            method,
            path,
            Some("lbk_forged"),
            &probe.args,
        )
        .await;
        assert_eq!(forged.status, 401, "{what} with a forged key");
        checked += 1;
    }
    // Routes that are neither server functions nor REST.
    let other: BTreeSet<String> = routes["other"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .collect();
    let known = BTreeSet::from([
        "GET /api/tasks/{task}/events".to_string(),
        "GET /api/workspaces/{workspace}/kubeconfig/{access}".to_string(),
        "GET /metrics".to_string(),
        "GET /agent/v1/connect".to_string(),
        "GET /agent/v1/binary".to_string(),
        "GET /agent/v1/releases/{version}".to_string(),
        "GET /api/v1/hosts/{host}/shell/{session}/attach".to_string(),
    ]);
    assert_eq!(
        other, known,
        "new HTTP routes must be added to the authorization matrix"
    );
    let events = format!("{base}/api/tasks/{}/events", victim.task);
    let outsider = client
        .get(&events)
        .header(reqwest::header::COOKIE, &mallory)
        .send()
        .await
        .unwrap();
    assert_eq!(
        outsider.status(),
        404,
        "live task events for another tenant"
    );
    let anonymous = client.get(&events).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let viewer = client
        .get(&events)
        .header(reqwest::header::COOKIE, &vic)
        .send()
        .await
        .unwrap();
    assert_eq!(viewer.status(), 200, "a viewer may watch (task.read)");
    checked += 1;
    for access in ["admin", "oidc"] {
        let download = format!(
            "{base}/api/workspaces/{}/kubeconfig/{access}",
            victim.workspace
        );
        let status = |cookie: Option<&String>| {
            let mut request = client.get(&download);
            if let Some(cookie) = cookie {
                request = request.header(reqwest::header::COOKIE, cookie);
            }
            async move { request.send().await.unwrap().status() }
        };
        assert_eq!(
            status(Some(&mallory)).await,
            404,
            "{access} kubeconfig for another tenant"
        );
        assert_eq!(status(None).await, 401, "{access} kubeconfig anonymously");
        assert_eq!(
            status(Some(&vic)).await,
            403,
            "a viewer may not download the {access} kubeconfig"
        );
        checked += 1;
    }

    // A shell attach: another tenant does not find the host, a viewer may
    // not open shells, nobody gets in without a session.
    let attach = format!(
        "{base}/api/v1/hosts/{}/shell/{}/attach?token=x",
        victim.host, victim.shell_session
    );
    let status = |cookie: Option<&String>| {
        let mut request = client.get(&attach);
        if let Some(cookie) = cookie {
            request = request.header(reqwest::header::COOKIE, cookie);
        }
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(
        status(Some(&mallory)).await,
        404,
        "shell attach by another tenant"
    );
    assert_eq!(status(Some(&vic)).await, 403, "shell attach by a viewer");
    assert_eq!(status(None).await, 401, "shell attach anonymously");
    checked += 1;
    // Agents need a token of their own; an account's session or API key is
    // not one.
    let connect = client
        .get(format!("{base}/agent/v1/connect"))
        .header("x-loopback-agent-protocol", "1")
        .header(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", victim.alice_key),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(connect.status(), 401, "an API key is not an agent token");
    checked += 1;

    assert!(checked >= 60, "only {checked} routes were probed");

    // Nothing of the victim's changed.
    let org: (String, String, String) = sqlx::query_as(
        "SELECT name, verification::text, state::text FROM organizations WHERE id = $1::uuid",
    )
    .bind(&victim.org)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        org,
        (
            "Acme Victim Corp".into(),
            "verified".into(),
            "active".into()
        )
    );
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM projects WHERE organization_id = $1::uuid ORDER BY name",
    )
    .bind(&victim.org)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(names, vec!["Victim Project"]);
    let workspaces: Vec<String> =
        sqlx::query_scalar("SELECT id::text FROM workspaces WHERE project_id = $1::uuid")
            .bind(&victim.project)
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(workspaces, vec![victim.workspace.clone()]);
    let bindings: i64 =
        sqlx::query_scalar("SELECT count(*) FROM role_bindings WHERE organization_id = $1::uuid")
            .bind(&victim.org)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(bindings, 2, "Alice as owner, Vic as viewer");
    let role: String = sqlx::query_scalar("SELECT name FROM roles WHERE id = $1::uuid")
        .bind(&victim.role)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(role, "Victim Role");
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM invitations WHERE organization_id = $1::uuid AND accepted_at IS NULL AND revoked_at IS NULL AND declined_at IS NULL")
        .bind(&victim.org)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(pending, 1);
    assert!(
        api_keys::authenticate(&db, &victim.alice_key, RequestMeta::default())
            .await
            .is_ok()
    );
    let balancers: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT l.name, l.state::text, l.listeners FROM load_balancers l
         JOIN projects p ON p.id = l.project_id WHERE p.organization_id = $1::uuid",
    )
    .bind(&victim.org)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(balancers.len(), 1, "{balancers:?}");
    assert_eq!(balancers[0].0, "victim-lb");
    assert_ne!(balancers[0].1, "deleting");
    assert_eq!(balancers[0].2[0]["port"], 80);
    let monitors: Vec<(String, bool)> = sqlx::query_as(
        "SELECT name, paused FROM monitors WHERE organization_id = $1::uuid ORDER BY name",
    )
    .bind(&victim.org)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        monitors,
        [
            ("victim-alerting".to_string(), true),
            ("victim-monitor".to_string(), false)
        ]
    );
    let alert: (String, bool) = sqlx::query_as(
        "SELECT state::text, acknowledged_at IS NOT NULL FROM alerts WHERE id = $1::uuid",
    )
    .bind(&victim.alert)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(alert, ("firing".to_string(), false));
    let silenced: bool =
        sqlx::query_scalar("SELECT ends_at > now() FROM monitor_silences WHERE id = $1::uuid")
            .bind(&victim.silence)
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(silenced, "the victim's silence was ended");
}
