//! Identity figures, printed: argon2id hash time, sign-in requests per
//! second, and the latency of an authorized server-function call with 10,000
//! organizations and 100,000 role bindings in the database.
//!
//! Run with `scripts/bench identity` (starts PostgreSQL, builds in release).

use std::time::{Duration, Instant};

use sqlx::{Connection, PgPool};

#[path = "../tests/support/mod.rs"]
mod support;

const ACCOUNTS: i64 = 20_000;
const ORGANIZATIONS: i64 = 10_000;
const MEMBERSHIPS_PER_ACCOUNT: i64 = 5;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn seed(db: &PgPool, hash: &str) {
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO accounts (id, email, display_name, password_hash)
         SELECT gen_random_uuid(), 'user' || i || '@bench.example', 'User ' || i, $1 FROM generate_series(1, $2) i",
    )
    .bind(hash)
    .bind(ACCOUNTS)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO organizations (id, name, verification)
         SELECT gen_random_uuid(), 'Org ' || i, 'verified' FROM generate_series(1, $1) i",
    )
    .bind(ORGANIZATIONS)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "WITH a AS (SELECT id, row_number() OVER (ORDER BY email) AS rn FROM accounts WHERE email LIKE '%@bench.example'),
              o AS (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM organizations)
         INSERT INTO memberships (organization_id, account_id)
         SELECT o.id, a.id FROM a CROSS JOIN generate_series(0, $1 - 1) k
         JOIN o ON o.rn = ((a.rn * 7 + k * 1999) % $2) + 1
         ON CONFLICT DO NOTHING",
    )
    .bind(MEMBERSHIPS_PER_ACCOUNT)
    .bind(ORGANIZATIONS)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO role_bindings (id, organization_id, account_id, scope_kind, builtin_role)
         SELECT gen_random_uuid(), organization_id, account_id, 'organization',
                (ARRAY['owner', 'admin', 'member', 'viewer'])[1 + abs(hashtext(account_id::text)) % 4]
         FROM memberships",
    )
    .execute(db)
    .await
    .unwrap();
    sqlx::query("INSERT INTO projects (id, organization_id, name) SELECT gen_random_uuid(), id, 'Project' FROM organizations")
        .execute(db)
        .await
        .unwrap();
    sqlx::query("ANALYZE").execute(db).await.unwrap();
    let (orgs, bindings): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM organizations), (SELECT count(*) FROM role_bindings)",
    )
    .fetch_one(db)
    .await
    .unwrap();
    println!(
        "seeded {orgs} organizations and {bindings} role bindings in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Runs `total` calls of `call` over `workers` concurrent tasks; returns the
/// sorted latencies and the wall time.
async fn load<F, Fut>(workers: usize, total: usize, call: F) -> (Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let per_worker = total / workers;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            for i in 0..per_worker {
                let t = Instant::now();
                call(w * per_worker + i).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    (all, started.elapsed())
}

#[tokio::main]
async fn main() {
    // 1. Password hashing.
    let runs = 20;
    let started = Instant::now();
    let mut hash = String::new();
    for _ in 0..runs {
        hash = platform::identity::password::hash(support::PASSWORD).unwrap();
    }
    println!(
        "argon2id hash (19 MiB, t=2, p=1): {:.1} ms each (mean of {runs})",
        ms(started.elapsed()) / runs as f64
    );
    let started = Instant::now();
    for _ in 0..runs {
        assert!(platform::identity::password::verify(
            support::PASSWORD,
            &hash
        ));
    }
    println!(
        "argon2id verify: {:.1} ms each",
        ms(started.elapsed()) / runs as f64
    );

    // 2. A database the size the issue asks for, and the real server on it.
    let url = support::fresh_database().await;
    let db = PgPool::connect(&url).await.unwrap();
    platform::db::migrate(&db).await.unwrap();
    seed(&db, &hash).await;
    let mut portal = support::Launch::with_database(url.clone())
        .arg("--db-max-connections")
        .arg("20")
        .spawn();
    portal.ready().await;
    let base = portal.url("");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // 3. Sign-ins per second (each verifies an argon2id hash).
    let total = 200;
    let (latencies, wall) = {
        let client = client.clone();
        let base = base.clone();
        load(4, total, move |i| {
            let client = client.clone();
            let base = base.clone();
            async move {
                let email = format!("user{}@bench.example", 1 + i % 1000);
                support::sign_in(&client, &base, &email).await;
            }
        })
        .await
    };
    println!(
        "sign-in: {:.0} requests/s with 4 concurrent clients (p50 {:.1} ms, p99 {:.1} ms, {total} requests)",
        total as f64 / wall.as_secs_f64(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99))
    );

    // 4. An authorized server function: get_project as a member.
    let cookie = support::sign_in(&client, &base, "user1@bench.example").await;
    let project: String = sqlx::query_scalar(
        "SELECT p.id::text FROM projects p JOIN memberships m ON m.organization_id = p.organization_id
         JOIN accounts a ON a.id = m.account_id WHERE a.email = 'user1@bench.example' LIMIT 1",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let total = 4000;
    let (latencies, wall) = {
        let client = client.clone();
        let base = base.clone();
        load(4, total, move |_| {
            let client = client.clone();
            let base = base.clone();
            let cookie = cookie.clone();
            let project = project.clone();
            async move {
                let r = support::server_fn(
                    &client,
                    &base,
                    "get_project",
                    Some(&cookie),
                    &[("project", &project)],
                )
                .await;
                assert!(r.status().is_success(), "{}", r.status());
                r.bytes().await.unwrap();
            }
        })
        .await
    };
    println!(
        "authorized server function (get_project: session + 4 authorize checks + query): p50 {:.2} ms, p99 {:.2} ms, {:.0} calls/s with 4 clients",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        total as f64 / wall.as_secs_f64()
    );

    // 5. The authorize() decision alone, in process.
    let actor = platform::identity::find(
        &db,
        sqlx::query_scalar("SELECT id FROM accounts WHERE email = 'user1@bench.example'")
            .fetch_one(&db)
            .await
            .unwrap(),
    )
    .await
    .unwrap()
    .unwrap()
    .actor(Default::default());
    let project_id: protocol::ids::ProjectId = sqlx::query_scalar(
        "SELECT p.id FROM projects p JOIN memberships m ON m.organization_id = p.organization_id WHERE m.account_id = $1 LIMIT 1",
    )
    .bind(actor.account_id)
    .fetch_one(&db)
    .await
    .unwrap();
    let mut single = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        let _ = platform::authz::authorize(
            &db,
            &actor,
            platform::authz::Permission::ProjectRead,
            platform::authz::Resource::Project(project_id),
        )
        .await;
        single.push(t.elapsed());
    }
    single.sort();
    println!(
        "authorize() alone: p50 {:.3} ms, p99 {:.3} ms",
        ms(percentile(&single, 0.5)),
        ms(percentile(&single, 0.99))
    );

    drop(portal);
    db.close().await;
    let mut conn = sqlx::PgConnection::connect(&std::env::var("DATABASE_URL").unwrap())
        .await
        .unwrap();
    let name = url::Url::parse(&url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_string();
    let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await;
}
