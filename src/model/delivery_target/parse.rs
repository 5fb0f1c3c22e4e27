//! The grammar of each target form (SPEC 14) and the naming rules of the
//! places it names: GitHub owners, repositories and environments, SSM paths,
//! Secrets Manager ARNs.

use super::*;

/// `key=value` options, each at most once and only those `allowed`.
fn options<'a>(
    parts: impl Iterator<Item = &'a str>,
    allowed: &[&'static str],
    form: &str,
) -> Result<Vec<(&'static str, &'a str)>, InvalidTarget> {
    let mut found: Vec<(&'static str, &'a str)> = Vec::new();
    for part in parts {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let Some(key) = allowed.iter().copied().find(|allowed| *allowed == key) else {
            return Err(InvalidTarget::new(format!(
                "{form} takes no option {part:?} (its options: {})",
                allowed.join(", ")
            )));
        };
        if value.is_empty() {
            return Err(InvalidTarget::new(format!("option {key}= needs a value")));
        }
        if found.iter().any(|(seen, _)| *seen == key) {
            return Err(InvalidTarget::new(format!("option {key}= given twice")));
        }
        found.push((key, value));
    }
    Ok(found)
}

fn option<'a>(options: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    options
        .iter()
        .find(|(found, _)| *found == key)
        .map(|(_, value)| *value)
}

fn names_option(options: &[(&str, &str)]) -> Result<SecretNames, InvalidTarget> {
    option(options, "names").map_or_else(|| Ok(SecretNames::default()), SecretNames::parse)
}

pub(super) fn parse_github_repository(rest: &str) -> Result<Target, InvalidTarget> {
    let mut parts = rest.split(':');
    let repository = parts.next().unwrap_or_default();
    let Some((owner, repo)) = repository.split_once('/') else {
        return Err(InvalidTarget::new(format!(
            "github:{repository} must name OWNER/REPO"
        )));
    };
    check_owner(owner)?;
    check_repo(repo)?;
    let options = options(parts, &["env", "names"], "github:OWNER/REPO")?;
    let scope = match option(&options, "env") {
        None => GitHubScope::Repository {
            owner: owner.into(),
            repo: repo.into(),
        },
        Some(environment) => {
            check_environment(environment)?;
            GitHubScope::Environment {
                owner: owner.into(),
                repo: repo.into(),
                environment: environment.into(),
            }
        }
    };
    Ok(Target::GitHub(GitHubTarget {
        scope,
        names: names_option(&options)?,
    }))
}

pub(super) fn parse_github_org(rest: &str) -> Result<Target, InvalidTarget> {
    let mut parts = rest.split(':');
    let org = parts.next().unwrap_or_default();
    check_owner(org)?;
    let options = options(parts, &["visibility", "names"], "github-org:ORG")?;
    let visibility = match option(&options, "visibility") {
        None | Some("private") => Visibility::Private,
        Some("all") => Visibility::All,
        Some("selected") => Visibility::Selected,
        Some(other) => {
            return Err(InvalidTarget::new(format!(
                "visibility={other} must be all, private or selected"
            )));
        }
    };
    Ok(Target::GitHub(GitHubTarget {
        scope: GitHubScope::Organization {
            org: org.into(),
            visibility,
        },
        names: names_option(&options)?,
    }))
}

/// An owner or organization: letters, digits, `-` and `_` (Enterprise Managed
/// Users), not starting with `-`; safe in a URL path as it is.
fn check_owner(owner: &str) -> Result<(), InvalidTarget> {
    let valid = (1..=MAX_GITHUB_NAME_LEN).contains(&owner.len())
        && !owner.starts_with('-')
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(InvalidTarget::new(format!(
            "{owner:?} is not a GitHub owner or organization name (A-Z a-z 0-9 - _)"
        )))
    }
}

/// A repository name: letters, digits, `.`, `-` and `_`, not `.` or `..`.
fn check_repo(repo: &str) -> Result<(), InvalidTarget> {
    let valid = (1..=MAX_GITHUB_NAME_LEN).contains(&repo.len())
        && repo != "."
        && repo != ".."
        && repo
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(InvalidTarget::new(format!(
            "{repo:?} is not a GitHub repository name (A-Z a-z 0-9 . - _)"
        )))
    }
}

