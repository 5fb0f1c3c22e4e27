//! The GitHub Actions secrets client (SPEC 14) against the GitHub stand-in
//! (`harness/github_standin.py`): sealed secrets written and read back in
//! plaintext as GitHub's runners would see them, App installation tokens,
//! stale keys, server errors, both kinds of rate limit, and refusals whose
//! messages say what to do and show nothing sensitive. Each test has a
//! stand-in of its own, so faults and pauses never cross tests.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use harness::github_standin::{ApiCall, Fault, GitHubStandIn};
use harness::unique;
use iam_key_rotation::{
    ApiRoot, GitHub, GitHubCredentials, GitHubError, GitHubScope, Sensitive, Target,
};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(60);

/// A key pair as the delivery job would push it (made up: GitHub's side
/// only stores the strings).
struct KeyPair {
    id: Sensitive,
    secret: Sensitive,
}

fn key_pair() -> KeyPair {
    let id = format!("AKIA{}", unique("").replace(['-', '_'], "").to_uppercase());
    KeyPair {
        id: Sensitive::new(&id[..20.min(id.len())]),
        secret: Sensitive::new(format!("secret/{}+{}", unique("k"), fastrand::u64(..))),
    }
}

fn repository(owner: &str, repo: &str) -> GitHubScope {
    GitHubScope::Repository {
        owner: owner.into(),
        repo: repo.into(),
    }
}

fn client(standin: &GitHubStandIn, credentials: serde_json::Value) -> GitHub {
    GitHub::new(
        ApiRoot::parse(&standin.api_url()).unwrap(),
        GitHubCredentials::from_json(&credentials.to_string()).unwrap(),
    )
}

async fn token_client(standin: &GitHubStandIn, access: &[&str]) -> (GitHub, String) {
    let token = standin.token(access).await;
    (client(standin, json!({"token": token})), token)
}

fn stop_by() -> Option<Instant> {
    Some(Instant::now() + DEADLINE)
}

async fn deliver(
    github: &GitHub,
    scope: &GitHubScope,
    keys: &KeyPair,
) -> Result<iam_key_rotation::Delivered, GitHubError> {
    github
        .deliver(
            scope,
            &[
                ("AWS_ACCESS_KEY_ID", &keys.id),
                ("AWS_SECRET_ACCESS_KEY", &keys.secret),
            ],
            stop_by(),
        )
        .await
}

async fn plaintext(standin: &GitHubStandIn, holder: &str, name: &str) -> String {
    standin
        .secret(holder, name)
        .await
        .unwrap_or_else(|| panic!("no secret {name} in {holder}"))
        .value
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Neither the error's words nor its `Debug` hold any of `secrets`.
fn assert_clean(error: &GitHubError, secrets: &[&str]) {
    let shown = format!("{error} {error:?}");
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(!shown.contains(secret), "{shown}");
    }
    // An App JWT starts with the base64 of `{"`; a PEM key with its header.
    assert!(
        !shown.contains("eyJ") && !shown.contains("PRIVATE KEY"),
        "{shown}"
    );
}

fn calls_to<'a>(calls: &'a [ApiCall], path: &str) -> Vec<&'a ApiCall> {
    calls
        .iter()
        .filter(|call| call.path.contains(path))
        .collect()
}

