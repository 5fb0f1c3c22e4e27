use super::*;

fn github(spec: &str) -> GitHubTarget {
    match Target::parse(spec) {
        Ok(Target::GitHub(target)) => target,
        other => panic!("{spec}: {other:?}"),
    }
}

fn refused(spec: &str) -> String {
    let error = Target::parse(spec).expect_err(spec).to_string();
    assert!(error.starts_with("invalid target spec"), "{error}");
    error
}

#[test]
fn a_repository_target_with_default_names() {
    let target = github("github:octo-org/my.repo_1");
    assert_eq!(
        target.scope,
        GitHubScope::Repository {
            owner: "octo-org".into(),
            repo: "my.repo_1".into()
        }
    );
    assert_eq!(target.names.access_key_id, "AWS_ACCESS_KEY_ID");
    assert_eq!(target.names.secret_access_key, "AWS_SECRET_ACCESS_KEY");
    assert_eq!(target.names.smtp_password(false), None);
    assert_eq!(target.names.smtp_password(true), Some("SMTP_PASSWORD"));
    assert_eq!(
        Target::parse("github:o/r").unwrap().kind().as_str(),
        "github"
    );
}

#[test]
fn an_environment_target_takes_its_options_in_any_order() {
    let a = github("github:o/r:env=production:names=KEY_ID,KEY_SECRET");
    let b = github("github:o/r:names=KEY_ID,KEY_SECRET:env=production");
    assert_eq!(a, b);
    assert_eq!(
        a.scope,
        GitHubScope::Environment {
            owner: "o".into(),
            repo: "r".into(),
            environment: "production".into()
        }
    );
    assert_eq!(a.names.access_key_id, "KEY_ID");
    assert_eq!(a.names.secret_access_key, "KEY_SECRET");
    assert_eq!(
        Target::parse("github:o/r:env=prod")
            .unwrap()
            .kind()
            .as_str(),
        "github-environment"
    );
    assert_eq!(
        github("github:o/r:env=eu/prod 2").scope,
        GitHubScope::Environment {
            owner: "o".into(),
            repo: "r".into(),
            environment: "eu/prod 2".into()
        }
    );
}

#[test]
fn an_organization_target_is_private_unless_it_says_all() {
    let private = github("github-org:acme");
    assert_eq!(
        private.scope,
        GitHubScope::Organization {
            org: "acme".into(),
            visibility: Visibility::Private
        }
    );
    assert_eq!(
        github("github-org:acme:visibility=private").scope,
        private.scope
    );
    let all = github("github-org:acme:names=A,B,C:visibility=all");
    assert_eq!(
        all.scope,
        GitHubScope::Organization {
            org: "acme".into(),
            visibility: Visibility::All
        }
    );
    assert_eq!(all.names.smtp_password(true), Some("C"));
    assert_eq!(all.names.smtp_password(false), None);
    assert_eq!(
        Target::parse("github-org:acme").unwrap().kind().as_str(),
        "github-org"
    );
}

#[test]
fn names_follow_githubs_rules() {
    assert_eq!(
        github("github:o/r:names=_a,b2,SMTP").names.access_key_id,
        "_a"
    );
    for bad in [
        "github:o/r:names=A",
        "github:o/r:names=A,B,C,D",
        "github:o/r:names=A,",
        "github:o/r:names=1A,B",
        "github:o/r:names=A-B,C",
        "github:o/r:names=A,GITHUB_TOKEN",
        "github:o/r:names=A,github_x",
        "github:o/r:names=A,a",
        "github:o/r:names=A B,C",
    ] {
        refused(bad);
    }
    assert!(refused("github:o/r:names=A,GITHUB_TOKEN").contains("GITHUB_"));
}