/// An environment name: GitHub allows up to 255 characters; here `:` separates
/// options, so it cannot be one of them, and no control characters or
/// surrounding spaces.
fn check_environment(environment: &str) -> Result<(), InvalidTarget> {
    let valid = environment.chars().count() <= MAX_ENVIRONMENT_LEN
        && environment.trim() == environment
        && !environment.chars().any(char::is_control);
    if valid {
        Ok(())
    } else {
        Err(InvalidTarget::new(format!(
            "env={environment:?} is not an environment name (at most {MAX_ENVIRONMENT_LEN} characters, no control characters or surrounding spaces)"
        )))
    }
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn parse_ssm(rest: &str) -> Result<Target, InvalidTarget> {
    let parts: Vec<&str> = rest.split(':').collect();
    let (account, region, path) = match parts.as_slice() {
        [region, path] => (None, *region, *path),
        [account, region, path] => (Some(*account), *region, *path),
        _ => {
            return Err(InvalidTarget::new(format!(
                "ssm:{rest} must be ssm:REGION:/PATH or ssm:ACCOUNT:REGION:/PATH (SSM names have no ':')"
            )));
        }
    };
    if let Some(account) = account
        && !is_account_id(account)
    {
        return Err(InvalidTarget::new(format!(
            "{account:?} is not an AWS account id (12 digits)"
        )));
    }
    if !is_region_name(region) {
        return Err(InvalidTarget::new(format!(
            "{region:?} is not an AWS region name (such as us-east-1)"
        )));
    }
    check_ssm_path(path)?;
    Ok(Target::Ssm(SsmTarget {
        account: account.map(str::to_string),
        region: region.into(),
        path: path.into(),
    }))
}

/// SSM's rules for a parameter hierarchy: starts with `/`, levels of `A-Z a-z
/// 0-9 _ . -`, the first not starting with `aws` or `ssm` (in any case), and
/// room for the leaf.
fn check_ssm_path(path: &str) -> Result<(), InvalidTarget> {
    let bad = |why: &str| Err(InvalidTarget::new(format!("SSM path {path:?} {why}")));
    let Some(levels) = path.strip_prefix('/') else {
        return bad("must start with /");
    };
    let levels: Vec<&str> = levels.split('/').collect();
    if levels.iter().any(|level| level.is_empty()) {
        return bad("has an empty level (// or a trailing /)");
    }
    if !levels.iter().all(|level| {
        level
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    }) {
        return bad("may hold only A-Z a-z 0-9 _ . - and /");
    }
    let first = levels[0].to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return bad("may not start with aws or ssm (SSM reserves them)");
    }
    if levels.len() > MAX_SSM_PATH_LEVELS || path.len() > MAX_SSM_PATH_LEN {
        return bad(&format!(
            "is too deep or long: at most {MAX_SSM_PATH_LEVELS} levels and {MAX_SSM_PATH_LEN} characters"
        ));
    }
    Ok(())
}

/// `arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME`.
pub(super) fn parse_secrets_manager(arn: &str) -> Result<Target, InvalidTarget> {
    let invalid = || {
        InvalidTarget::new(format!(
            "secretsmanager:{arn} must name a secret's ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"
        ))
    };
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    let [
        "arn",
        partition,
        "secretsmanager",
        region,
        account,
        "secret",
        name,
    ] = parts.as_slice()
    else {
        return Err(invalid());
    };
    let partition_ok = *partition == "aws"
        || partition.strip_prefix("aws-").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        });
    let name_ok = (1..=MAX_SECRET_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b));
    if !(partition_ok && is_region_name(region) && is_account_id(account) && name_ok) {
        return Err(invalid());
    }
    if !has_random_suffix(name) {
        return Err(InvalidTarget::new(format!(
            "secretsmanager:{arn} must be the secret's full ARN, ending in the 6 characters Secrets Manager adds to the name (-AbCdEf): a name is not an identity, and a secret deleted and made again under it must not receive the key"
        )));
    }
    Ok(Target::SecretsManager(SecretsManagerTarget {
        arn: arn.into(),
        region: region.to_string(),
        account: account.to_string(),
    }))
}

/// Whether a secret ARN's name part ends in the `-` and 6 letters or digits
/// Secrets Manager appends: what makes an ARN name one secret, never reused.
fn has_random_suffix(name: &str) -> bool {
    name.len() > 7
        && name.rsplit_once('-').is_some_and(|(base, suffix)| {
            !base.is_empty()
                && suffix.len() == 6
                && suffix.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}