#[tokio::test]
async fn repository_secrets_are_sealed_written_verified_and_open_to_their_plaintext() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "deploy", &[]).await;
    let (github, _) = token_client(&standin, &["octo/deploy"]).await;
    let keys = key_pair();

    let delivered = deliver(&github, &repository("octo", "deploy"), &keys)
        .await
        .unwrap();
    assert_eq!(
        plaintext(&standin, "repos/octo/deploy", "AWS_ACCESS_KEY_ID").await,
        keys.id.expose()
    );
    assert_eq!(
        plaintext(&standin, "repos/octo/deploy", "AWS_SECRET_ACCESS_KEY").await,
        keys.secret.expose()
    );
    // Public key, then a write and its verification per name.
    assert_eq!(delivered.calls, 5);
    let calls: Vec<(String, String)> = standin
        .calls()
        .await
        .into_iter()
        .map(|call| (call.method, call.path))
        .collect();
    let base = "/repos/octo/deploy/actions/secrets";
    assert_eq!(
        calls,
        [
            ("GET", format!("{base}/public-key")),
            ("PUT", format!("{base}/AWS_ACCESS_KEY_ID")),
            ("GET", format!("{base}/AWS_ACCESS_KEY_ID")),
            ("PUT", format!("{base}/AWS_SECRET_ACCESS_KEY")),
            ("GET", format!("{base}/AWS_SECRET_ACCESS_KEY")),
        ]
        .map(|(method, path)| (method.to_string(), path))
    );
    let now = unix_now();
    for (_, updated_at) in &delivered.updated_at {
        assert!(
            (now - 5..=now + 5).contains(updated_at),
            "{updated_at} vs {now}"
        );
    }

    // The next key replaces it; the public key is reused.
    let next = key_pair();
    let delivered = deliver(&github, &repository("octo", "deploy"), &next)
        .await
        .unwrap();
    assert_eq!(delivered.calls, 4);
    let stored = standin
        .secret("repos/octo/deploy", "AWS_SECRET_ACCESS_KEY")
        .await
        .unwrap();
    assert_eq!(
        (stored.value.as_str(), stored.writes),
        (next.secret.expose(), 2)
    );
    assert_eq!(github.calls(), 9);
}

#[tokio::test]
async fn environment_secrets_from_a_spec_with_names_and_an_smtp_password() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "mailer", &["eu/prod 1"]).await;
    let (github, _) = token_client(&standin, &["octo/mailer"]).await;
    let Target::GitHub(target) =
        Target::parse("github:octo/mailer:names=KEY_ID,KEY_SECRET,SMTP_PASS:env=eu/prod 1")
            .unwrap()
    else {
        panic!("not a GitHub target")
    };
    let keys = key_pair();
    let smtp = Sensitive::new(format!("smtp+{}", unique("p")));
    let names = &target.names;
    let smtp_name = names.smtp_password(true).unwrap();
    let delivered = github
        .deliver(
            &target.scope,
            &[
                (names.access_key_id.as_str(), &keys.id),
                (names.secret_access_key.as_str(), &keys.secret),
                (smtp_name, &smtp),
            ],
            stop_by(),
        )
        .await
        .unwrap();
    assert_eq!(delivered.calls, 7);
    let holder = "repos/octo/mailer/environments/eu/prod 1";
    assert_eq!(
        plaintext(&standin, holder, "KEY_ID").await,
        keys.id.expose()
    );
    assert_eq!(
        plaintext(&standin, holder, "KEY_SECRET").await,
        keys.secret.expose()
    );
    assert_eq!(
        plaintext(&standin, holder, "SMTP_PASS").await,
        smtp.expose()
    );
    // Not in the repository's own secrets.
    assert!(
        standin
            .secret("repos/octo/mailer", "KEY_ID")
            .await
            .is_none()
    );
    let calls = standin.calls().await;
    assert!(
        calls.iter().all(|call| call
            .path
            .starts_with("/repos/octo/mailer/environments/eu%2Fprod%201/secrets/")),
        "{calls:?}"
    );
}

#[tokio::test]
async fn organization_secrets_carry_their_visibility() {
    let standin = GitHubStandIn::start();
    standin.organization("acme").await;
    standin.organization("globex").await;
    let (github, _) = token_client(&standin, &["org:acme", "org:globex"]).await;
    let keys = key_pair();
    for spec in ["github-org:acme:visibility=all", "github-org:globex"] {
        let Target::GitHub(target) = Target::parse(spec).unwrap() else {
            panic!()
        };
        deliver(&github, &target.scope, &keys).await.unwrap();
    }
    let all = standin
        .secret("orgs/acme", "AWS_SECRET_ACCESS_KEY")
        .await
        .unwrap();
    assert_eq!(
        (all.value.as_str(), all.visibility.as_deref()),
        (keys.secret.expose(), Some("all"))
    );
    let private = standin
        .secret("orgs/globex", "AWS_ACCESS_KEY_ID")
        .await
        .unwrap();
    assert_eq!(
        (private.value.as_str(), private.visibility.as_deref()),
        (keys.id.expose(), Some("private"))
    );
    // Each secret is read before its first write: 404, a new one.
    let calls = standin.calls().await;
    assert!(
        calls.iter().all(|call| call.path.starts_with("/orgs/")
            && (call.status < 300 || (call.status == 404 && call.method == "GET"))),
        "{calls:?}"
    );
}