#[test]
fn options_are_each_given_once_and_only_where_they_belong() {
    for bad in [
        "github:o/r:env=a:env=b",
        "github:o/r:names=A,B:names=C,D",
        "github:o/r:visibility=all",
        "github-org:acme:env=prod",
        "github-org:acme:visibility=public",
        "github-org:acme:visibility=all:visibility=all",
        "github:o/r:env=",
        "github:o/r:env",
        "github:o/r:",
        "github:o/r:color=blue",
    ] {
        refused(bad);
    }
}

#[test]
fn owners_repositories_and_environments_are_checked() {
    for bad in [
        "github:o",
        "github:/r",
        "github:o/",
        "github:o/r/x",
        "github:-o/r",
        "github:o o/r",
        "github:o/..",
        "github:o/.",
        "github:o/r?x",
        "github:o/r%2f",
        "github:o/r:env= prod",
        "github:o/r:env=a\tb",
        "github-org:",
        "github-org:a/b",
        "GitHub:o/r",
        "gitlab:o/r",
        "github",
        "",
    ] {
        refused(bad);
    }
    github("github:user_shortcode/r");
    github(&format!("github:o/r:env={}", "e".repeat(MAX_SPEC_LEN - 15)));
}

#[test]
fn ssm_targets_in_this_account_or_another() {
    assert_eq!(
        Target::parse("ssm:eu-west-1:/ci/deploy").unwrap(),
        Target::Ssm(SsmTarget {
            account: None,
            region: "eu-west-1".into(),
            path: "/ci/deploy".into()
        })
    );
    let Target::Ssm(other) = Target::parse("ssm:210987654321:us-gov-west-1:/a").unwrap() else {
        panic!()
    };
    assert_eq!(other.account.as_deref(), Some("210987654321"));
    assert_eq!(other.parameter(SSM_SECRET_ACCESS_KEY), "/a/SecretAccessKey");
    assert_eq!(
        Target::parse("ssm:us-east-1:/a").unwrap().kind().as_str(),
        "ssm"
    );
    for bad in [
        "ssm:/a",
        "ssm:us-east-1:a",
        "ssm:us-east-1:/",
        "ssm:us-east-1:/a/",
        "ssm:us-east-1://a",
        "ssm:us-east-1:/a b",
        "ssm:us-east-1:/aws/x",
        "ssm:us-east-1:/SSM-x/y",
        "ssm:US-EAST-1:/a",
        "ssm:useast1:/a",
        "ssm:12345:us-east-1:/a",
        "ssm:123456789012:us-east-1:/a:names=A,B",
    ] {
        refused(bad);
    }
    let deep = format!("ssm:us-east-1:{}", "/a".repeat(MAX_SSM_PATH_LEVELS + 1));
    refused(&deep);
    Target::parse(&format!(
        "ssm:us-east-1:{}",
        "/a".repeat(MAX_SSM_PATH_LEVELS)
    ))
    .unwrap();
}

#[test]
fn secrets_manager_targets_name_a_secret_arn() {
    let arn = "arn:aws:secretsmanager:eu-central-1:210987654321:secret:ci/deploy-key-AbCdEf";
    assert_eq!(
        Target::parse(&format!("secretsmanager:{arn}")).unwrap(),
        Target::SecretsManager(SecretsManagerTarget {
            arn: arn.into(),
            region: "eu-central-1".into(),
            account: "210987654321".into()
        })
    );
    Target::parse(
        "secretsmanager:arn:aws-us-gov:secretsmanager:us-gov-west-1:210987654321:secret:x-AbC123",
    )
    .unwrap();
    for bad in [
        "secretsmanager:ci/deploy",
        "secretsmanager:arn:aws:secretsmanager:eu-central-1:210987654321:secret:",
        "secretsmanager:arn:aws:ssm:eu-central-1:210987654321:parameter/x",
        "secretsmanager:arn:aws:secretsmanager:eu-central-1:2109876:secret:x",
        "secretsmanager:arn:aws:secretsmanager::210987654321:secret:x",
        "secretsmanager:arn:aws:secretsmanager:eu-central-1:210987654321:secret:a b",
        "secretsmanager:arn:gcp:secretsmanager:eu-central-1:210987654321:secret:x",
        // A name, or a partial ARN, is no identity.
        "secretsmanager:arn:aws:secretsmanager:eu-central-1:210987654321:secret:ci/deploy-key",
        "secretsmanager:arn:aws:secretsmanager:eu-central-1:210987654321:secret:-AbCdEf",
        "secretsmanager:arn:aws:secretsmanager:eu-central-1:210987654321:secret:key-AbC.Ef",
    ] {
        refused(bad);
    }
}

