//! Organizations, projects, members, roles and the authorization rules that
//! keep tenants apart, against a real database.

mod support;

use platform::Error;
use platform::authz::{BuiltinRole, Permission, Resource, authorize};
use platform::tenancy::members::{self, RoleSpec, Scope};
use platform::tenancy::{organizations, projects, roles};
use platform::workspaces;
use protocol::views::{OrganizationState, PageRequest, Verification};
use sqlx::PgPool;
use support::{actor, audit_actions, operator, public_url};

async fn verified_org(
    db: &PgPool,
    owner: &platform::authz::Actor,
    name: &str,
) -> protocol::ids::OrganizationId {
    let org = organizations::create(db, owner, name).await.unwrap();
    let op = operator(db).await;
    organizations::set_verification(db, &op, org.id, Verification::Verified, "checked")
        .await
        .unwrap();
    org.id
}

async fn add_member(
    db: &PgPool,
    org: protocol::ids::OrganizationId,
    owner: &platform::authz::Actor,
    email: &str,
    role: &str,
) -> platform::authz::Actor {
    let member = actor(db, email).await;
    let invitation = members::invite(
        db,
        owner,
        &public_url(),
        org,
        email,
        RoleSpec::parse("role", role).unwrap(),
    )
    .await
    .unwrap();
    members::respond(db, &member, invitation.id, true)
        .await
        .unwrap();
    member
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn creator_owns_the_organization_and_others_cannot_see_it(db: PgPool) {
    let alice = actor(&db, "alice@example.com").await;
    let mallory = actor(&db, "mallory@example.com").await;
    let org = organizations::create(&db, &alice, "Acme Corp")
        .await
        .unwrap();
    assert_eq!(org.my_roles, vec!["owner"]);
    assert_eq!(org.verification, Verification::Pending);

    assert!(matches!(
        organizations::get(&db, &mallory, org.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        projects::create(&db, &mallory, org.id, "Sneaky").await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        members::list(&db, &mallory, org.id).await,
        Err(Error::NotFound)
    ));
    assert_eq!(
        organizations::list_mine(&db, &mallory, PageRequest::default())
            .await
            .unwrap()
            .total,
        0
    );

    let bad = organizations::create(&db, &alice, " x ").await;
    assert!(matches!(bad, Err(Error::Invalid { ref field, .. }) if field == "name"));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn workspaces_need_a_verified_active_organization(db: PgPool) {
    let alice = actor(&db, "alice@example.com").await;
    let org = organizations::create(&db, &alice, "Acme").await.unwrap();
    let project = projects::create(&db, &alice, org.id, "Web").await.unwrap();

    let pending = support::workspace(&db, &alice, project.id, "prod").await;
    assert!(
        matches!(pending, Err(Error::OrganizationNotUsable(_))),
        "{pending:?}"
    );

    let op = operator(&db).await;
    organizations::set_verification(&db, &op, org.id, Verification::Verified, "ok")
        .await
        .unwrap();
    let ws = support::workspace(&db, &alice, project.id, "Prod EU")
        .await
        .unwrap();
    assert_eq!(ws.name, "prod-eu");

    organizations::set_state(&db, &op, org.id, OrganizationState::Suspended, "unpaid")
        .await
        .unwrap();
    let suspended = support::workspace(&db, &alice, project.id, "second").await;
    assert!(matches!(suspended, Err(Error::OrganizationNotUsable(_))));
    // Suspended organizations can still be read.
    assert_eq!(
        workspaces::list(&db, &alice, project.id)
            .await
            .unwrap()
            .len(),
        1
    );

    // Only operators reach the console functions.
    let denied = organizations::set_state(&db, &alice, org.id, OrganizationState::Active, "").await;
    assert!(matches!(denied, Err(Error::NotFound)));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn viewers_see_projects_but_cannot_create_workspaces(db: PgPool) {
    let alice = actor(&db, "alice@example.com").await;
    let org = verified_org(&db, &alice, "Acme").await;
    let project = projects::create(&db, &alice, org, "Web").await.unwrap();
    let viewer = add_member(&db, org, &alice, "vic@example.com", "viewer").await;

    let seen = projects::list(&db, &viewer, org, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(seen.items.len(), 1);
    assert_eq!(
        projects::get(&db, &viewer, project.id).await.unwrap().name,
        "Web"
    );
    let refused = support::workspace(&db, &viewer, project.id, "mine").await;
    assert!(
        matches!(refused, Err(Error::Forbidden(Permission::WorkspaceCreate))),
        "{refused:?}"
    );
    assert!(matches!(
        projects::rename(&db, &viewer, project.id, "Hacked").await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        members::invite(
            &db,
            &viewer,
            &public_url(),
            org,
            "x@example.com",
            RoleSpec::Builtin(BuiltinRole::Owner)
        )
        .await,
        Err(Error::Forbidden(_))
    ));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn project_scoped_bindings_do_not_reach_sibling_projects(db: PgPool) {
    let alice = actor(&db, "alice@example.com").await;
    let org = verified_org(&db, &alice, "Acme").await;
    let web = projects::create(&db, &alice, org, "Web").await.unwrap();
    let data = projects::create(&db, &alice, org, "Data").await.unwrap();
    let bob = add_member(&db, org, &alice, "bob@example.com", "viewer").await;
    // Drop Bob's org-wide role; give him admin on Web only.
    let bindings = members::list(&db, &alice, org).await.unwrap();
    let bob_view = bindings
        .iter()
        .find(|m| m.email == "bob@example.com")
        .unwrap();
    members::unbind(&db, &alice, org, bob_view.bindings[0].id)
        .await
        .unwrap();
    members::bind(
        &db,
        &alice,
        org,
        bob.account_id,
        Scope::Project(web.id),
        RoleSpec::Builtin(BuiltinRole::Admin),
    )
    .await
    .unwrap();

    assert!(
        support::workspace(&db, &bob, web.id, "web-prod")
            .await
            .is_ok()
    );
    assert!(matches!(
        projects::get(&db, &bob, data.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        support::workspace(&db, &bob, data.id, "x").await,
        Err(Error::NotFound)
    ));
    let mine = projects::list_all_mine(&db, &bob, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        mine.items
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        vec!["Web"]
    );
    // An admin on one project cannot make anyone an owner.
    let owner_on_project = members::bind(
        &db,
        &bob,
        org,
        bob.account_id,
        Scope::Project(web.id),
        RoleSpec::Builtin(BuiltinRole::Owner),
    )
    .await;
    assert!(matches!(owner_on_project, Err(Error::Invalid { .. })));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn projects_with_workspaces_cannot_be_deleted(db: PgPool) {
    let alice = actor(&db, "alice@example.com").await;
    let org = verified_org(&db, &alice, "Acme").await;
    let project = projects::create(&db, &alice, org, "Web").await.unwrap();
    support::workspace(&db, &alice, project.id, "prod")
        .await
        .unwrap();
    match projects::delete(&db, &alice, project.id).await {
        Err(Error::Conflict(message)) => assert!(message.contains("1 workspace"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let empty = projects::create(&db, &alice, org, "Empty").await.unwrap();
    projects::delete(&db, &alice, empty.id).await.unwrap();
    assert!(matches!(
        projects::get(&db, &alice, empty.id).await,
        Err(Error::NotFound)
    ));
    let dup = projects::create(&db, &alice, org, "web").await;
    assert!(matches!(dup, Err(Error::Invalid { ref field, .. }) if field == "name"));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn projects_paginate(db: PgPool) {
    let alice = actor(&db, "alice@example.com").await;
    let org = organizations::create(&db, &alice, "Acme").await.unwrap();
    for i in 0..25 {
        projects::create(&db, &alice, org.id, &format!("Project {i:02}"))
            .await
            .unwrap();
    }
    let first = projects::list(&db, &alice, org.id, PageRequest::new(1, 10))
        .await
        .unwrap();
    let third = projects::list(&db, &alice, org.id, PageRequest::new(3, 10))
        .await
        .unwrap();
    assert_eq!(first.total, 25);
    assert_eq!(first.pages(), 3);
    assert_eq!(first.items[0].name, "Project 00");
    assert_eq!(third.items.len(), 5);
    assert_eq!(third.items[4].name, "Project 24");
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn the_last_owner_stays(db: PgPool) {
    let alice = actor(&db, "alice@example.com").await;
    let org = organizations::create(&db, &alice, "Acme").await.unwrap().id;
    let leave = members::remove(&db, &alice, org, alice.account_id).await;
    assert!(matches!(leave, Err(Error::Conflict(_))), "{leave:?}");
    let owner_binding = members::list(&db, &alice, org).await.unwrap()[0].bindings[0].id;
    assert!(matches!(
        members::unbind(&db, &alice, org, owner_binding).await,
        Err(Error::Conflict(_))
    ));

    // With a second owner, the first may go.
    let bob = add_member(&db, org, &alice, "bob@example.com", "owner").await;
    members::remove(&db, &alice, org, alice.account_id)
        .await
        .unwrap();
    assert!(matches!(
        organizations::get(&db, &alice, org).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        members::remove(&db, &bob, org, bob.account_id).await,
        Err(Error::Conflict(_))
    ));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn admins_cannot_grant_or_remove_ownership(db: PgPool) {
    let alice = actor(&db, "alice@example.com").await;
    let org = organizations::create(&db, &alice, "Acme").await.unwrap().id;
    let admin = add_member(&db, org, &alice, "adam@example.com", "admin").await;
    let as_owner = members::invite(
        &db,
        &admin,
        &public_url(),
        org,
        "eve@example.com",
        RoleSpec::Builtin(BuiltinRole::Owner),
    )
    .await;
    assert!(matches!(as_owner, Err(Error::Invalid { ref field, .. }) if field == "role"));
    assert!(matches!(
        members::remove(&db, &admin, org, alice.account_id).await,
        Err(Error::Invalid { .. })
    ));
    // But they can invite members.
    members::invite(
        &db,
        &admin,
        &public_url(),
        org,
        "eve@example.com",
        RoleSpec::Builtin(BuiltinRole::Member),
    )
    .await
    .unwrap();
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn invitations_are_for_their_address_only(db: PgPool) {
    let alice = actor(&db, "alice@example.com").await;
    let org = organizations::create(&db, &alice, "Acme").await.unwrap().id;
    let invitation = members::invite(
        &db,
        &alice,
        &public_url(),
        org,
        "Bob@Example.com",
        RoleSpec::Builtin(BuiltinRole::Viewer),
    )
    .await
    .unwrap();
    assert_eq!(invitation.email, "bob@example.com");

    let mail: String =
        sqlx::query_scalar("SELECT body FROM outbox_emails WHERE to_address = 'bob@example.com'")
            .fetch_one(&db)
            .await
            .unwrap();
    let token = mail
        .split("/invitations/")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    let eve = actor(&db, "eve@example.com").await;
    assert!(matches!(
        members::invitation_for_link(&db, &eve, &token).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        members::respond(&db, &eve, invitation.id, true).await,
        Err(Error::NotFound)
    ));

    let bob = actor(&db, "bob@example.com").await;
    let seen = members::invitation_for_link(&db, &bob, &token)
        .await
        .unwrap();
    assert_eq!(seen.organization_name, "Acme");
    assert_eq!(members::my_invitations(&db, &bob).await.unwrap().len(), 1);
    members::respond(&db, &bob, invitation.id, true)
        .await
        .unwrap();
    assert!(members::my_invitations(&db, &bob).await.unwrap().is_empty());
    let org_view = organizations::get(&db, &bob, org).await.unwrap();
    assert_eq!(org_view.my_roles, vec!["viewer"]);
    assert!(
        matches!(
            members::respond(&db, &bob, invitation.id, true).await,
            Err(Error::NotFound)
        ),
        "answered once"
    );

    let again = members::invite(
        &db,
        &alice,
        &public_url(),
        org,
        "bob@example.com",
        RoleSpec::Builtin(BuiltinRole::Member),
    )
    .await;
    assert!(matches!(again, Err(Error::Invalid { ref field, .. }) if field == "email"));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn custom_roles_grant_exactly_their_keys(db: PgPool) {
    let alice = actor(&db, "alice@example.com").await;
    let org = verified_org(&db, &alice, "Acme").await;
    let project = projects::create(&db, &alice, org, "Web").await.unwrap();
    let bad = roles::create(
        &db,
        &alice,
        org,
        "Deployer",
        "",
        &["workspace.create".into(), "platform.audit".into()],
    )
    .await;
    assert!(matches!(bad, Err(Error::Invalid { ref field, .. }) if field == "permissions"));
    let clash = roles::create(&db, &alice, org, "Viewer", "", &["project.read".into()]).await;
    assert!(matches!(clash, Err(Error::Invalid { ref field, .. }) if field == "name"));

    let deployer = roles::create(
        &db,
        &alice,
        org,
        "Deployer",
        "Ships things",
        &["workspace.create".into(), "project.read".into()],
    )
    .await
    .unwrap();
    let dora = add_member(
        &db,
        org,
        &alice,
        "dora@example.com",
        &format!("custom:{}", deployer.id),
    )
    .await;
    assert!(
        support::workspace(&db, &dora, project.id, "dora-ws")
            .await
            .is_ok()
    );
    assert!(matches!(
        projects::rename(&db, &dora, project.id, "X").await,
        Err(Error::Forbidden(_))
    ));
    // organization.read is not in the role: the organization page is hidden.
    assert!(matches!(
        organizations::get(&db, &dora, org).await,
        Err(Error::NotFound)
    ));

    roles::delete(&db, &alice, org, deployer.id).await.unwrap();
    assert!(matches!(
        support::workspace(&db, &dora, project.id, "again").await,
        Err(Error::NotFound)
    ));

    let (permissions, builtin) = roles::catalogue();
    assert_eq!(permissions.len(), Permission::ALL.len());
    assert_eq!(builtin.len(), 4);
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn every_mutation_is_audited_with_its_organization(db: PgPool) {
    let alice = actor(&db, "alice@example.com").await;
    let org = verified_org(&db, &alice, "Acme").await;
    let project = projects::create(&db, &alice, org, "Web").await.unwrap();
    projects::rename(&db, &alice, project.id, "Website")
        .await
        .unwrap();
    let actions = audit_actions(&db).await;
    for expected in [
        "organization.create",
        "organization.verification",
        "project.create",
        "project.rename",
    ] {
        assert!(
            actions.contains(&expected.to_string()),
            "{expected} missing from {actions:?}"
        );
    }
    let filter = platform::audit::Filter::default();
    let entries = platform::audit::for_organization(&db, &alice, org, &filter)
        .await
        .unwrap();
    assert!(entries.iter().all(|e| e.organization_id == Some(org)));
    assert_eq!(entries[0].action, "project.rename");
    assert_eq!(entries[0].ip.as_deref(), Some("192.0.2.10"));
    let viewer = add_member(&db, org, &alice, "vic@example.com", "viewer").await;
    assert!(matches!(
        platform::audit::for_organization(&db, &viewer, org, &filter).await,
        Err(Error::Forbidden(_))
    ));

    let grant = authorize(
        &db,
        &alice,
        Permission::HostShell,
        Resource::Project(project.id),
    )
    .await
    .unwrap();
    assert_eq!(grant.organization_id, Some(org));
}