/// A write never changes who may read an organization secret: over one made
/// `selected` in GitHub, a `private` spec (which would open it to every
/// private repository) writes nothing and says what to do; a `selected` spec
/// writes it with the repositories GitHub has for it, every page of them.
#[tokio::test]
async fn an_organization_secrets_visibility_is_never_changed_by_a_write() {
    let standin = GitHubStandIn::start();
    standin.organization("acme").await;
    let chosen: Vec<u64> = (1..=130).collect();
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        standin.select_repositories("acme", name, &chosen).await;
    }
    let (github, _) = token_client(&standin, &["org:acme"]).await;
    let keys = key_pair();
    let scope = |spec: &str| {
        let Target::GitHub(target) = Target::parse(spec).unwrap() else {
            panic!()
        };
        target.scope
    };
    let error = deliver(&github, &scope("github-org:acme"), &keys)
        .await
        .unwrap_err();
    assert!(matches!(error, GitHubError::Visibility { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("has visibility selected in GitHub and the target spec says private")
            && text.contains(":visibility=selected"),
        "{text}"
    );
    let untouched = standin
        .secret("orgs/acme", "AWS_ACCESS_KEY_ID")
        .await
        .unwrap();
    assert_eq!((untouched.writes, untouched.value.as_str()), (0, ""));

    deliver(
        &github,
        &scope("github-org:acme:visibility=selected"),
        &keys,
    )
    .await
    .unwrap();
    let written = standin
        .secret("orgs/acme", "AWS_ACCESS_KEY_ID")
        .await
        .unwrap();
    assert_eq!(
        (written.value.as_str(), written.visibility.as_deref()),
        (keys.id.expose(), Some("selected"))
    );
    assert_eq!(
        standin
            .selected_repositories("acme", "AWS_ACCESS_KEY_ID")
            .await,
        chosen
    );

    // selected names a secret GitHub must already have, with its repositories.
    standin.organization("globex").await;
    let (github, _) = token_client(&standin, &["org:globex"]).await;
    let error = deliver(
        &github,
        &scope("github-org:globex:visibility=selected"),
        &keys,
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("create it in GitHub first"),
        "{error}"
    );
    assert!(
        standin
            .secret("orgs/globex", "AWS_ACCESS_KEY_ID")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn an_app_buys_one_installation_token_and_reuses_it() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "one", &[]).await;
    standin.repository("octo", "two", &[]).await;
    let app = standin.app(&["octo/one", "octo/two"], false).await;
    assert!(
        app["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    let github = client(&standin, app.clone());
    assert!(github.describe_credentials().starts_with("App "));
    let keys = key_pair();

    let first = deliver(&github, &repository("octo", "one"), &keys)
        .await
        .unwrap();
    let second = deliver(&github, &repository("octo", "two"), &keys)
        .await
        .unwrap();
    // The installation's grant, the token, then the public key, two writes and two checks.
    assert_eq!((first.calls, second.calls), (7, 5));
    assert_eq!(
        plaintext(&standin, "repos/octo/two", "AWS_SECRET_ACCESS_KEY").await,
        keys.secret.expose()
    );

    let calls = standin.calls().await;
    let installation = app["installation_id"].as_u64().unwrap();
    let bought = calls_to(
        &calls,
        &format!("/app/installations/{installation}/access_tokens"),
    );
    assert_eq!(bought.len(), 1, "{calls:?}");
    assert_eq!((bought[0].status, bought[0].auth.as_str()), (201, "jwt"));
    // The App may also write code and issues: its token may write secrets only.
    assert_eq!(
        standin.installation_token_permissions().await,
        [json!({"secrets": "write", "environments": "write",
                "organization_secrets": "write", "metadata": "read"})]
    );
    assert!(
        calls
            .iter()
            .filter(|call| call.path.starts_with("/repos/"))
            .all(|call| call.auth == "installation"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn an_installation_token_refused_with_401_is_bought_again_once() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "svc", &[]).await;
    // PKCS#8 and the client ID alone, as ids in strings: the other accepted forms.
    let app = standin.app(&["octo/svc"], true).await;
    assert!(
        app["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let github = client(
        &standin,
        json!({
            "client_id": app["client_id"],
            "installation_id": app["installation_id"].to_string(),
            "private_key": app["private_key"],
        }),
    );
    deliver(&github, &repository("octo", "svc"), &key_pair())
        .await
        .unwrap();
    assert_eq!(standin.revoke_installation_tokens().await, 1);

    let keys = key_pair();
    let delivered = deliver(&github, &repository("octo", "svc"), &keys)
        .await
        .unwrap();
    // The refused write, the installation's grant and the purchase, then the
    // write and the rest.
    assert_eq!(delivered.calls, 7);
    assert_eq!(
        plaintext(&standin, "repos/octo/svc", "AWS_ACCESS_KEY_ID").await,
        keys.id.expose()
    );
    let calls = standin.calls().await;
    let purchases = calls_to(&calls, "/access_tokens");
    assert_eq!(purchases.len(), 2);
    assert_eq!(calls.iter().filter(|call| call.status == 401).count(), 1);

    // A token refused again right after its purchase is not bought a third time.
    standin
        .fail_next(Fault {
            status: 401,
            count: 2,
            path: Some("/repos/octo/svc/".into()),
            method: Some("PUT"),
            ..Fault::default()
        })
        .await;
    let error = deliver(&github, &repository("octo", "svc"), &keys)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, GitHubError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(
        text.contains("repository octo/svc, secret AWS_ACCESS_KEY_ID"),
        "{text}"
    );
    assert!(text.contains("still installed"), "{text}");
    assert_eq!(calls_to(&standin.calls().await, "/access_tokens").len(), 3);
    assert_clean(
        &error,
        &[keys.secret.expose(), app["private_key"].as_str().unwrap()],
    );
}

#[tokio::test]
async fn an_app_jwt_github_refuses_names_the_ids_and_key_to_check() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "svc", &[]).await;
    let app = standin.app(&["octo/svc"], false).await;
    let other = standin.app(&["octo/svc"], false).await;

    let wrong_key = client(
        &standin,
        json!({"app_id": app["app_id"], "installation_id": app["installation_id"], "private_key": other["private_key"]}),
    );
    let error = deliver(&wrong_key, &repository("octo", "svc"), &key_pair())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, GitHubError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(text.contains(&format!("App {}", app["app_id"])), "{text}");
    assert!(
        text.contains("private_key is a current key of that App"),
        "{text}"
    );
    assert_clean(&error, &[other["private_key"].as_str().unwrap()]);

    let wrong_installation = client(
        &standin,
        json!({"app_id": app["app_id"], "installation_id": 7, "private_key": app["private_key"]}),
    );
    let error = deliver(&wrong_installation, &repository("octo", "svc"), &key_pair())
        .await
        .unwrap_err();
    assert!(matches!(error, GitHubError::NotFound { .. }), "{error:?}");
    assert!(error.to_string().contains("installation 7"), "{error}");
    // Neither wrote anything.
    assert!(
        standin
            .secret("repos/octo/svc", "AWS_ACCESS_KEY_ID")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_stale_key_id_fetches_the_public_key_once_more() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "svc", &[]).await;
    let (github, _) = token_client(&standin, &["octo/svc"]).await;
    deliver(&github, &repository("octo", "svc"), &key_pair())
        .await
        .unwrap();
    let new_key_id = standin.rotate_key("repos/octo/svc").await;

    let keys = key_pair();
    let delivered = deliver(&github, &repository("octo", "svc"), &keys)
        .await
        .unwrap();
    // 422 on the cached key, the key again, then two writes and verifications.
    assert_eq!(delivered.calls, 6);
    let stored = standin
        .secret("repos/octo/svc", "AWS_SECRET_ACCESS_KEY")
        .await
        .unwrap();
    assert_eq!(
        (stored.value.as_str(), stored.key_id.as_str()),
        (keys.secret.expose(), new_key_id.as_str())
    );
    let calls = standin.calls().await;
    assert_eq!(calls.iter().filter(|call| call.status == 422).count(), 1);

    // A 422 that a fresh key does not cure fails after one more key fetch.
    standin
        .fail_next(Fault {
            status: 422,
            count: 5,
            path: Some("/AWS_ACCESS_KEY_ID".into()),
            method: Some("PUT"),
            message: Some("Invalid request.\n\nvisibility is not valid".into()),
            ..Fault::default()
        })
        .await;
    let error = deliver(&github, &repository("octo", "svc"), &keys)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, GitHubError::Rejected { status: 422, .. }),
        "{error:?}"
    );
    assert!(
        text.contains("secret AWS_ACCESS_KEY_ID") && text.contains("visibility is not valid"),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    let after: Vec<ApiCall> = standin
        .calls()
        .await
        .into_iter()
        .skip(calls.len())
        .collect();
    assert_eq!(
        after.iter().map(|call| call.status).collect::<Vec<_>>(),
        [422, 200],
        "{after:?}"
    );
}

#[tokio::test]
async fn server_errors_are_retried_and_a_lasting_one_fails_the_target() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "svc", &[]).await;
    let (github, _) = token_client(&standin, &["octo/svc"]).await;
    standin
        .fail_next(Fault {
            status: 502,
            count: 2,
            method: Some("PUT"),
            ..Fault::default()
        })
        .await;
    let keys = key_pair();
    let delivered = deliver(&github, &repository("octo", "svc"), &keys)
        .await
        .unwrap();
    assert_eq!(delivered.calls, 7);
    assert_eq!(
        plaintext(&standin, "repos/octo/svc", "AWS_ACCESS_KEY_ID").await,
        keys.id.expose()
    );

    standin
        .fail_next(Fault {
            status: 503,
            count: 10,
            path: Some("/public-key".into()),
            ..Fault::default()
        })
        .await;
    let error = deliver(&github, &repository("octo", "svc"), &keys).await;
    // The key is cached, so the delivery does not need it: still fine.
    assert!(error.is_ok(), "{error:?}");
    let other = GitHubScope::Environment {
        owner: "octo".into(),
        repo: "svc".into(),
        environment: "missing".into(),
    };
    let error = deliver(&github, &other, &keys).await.unwrap_err();
    assert!(
        matches!(
            error,
            GitHubError::Server {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("environment \"missing\" of repository octo/svc"),
        "{error}"
    );
    assert_clean(&error, &[keys.secret.expose()]);
}

#[tokio::test]
async fn a_primary_rate_limit_pauses_every_call_until_its_reset() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "first", &[]).await;
    standin.repository("octo", "second", &[]).await;
    let (github, _) = token_client(&standin, &["octo/first", "octo/second"]).await;
    let reset = unix_now() + 2;
    standin
        .fail_next(Fault {
            status: 403,
            count: 1,
            path: Some("/repos/octo/first/".into()),
            message: Some("API rate limit exceeded for user ID 1.".into()),
            headers: vec![
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset", reset.to_string()),
            ],
            ..Fault::default()
        })
        .await;
    let keys = key_pair();
    let first_scope = repository("octo", "first");
    let first = deliver(&github, &first_scope, &keys);
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        deliver(&github, &repository("octo", "second"), &keys).await
    };
    let (first, second) = tokio::join!(first, second);
    first.unwrap();
    second.unwrap();

    let calls = standin.calls().await;
    let limited = calls.iter().position(|call| call.status == 403).unwrap();
    assert_eq!(limited, 0, "{calls:?}");
    assert_eq!(calls.len(), 11, "{calls:?}");
    // No call at all, to either target, before the reset.
    for call in &calls[1..] {
        assert!(call.at >= reset as f64, "{call:?} before the reset {reset}");
    }
}