#[test]
fn a_spec_longer_than_a_tag_value_is_refused() {
    refused(&format!("github:o/r:env={}", "e".repeat(MAX_SPEC_LEN)));
}

#[test]
fn every_target_prints_as_a_spec_that_parses_back_to_it() {
    for (spec, canonical) in [
        ("github:o/r", "github:o/r"),
        (
            "github:o/r:names=AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY",
            "github:o/r",
        ),
        (
            "github:o/r:names=A,B:env=prod",
            "github:o/r:env=prod:names=A,B",
        ),
        ("github-org:acme:visibility=private", "github-org:acme"),
        (
            "github-org:acme:names=A,B,C:visibility=all",
            "github-org:acme:visibility=all:names=A,B,C",
        ),
        ("ssm:us-east-1:/a/b", "ssm:us-east-1:/a/b"),
        (
            "ssm:210987654321:us-east-1:/a",
            "ssm:210987654321:us-east-1:/a",
        ),
        (
            "secretsmanager:arn:aws:secretsmanager:us-east-1:210987654321:secret:x-AbCdEf",
            "secretsmanager:arn:aws:secretsmanager:us-east-1:210987654321:secret:x-AbCdEf",
        ),
    ] {
        let target = Target::parse(spec).unwrap();
        assert_eq!(target.to_string(), canonical);
        assert_eq!(Target::parse(canonical).unwrap(), target);
    }
}

#[test]
fn labels_are_short_and_plain() {
    for good in ["ci", "prod.eu-1", "A_b", &"x".repeat(MAX_LABEL_LEN)] {
        assert_eq!(Label::parse(good).unwrap().as_str(), good);
    }
    for bad in ["", "a b", "a:b", "a/b", "é", &"x".repeat(MAX_LABEL_LEN + 1)] {
        assert!(
            Label::parse(bad)
                .unwrap_err()
                .to_string()
                .starts_with("invalid target spec")
        );
    }
    assert_eq!(
        Label::parse("ci").unwrap().tag_key(),
        "iam-key-rotation:deliver:ci"
    );
}

#[test]
fn only_the_exact_reserved_prefix_makes_a_delivery_tag() {
    let tags = [
        ("iam-key-rotation:deliver:ci", "github:o/r"),
        ("IAM-Key-Rotation:deliver:shadow", "github:attacker/r"),
        ("iam-key-rotation:Deliver:shadow2", "github:attacker/r"),
        ("deliver:ci", "github:attacker/r"),
        ("iam-key-rotation:deliver:bad label", "github:o/r"),
        ("iam-key-rotation:deliver:broken", "github:o"),
        ("iam-key-rotation:delivered", "v 1 ci"),
        ("team", "platform"),
    ];
    let found = delivery_tags(tags.iter().map(|(k, v)| (*k, *v)));
    let labels: Vec<&str> = found.iter().map(|tag| tag.label.as_str()).collect();
    assert_eq!(labels, ["bad label", "broken", "ci"]);
    assert!(
        found[0]
            .target
            .as_ref()
            .unwrap_err()
            .detail()
            .contains("label")
    );
    assert!(found[1].target.is_err());
    let (label, target) = found[2].target.as_ref().unwrap();
    assert_eq!(label.as_str(), "ci");
    assert_eq!(target.to_string(), "github:o/r");
}
