use super::auth::renew_at;
use super::*;
use crate::model::delivery_target::Visibility;

#[test]
fn paths_for_each_scope_with_segments_encoded() {
    let repo = GitHubScope::Repository {
        owner: "octo".into(),
        repo: "my.repo".into(),
    };
    assert_eq!(secrets_path(&repo), "/repos/octo/my.repo/actions/secrets");
    let environment = GitHubScope::Environment {
        owner: "octo".into(),
        repo: "r".into(),
        environment: "eu/prod 1".into(),
    };
    assert_eq!(
        secrets_path(&environment),
        "/repos/octo/r/environments/eu%2Fprod%201/secrets"
    );
    let org = GitHubScope::Organization {
        org: "acme".into(),
        visibility: Visibility::All,
    };
    assert_eq!(secrets_path(&org), "/orgs/acme/actions/secrets");
}

#[test]
fn an_installation_token_is_renewed_five_minutes_before_it_expires() {
    assert_eq!(secs_of(renew_at(1_800_003_600)), 1_800_003_300);
    assert_eq!(renew_at(10), UNIX_EPOCH);
}

#[tokio::test]
async fn a_pause_only_grows_and_a_wait_past_stop_by_fails_at_once() {
    let client = GitHub::new(
        ApiRoot::default(),
        GitHubCredentials::from_json(r#"{"token": "t"}"#).unwrap(),
    );
    assert_eq!(client.pause_left(), None);
    client.pause(Limit::For(Duration::from_secs(30)));
    client.pause(Limit::For(Duration::from_secs(5)));
    let left = client.pause_left().unwrap();
    assert!(left > Duration::from_secs(25), "{left:?}");
    let calls = AtomicU32::new(0);
    let call = Call {
        stop_by: Some(Instant::now() + Duration::from_secs(10)),
        calls: &calls,
    };
    let started = Instant::now();
    let error = client
        .wait_out_pause(&call, "repository o/r, secret A")
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    let text = error.to_string();
    assert!(
        text.starts_with("GitHub rate-limits these credentials until "),
        "{text}"
    );
    assert!(text.contains("repository o/r, secret A"), "{text}");
    // A reset in the past (a skewed clock) still pauses a moment.
    client.pause(Limit::Until(0));
    assert!(client.pause_left().is_some());
}

#[test]
fn an_installation_token_asks_for_the_secrets_permissions_the_installation_has() {
    use super::auth::secrets_permissions;
    let wanted = secrets_permissions(&json!({
        "secrets": "write", "organization_secrets": "read", "environments": "admin",
        "metadata": "read", "contents": "write", "administration": "write"
    }))
    .unwrap();
    assert_eq!(
        serde_json::Value::Object(wanted),
        json!({"secrets": "write", "environments": "write", "metadata": "read"})
    );
    assert!(secrets_permissions(&json!({"contents": "write", "secrets": "read"})).is_none());
    assert!(secrets_permissions(&json!(null)).is_none());
}