#[tokio::test]
async fn a_secondary_rate_limit_waits_retry_after() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "svc", &[]).await;
    let (github, _) = token_client(&standin, &["octo/svc"]).await;
    standin
        .fail_next(Fault {
            status: 429,
            count: 1,
            method: Some("PUT"),
            message: Some("You have exceeded a secondary rate limit. Please wait a few minutes before you try again.".into()),
            headers: vec![("retry-after", "2".into())],
            ..Fault::default()
        })
        .await;
    let started = Instant::now();
    let keys = key_pair();
    let delivered = deliver(&github, &repository("octo", "svc"), &keys)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(delivered.calls, 6);
    let calls = standin.calls().await;
    let limited = calls.iter().find(|call| call.status == 429).unwrap();
    let next = calls.iter().find(|call| call.at > limited.at).unwrap();
    assert!(next.at - limited.at >= 2.0, "{limited:?} then {next:?}");
    assert_eq!(
        plaintext(&standin, "repos/octo/svc", "AWS_ACCESS_KEY_ID").await,
        keys.id.expose()
    );
}

#[tokio::test]
async fn a_rate_limit_past_the_deadline_fails_at_once_and_holds_for_every_target() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "svc", &[]).await;
    standin.repository("octo", "other", &[]).await;
    let (github, token) = token_client(&standin, &["octo/svc", "octo/other"]).await;
    standin
        .fail_next(Fault {
            status: 403,
            count: 1,
            message: Some("API rate limit exceeded".into()),
            headers: vec![
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset", (unix_now() + 3600).to_string()),
            ],
            ..Fault::default()
        })
        .await;
    let keys = key_pair();
    let started = Instant::now();
    let error = deliver(&github, &repository("octo", "svc"), &keys)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let text = error.to_string();
    assert!(
        matches!(error, GitHubError::RateLimited { .. }),
        "{error:?}"
    );
    assert!(
        text.contains("rate-limits these credentials until"),
        "{text}"
    );
    assert!(text.contains("repository octo/svc"), "{text}");
    assert_clean(&error, &[&token, keys.secret.expose()]);

    // Another target of the same run makes no call at all.
    let calls_before = standin.calls().await.len();
    let error = deliver(&github, &repository("octo", "other"), &keys)
        .await
        .unwrap_err();
    assert!(
        matches!(error, GitHubError::RateLimited { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("repository octo/other"),
        "{error}"
    );
    assert_eq!(standin.calls().await.len(), calls_before);
}

#[tokio::test]
async fn a_secondary_limit_without_a_time_is_taken_as_a_minute() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "svc", &[]).await;
    let (github, _) = token_client(&standin, &["octo/svc"]).await;
    standin
        .fail_next(Fault {
            status: 403,
            count: 1,
            message: Some("You have exceeded a secondary rate limit.".into()),
            ..Fault::default()
        })
        .await;
    let started = Instant::now();
    let error = github
        .deliver(
            &repository("octo", "svc"),
            &[("A", &Sensitive::new("a")), ("B", &Sensitive::new("b"))],
            Some(Instant::now() + Duration::from_secs(20)),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    match error {
        GitHubError::RateLimited { wait_secs, .. } => {
            assert!((59..=61).contains(&wait_secs), "{wait_secs}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_403_that_is_no_rate_limit_fails_the_target_at_once() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "svc", &[]).await;
    let token = standin.read_only_token(&["octo/svc"]).await;
    let github = client(&standin, json!({"token": token}));
    let keys = key_pair();
    let error = deliver(&github, &repository("octo", "svc"), &keys)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, GitHubError::Forbidden { .. }), "{error:?}");
    assert!(
        text.contains("repository octo/svc, secret AWS_ACCESS_KEY_ID"),
        "{text}"
    );
    assert!(
        text.contains("Resource not accessible by personal access token"),
        "{text}"
    );
    assert!(text.contains("Secrets (read and write)"), "{text}");
    assert_eq!(
        standin.calls().await.len(),
        2,
        "public key and one refused write"
    );
    assert_clean(&error, &[&token, keys.secret.expose(), keys.id.expose()]);
}

#[tokio::test]
async fn a_repository_the_token_cannot_see_is_a_404_naming_it() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "svc", &[]).await;
    standin.repository("octo", "private", &[]).await;
    let (github, token) = token_client(&standin, &["octo/svc"]).await;
    for repo in ["private", "missing"] {
        let error = deliver(&github, &repository("octo", repo), &key_pair())
            .await
            .unwrap_err();
        assert!(matches!(error, GitHubError::NotFound { .. }), "{error:?}");
        let text = error.to_string();
        assert!(
            text.contains(&format!("repository octo/{repo} (its public key)")),
            "{text}"
        );
        assert!(text.contains("check the target spec"), "{text}");
        assert_clean(&error, &[&token]);
    }
}

