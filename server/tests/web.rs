//! What browsers and API clients meet at the door: the cross-site guard,
//! session cookies and their lifetimes, the REST API's shape, and mail.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Launch, fresh_database, server_fn, session_cookie, sign_in, sign_up, who};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn state_changes_from_another_site_are_refused() {
    let mut portal = Launch::with_database(fresh_database().await).spawn();
    portal.ready().await;
    let base = portal.url("");
    let client = client();
    let cookie = sign_up(&client, &base, "ann@example.com").await;

    let forged = |origin: Option<&str>, fetch_site: Option<&str>| {
        let mut request = client
            .post(format!("{base}/api/create_organization"))
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::COOKIE, &cookie)
            .form(&[("name", "Planted by evil")]);
        if let Some(o) = origin {
            request = request.header(reqwest::header::ORIGIN, o);
        }
        if let Some(s) = fetch_site {
            request = request.header("sec-fetch-site", s);
        }
        request.send()
    };
    for (origin, site) in [
        (Some("https://evil.example"), None),
        (Some("null"), None),
        (None, Some("cross-site")),
    ] {
        let response = forged(origin, site).await.unwrap();
        assert_eq!(
            response.status(),
            403,
            "origin {origin:?}, fetch site {site:?}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "cross_site");
    }
    // REST calls are guarded the same way.
    let rest = client
        .post(format!("{base}/api/v1/organizations"))
        .header(reqwest::header::ORIGIN, "https://evil.example")
        .json(&serde_json::json!({ "name": "Planted by evil" }))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 403);

    let orgs: Value = server_fn(
        &client,
        &base,
        "list_organizations",
        Some(&cookie),
        &[("page", "1")],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(orgs["total"], 0, "nothing was created");

    let same_site = forged(Some(&base), Some("same-origin")).await.unwrap();
    assert_eq!(same_site.status(), 200, "the portal's own pages may");
}

