//! Accounts, passwords, second factors and API keys against a real database.

mod support;

use platform::Error;
use platform::crypto::SecretBox;
use platform::identity::{self, PasswordOutcome, SignUp, api_keys, totp};
use sqlx::PgPool;
use support::{PASSWORD, account, actor, audit_actions, meta, public_url};

fn secrets() -> SecretBox {
    SecretBox::from_key([9; 32])
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn sign_up_validates_every_field_and_writes_nothing_on_error(db: PgPool) {
    let bad = |email: &str, name: &str, password: &str| SignUp {
        email: email.into(),
        display_name: name.into(),
        password: password.into(),
    };
    for (input, field) in [
        (bad("not-an-email", "Ann", PASSWORD), "email"),
        (bad("ann@example.com", "  ", PASSWORD), "display_name"),
        (bad("ann@example.com", "Ann", "short"), "password"),
        (bad("ann@example.com", "Ann", "password1234"), "password"),
    ] {
        match identity::sign_up(&db, input, &meta()).await {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected an error on {field}, got {other:?}"),
        }
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(count, 0);

    let a = account(&db, "Ann@Example.com ").await;
    assert_eq!(a.email, "ann@example.com");
    match identity::sign_up(&db, bad("ANN@example.com", "Ann", PASSWORD), &meta()).await {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "email"),
        other => panic!("duplicate email must be refused, got {other:?}"),
    }
    assert_eq!(audit_actions(&db).await, vec!["account.create"]);
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn wrong_passwords_back_off_per_account(db: PgPool) {
    account(&db, "bob@example.com").await;
    for _ in 0..5 {
        let r = identity::sign_in_with_password(&db, "bob@example.com", "wrong password!", &meta())
            .await;
        assert!(matches!(r, Err(Error::Invalid { .. })), "{r:?}");
    }
    let r =
        identity::sign_in_with_password(&db, "bob@example.com", "wrong password!", &meta()).await;
    assert!(matches!(r, Err(Error::Invalid { .. })));
    // Locked now, even with the right password.
    match identity::sign_in_with_password(&db, "bob@example.com", PASSWORD, &meta()).await {
        Err(Error::Throttled { retry_after_secs }) => assert!(retry_after_secs >= 1),
        other => panic!("expected backoff, got {other:?}"),
    }
    // Unknown addresses answer like wrong passwords.
    let r = identity::sign_in_with_password(&db, "nobody@example.com", PASSWORD, &meta()).await;
    assert!(matches!(r, Err(Error::Invalid { .. })));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn totp_codes_work_once_and_recovery_codes_once(db: PgPool) {
    let secrets = secrets();
    let a = actor(&db, "carol@example.com").await;
    let enrolment = totp::begin(&db, &secrets, &a).await.unwrap();
    assert!(enrolment.qr_svg.contains("<svg"));
    assert!(
        enrolment
            .otpauth_url
            .starts_with("otpauth://totp/Loopback:carol%40example.com")
    );

    // Until confirmed, the password alone signs in.
    let outcome = identity::sign_in_with_password(&db, "carol@example.com", PASSWORD, &meta())
        .await
        .unwrap();
    assert!(matches!(outcome, PasswordOutcome::SignedIn(_)));

    let code = totp::current_code(&enrolment.secret).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert!(matches!(
        totp::confirm(&db, &secrets, &a, wrong).await,
        Err(Error::Invalid { .. })
    ));
    let recovery = totp::confirm(&db, &secrets, &a, &code).await.unwrap();
    assert_eq!(recovery.len(), 10);

    let outcome = identity::sign_in_with_password(&db, "carol@example.com", PASSWORD, &meta())
        .await
        .unwrap();
    let PasswordOutcome::SecondFactorNeeded(account, factors) = outcome else {
        panic!("a second factor is needed now");
    };
    assert!(factors.totp && !factors.passkey);

    // The code used to confirm cannot be replayed.
    let replay = totp::sign_in(
        &db,
        &secrets,
        account.id,
        totp::SecondFactorCode::Totp(&code),
        &meta(),
    )
    .await;
    assert!(matches!(replay, Err(Error::Invalid { .. })), "{replay:?}");

    let first = &recovery[0];
    totp::sign_in(
        &db,
        &secrets,
        account.id,
        totp::SecondFactorCode::Recovery(&first.to_uppercase()),
        &meta(),
    )
    .await
    .expect("recovery codes are case-insensitive");
    let again = totp::sign_in(
        &db,
        &secrets,
        account.id,
        totp::SecondFactorCode::Recovery(first),
        &meta(),
    )
    .await;
    assert!(matches!(again, Err(Error::Invalid { .. })), "single use");
    assert_eq!(
        totp::remaining_recovery_codes(&db, account.id)
            .await
            .unwrap(),
        9
    );

    // Turning it off needs the password.
    assert!(matches!(
        totp::disable(&db, &a, "not it at all").await,
        Err(Error::Invalid { .. })
    ));
    totp::disable(&db, &a, PASSWORD).await.unwrap();
    let outcome = identity::sign_in_with_password(&db, "carol@example.com", PASSWORD, &meta())
        .await
        .unwrap();
    assert!(matches!(outcome, PasswordOutcome::SignedIn(_)));
    let actions = audit_actions(&db).await;
    assert!(actions.contains(&"account.totp_enable".to_string()));
    assert!(actions.contains(&"account.totp_disable".to_string()));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn totp_secret_is_sealed_at_rest(db: PgPool) {
    let secrets = secrets();
    let a = actor(&db, "dave@example.com").await;
    let enrolment = totp::begin(&db, &secrets, &a).await.unwrap();
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_sealed FROM totp_credentials")
        .fetch_one(&db)
        .await
        .unwrap();
    let raw = totp_rs::Secret::try_from_base32(&enrolment.secret).unwrap();
    assert!(
        !stored
            .windows(raw.as_bytes().len())
            .any(|w| w == raw.as_bytes())
    );
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn api_keys_are_shown_once_stored_hashed_and_revocable(db: PgPool) {
    let a = actor(&db, "erin@example.com").await;
    let created = api_keys::create(&db, &a, "CI deploys", None).await.unwrap();
    assert!(created.secret.starts_with("lbk_"));
    assert!(created.secret.starts_with(&created.key.prefix));
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_keys WHERE key_hash = convert_to($1, 'UTF8') OR prefix = $1",
    )
    .bind(&created.secret)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(stored, 0, "the secret itself is nowhere in the table");

    let who = api_keys::authenticate(&db, &created.secret, meta())
        .await
        .unwrap();
    assert_eq!(who.account_id, a.account_id);
    assert_eq!(who.api_key, Some(created.key.id));
    let listed = api_keys::list(&db, &a).await.unwrap();
    assert!(listed[0].last_used_at.is_some());

    assert!(matches!(
        api_keys::authenticate(&db, "lbk_made-up", meta()).await,
        Err(Error::Unauthenticated)
    ));
    api_keys::revoke(&db, &a, created.key.id).await.unwrap();
    assert!(matches!(
        api_keys::authenticate(&db, &created.secret, meta()).await,
        Err(Error::Unauthenticated)
    ));

    let other = actor(&db, "frank@example.com").await;
    let theirs = api_keys::create(&db, &other, "theirs", None).await.unwrap();
    assert!(matches!(
        api_keys::revoke(&db, &a, theirs.key.id).await,
        Err(Error::NotFound)
    ));

    let past = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    assert!(matches!(
        api_keys::create(&db, &a, "old", Some(past)).await,
        Err(Error::Invalid { .. })
    ));
    let soon = api_keys::create(
        &db,
        &a,
        "soon",
        Some(time::OffsetDateTime::now_utc() + time::Duration::minutes(1)),
    )
    .await
    .unwrap();
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(soon.key.id)
        .execute(&db)
        .await
        .unwrap();
    assert!(matches!(
        api_keys::authenticate(&db, &soon.secret, meta()).await,
        Err(Error::Unauthenticated)
    ));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn password_reset_mails_a_one_time_link_and_ends_sessions(db: PgPool) {
    let a = account(&db, "gina@example.com").await;
    identity::request_password_reset(&db, &public_url(), "gina@example.com", &meta())
        .await
        .unwrap();
    identity::request_password_reset(&db, &public_url(), "nobody@example.com", &meta())
        .await
        .unwrap();
    let bodies: Vec<(String, String)> =
        sqlx::query_as("SELECT to_address, body FROM outbox_emails")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(bodies.len(), 1, "only real accounts get mail");
    assert_eq!(bodies[0].0, "gina@example.com");
    let link = bodies[0]
        .1
        .lines()
        .find(|l| l.contains("/reset-password?token="))
        .unwrap();
    let token = link.split("token=").nth(1).unwrap().trim();

    let weak = identity::reset_password(&db, token, "password", &meta()).await;
    assert!(matches!(weak, Err(Error::Invalid { ref field, .. }) if field == "new_password"));
    let after = identity::reset_password(&db, token, "a brand new passphrase", &meta())
        .await
        .unwrap();
    assert_eq!(after.session_epoch, a.session_epoch + 1, "old sessions end");
    assert!(
        identity::for_session(&db, a.id, a.session_epoch)
            .await
            .unwrap()
            .is_none()
    );
    let twice = identity::reset_password(&db, token, "another new passphrase", &meta()).await;
    assert!(matches!(twice, Err(Error::Invalid { ref field, .. }) if field == "token"));

    let outcome =
        identity::sign_in_with_password(&db, "gina@example.com", "a brand new passphrase", &meta())
            .await;
    assert!(matches!(outcome, Ok(PasswordOutcome::SignedIn(_))));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn change_password_checks_the_current_one(db: PgPool) {
    let a = actor(&db, "hank@example.com").await;
    let wrong =
        identity::change_password(&db, &a, "not my password", "a brand new passphrase").await;
    assert!(matches!(wrong, Err(Error::Invalid { ref field, .. }) if field == "current_password"));
    let epoch = identity::change_password(&db, &a, PASSWORD, "a brand new passphrase")
        .await
        .unwrap();
    assert!(
        identity::for_session(&db, a.account_id, epoch)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        identity::for_session(&db, a.account_id, epoch - 1)
            .await
            .unwrap()
            .is_none()
    );
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn setup_link_creates_the_first_operator_once(db: PgPool) {
    let issued = platform::setup::issue_if_needed(&db)
        .await
        .unwrap()
        .unwrap();
    let input = || SignUp {
        email: "root@example.com".into(),
        display_name: "Root".into(),
        password: PASSWORD.into(),
    };
    let op = identity::create_first_operator(&db, &issued.token, input(), &meta())
        .await
        .unwrap();
    assert!(op.is_operator);
    let again = identity::create_first_operator(
        &db,
        &issued.token,
        SignUp {
            email: "x@example.com".into(),
            ..input()
        },
        &meta(),
    )
    .await;
    assert!(matches!(again, Err(Error::Invalid { ref field, .. }) if field == "token"));
    assert!(
        platform::setup::issue_if_needed(&db)
            .await
            .unwrap()
            .is_none(),
        "no more links once an operator exists"
    );
    assert!(
        audit_actions(&db)
            .await
            .contains(&"operator.create".to_string())
    );
}