#[tokio::test]
async fn a_token_github_refuses_fails_once_with_what_to_do() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "svc", &[]).await;
    let bad_token = "github_pat_11NOTATOKEN0000000000000";
    let github = client(&standin, json!({"token": bad_token}));
    let error = deliver(&github, &repository("octo", "svc"), &key_pair())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, GitHubError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(
        text.contains("Bad credentials") && text.contains("create one with the permission Secrets"),
        "{text}"
    );
    assert_eq!(
        standin.calls().await.len(),
        1,
        "no retry with a token that cannot change"
    );
    assert_clean(&error, &[bad_token]);
    assert!(!format!("{github:?}").contains(bad_token));

    // A document that is no credentials at all never reaches GitHub.
    let error = GitHubCredentials::from_json(&json!({"token": bad_token, "app_id": 3}).to_string())
        .unwrap_err();
    assert!(error.to_string().contains("keep one of them"), "{error}");
    assert_clean(&error, &[bad_token]);
}

#[tokio::test]
async fn a_write_github_does_not_show_afterwards_is_not_delivered() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "svc", &[]).await;
    let (github, _) = token_client(&standin, &["octo/svc"]).await;
    let keys = key_pair();
    // An older secret of that name (a write that did not replace it).
    standin
        .fail_next(Fault {
            status: 200,
            count: 1,
            method: Some("GET"),
            path: Some("/secrets/AWS_SECRET_ACCESS_KEY".into()),
            body: Some(json!({"name": "AWS_SECRET_ACCESS_KEY", "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"})),
            ..Fault::default()
        })
        .await;
    let error = deliver(&github, &repository("octo", "svc"), &keys)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, GitHubError::Unverified { .. }), "{error:?}");
    assert!(
        text.contains("secret AWS_SECRET_ACCESS_KEY") && text.contains("2025-01-01T00:00:00Z"),
        "{text}"
    );
    assert!(text.contains("the next run writes it again"), "{text}");

    // Or none at all.
    standin
        .fail_next(Fault {
            status: 404,
            count: 1,
            method: Some("GET"),
            path: Some("/secrets/AWS_ACCESS_KEY_ID".into()),
            ..Fault::default()
        })
        .await;
    let error = deliver(&github, &repository("octo", "svc"), &keys)
        .await
        .unwrap_err();
    assert!(matches!(error, GitHubError::Unverified { .. }), "{error:?}");
    assert_clean(&error, &[keys.secret.expose(), keys.id.expose()]);
}