#[tokio::test]
async fn pages_under_another_host_name_redirect_to_the_public_url() {
    let mut portal = Launch::with_database(fresh_database().await).spawn();
    portal.ready().await;
    let response = client()
        .get(format!("http://{}/projects?page=2", portal.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 308);
    assert_eq!(
        response.headers()[reqwest::header::LOCATION],
        portal.url("/projects?page=2")
    );
}

#[tokio::test]
async fn sign_in_cycles_the_session_and_cookies_are_locked_down() {
    let mut portal = Launch::with_database(fresh_database().await).spawn();
    portal.ready().await;
    let base = portal.url("");
    let client = client();
    let first = sign_up(&client, &base, "ann@example.com").await;

    // Turn on TOTP to get a two-step sign-in.
    let enrolment: Value = server_fn(&client, &base, "totp_begin", Some(&first), &[])
        .await
        .json()
        .await
        .unwrap();
    let code =
        platform::identity::totp::current_code(enrolment["secret"].as_str().unwrap()).unwrap();
    let codes: Vec<String> = server_fn(
        &client,
        &base,
        "totp_confirm",
        Some(&first),
        &[("code", &code)],
    )
    .await
    .json()
    .await
    .unwrap();

    let password_step = server_fn(
        &client,
        &base,
        "sign_in",
        None,
        &[
            ("email", "ann@example.com"),
            ("password", support::PASSWORD),
            ("next", "/"),
        ],
    )
    .await;
    let raw_cookie = password_step
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("loopback_session="))
        .unwrap();
    assert!(raw_cookie.contains("HttpOnly"), "{raw_cookie}");
    assert!(raw_cookie.contains("SameSite=Lax"), "{raw_cookie}");
    assert!(!raw_cookie.contains("Secure"), "plain http: {raw_cookie}");
    let pending = session_cookie(&password_step).unwrap();
    assert_eq!(
        who(&client, &base, &pending).await,
        None,
        "the password alone does not sign in"
    );

    let second_step = server_fn(
        &client,
        &base,
        "sign_in_code",
        Some(&pending),
        &[("code", &codes[0]), ("recovery", "true"), ("next", "/")],
    )
    .await;
    assert!(second_step.status().is_success());
    let signed_in = session_cookie(&second_step).expect("a new session id at sign-in");
    assert_ne!(signed_in, pending, "the session id changes when signing in");
    assert_eq!(
        who(&client, &base, &signed_in).await.as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(
        who(&client, &base, &pending).await,
        None,
        "the old id is gone"
    );
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session() {
    let mut portal = Launch::with_database(fresh_database().await).spawn();
    portal.ready().await;
    let base = portal.url("");
    let client = client();
    let laptop = sign_up(&client, &base, "ann@example.com").await;
    let phone = sign_in(&client, &base, "ann@example.com").await;
    assert!(who(&client, &base, &phone).await.is_some());

    let response = server_fn(&client, &base, "sign_out_everywhere", Some(&laptop), &[]).await;
    assert!(response.status().is_success());
    assert_eq!(who(&client, &base, &phone).await, None);
    assert_eq!(who(&client, &base, &laptop).await, None);
    assert!(
        who(
            &client,
            &base,
            &sign_in(&client, &base, "ann@example.com").await
        )
        .await
        .is_some(),
        "signing in again works"
    );
}

#[tokio::test]
async fn idle_sessions_end() {
    let mut portal = Launch::with_database(fresh_database().await)
        .arg("--session-idle-secs")
        .arg("2")
        .spawn();
    portal.ready().await;
    let base = portal.url("");
    let client = client();
    let cookie = sign_up(&client, &base, "ann@example.com").await;
    assert!(who(&client, &base, &cookie).await.is_some());
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(who(&client, &base, &cookie).await, None);
}

#[tokio::test]
async fn active_sessions_still_end_after_their_lifetime() {
    let mut portal = Launch::with_database(fresh_database().await)
        .arg("--session-lifetime-secs")
        .arg("4")
        .spawn();
    portal.ready().await;
    let base = portal.url("");
    let client = client();
    let cookie = sign_up(&client, &base, "ann@example.com").await;
    // Active every 0.7 s, yet signed out once 4 s have passed since sign-in.
    for _ in 0..3 {
        assert!(who(&client, &base, &cookie).await.is_some());
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(who(&client, &base, &cookie).await, None);
}

#[tokio::test]
async fn rest_api_authenticates_with_keys_and_answers_json() {
    let mut portal = Launch::with_database(fresh_database().await).spawn();
    portal.ready().await;
    let base = portal.url("");
    let client = client();
    let cookie = sign_up(&client, &base, "ann@example.com").await;
    let created: Value = server_fn(
        &client,
        &base,
        "api_key_create",
        Some(&cookie),
        &[("name", "ci"), ("expires_in_days", "30")],
    )
    .await
    .json()
    .await
    .unwrap();
    let key = created["secret"].as_str().unwrap().to_string();

    let openapi: Value = client
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["servers"][0]["url"], "/api/v1");
    assert!(openapi["paths"]["/organizations/{org}/projects"]["post"].is_object());
    assert_eq!(
        openapi["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );

    let invalid = client
        .post(format!("{base}/api/v1/organizations"))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "name": " " }))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 422);
    let body: Value = invalid.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid");
    assert_eq!(body["error"]["field"], "name");

    let org = client
        .post(format!("{base}/api/v1/organizations"))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "name": "Acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(org.status(), 201);
    let org: Value = org.json().await.unwrap();
    assert_eq!(org["verification"], "pending");
    let project = client
        .post(format!(
            "{base}/api/v1/organizations/{}/projects",
            org["id"].as_str().unwrap()
        ))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "name": "Web" }))
        .send()
        .await
        .unwrap();
    assert_eq!(project.status(), 201);
    let listed: Value = client
        .get(format!("{base}/api/v1/organizations?page=1"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 1);

    let missing = client
        .get(format!("{base}/api/v1/no-such-thing"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let keys: Value = client
        .get(format!("{base}/api/v1/account/api-keys"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        keys[0]["last_used_at"].is_string(),
        "last use is recorded: {keys}"
    );
    let revoke = client
        .delete(format!(
            "{base}/api/v1/account/api-keys/{}",
            keys[0]["id"].as_str().unwrap()
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 204);
    let after = client
        .get(format!("{base}/api/v1/organizations"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401, "a revoked key authenticates nothing");
    let body: Value = after.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
}

/// A minimal SMTP server: accepts every message and hands over its data.
async fn fake_smtp() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 fake ESMTP\r\n").await.ok();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            tx.send(data.take().unwrap_or_default()).ok();
                            write.write_all(b"250 queued\r\n").await.ok();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 fake\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.ok();
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.ok();
                }
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn mail_goes_out_over_smtp_when_configured() {
    let (port, mut received) = fake_smtp().await;
    let mut portal = Launch::with_database(fresh_database().await)
        .arg("--smtp-url")
        .arg(&format!("smtp://127.0.0.1:{port}"))
        .arg("--mail-from")
        .arg("Loopback <portal@example.com>")
        .spawn();
    portal.ready().await;
    let base = portal.url("");
    let client = client();
    sign_up(&client, &base, "ann@example.com").await;
    let response = server_fn(
        &client,
        &base,
        "request_password_reset",
        None,
        &[("email", "ann@example.com")],
    )
    .await;
    assert!(response.status().is_success());

    let message = tokio::time::timeout(Duration::from_secs(20), received.recv())
        .await
        .expect("mail within 20 s")
        .unwrap();
    assert!(message.contains("To: ann@example.com"), "{message}");
    assert!(
        message.contains("From: Loopback <portal@example.com>"),
        "{message}"
    );
    assert!(message.contains("/reset-password?token="), "{message}");
}