#[tokio::test]
async fn a_deadline_already_past_makes_no_call() {
    let standin = GitHubStandIn::start();
    standin.repository("octo", "svc", &[]).await;
    let (github, _) = token_client(&standin, &["octo/svc"]).await;
    let error = github
        .deliver(
            &repository("octo", "svc"),
            &[("A", &Sensitive::new("a"))],
            Some(Instant::now()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, GitHubError::DeadlineReached { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("the next run retries"),
        "{error}"
    );
    assert!(standin.calls().await.is_empty());
}

#[tokio::test]
async fn nothing_sensitive_in_the_client_or_credentials_debug_output() {
    let standin = GitHubStandIn::start();
    let app = standin.app(&["*"], false).await;
    let pem = app["private_key"].as_str().unwrap();
    let credentials = GitHubCredentials::from_json(&app.to_string()).unwrap();
    let body: String = pem.lines().nth(1).unwrap().to_string();
    for shown in [
        format!("{credentials:?}"),
        format!("{:?}", client(&standin, app.clone())),
        credentials.describe(),
    ] {
        assert!(
            !shown.contains(&body) && !shown.contains("PRIVATE KEY"),
            "{shown}"
        );
    }
    let token = standin.token(&["*"]).await;
    let credentials = GitHubCredentials::from_json(&json!({"token": token}).to_string()).unwrap();
    assert!(!format!("{credentials:?}").contains(&token));
}
