//! Delivery targets (SPEC 14): where a secret's key is pushed, as reserved
//! secret tags `iam-key-rotation:deliver:<label>` = a target spec.
//!
//! Who can write the record: the tag key is reserved (`iam-key-rotation:*` on
//! `secretsmanager:TagResource`/`UntagResource` is denied by the SCP to all but
//! administrators), so a target is trusted only in such a tag. The prefix is
//! matched byte for byte: a key that differs in case is a plain tag anyone who
//! may tag the secret can write, and is ignored like any other. A target spec
//! written in the secret value or in a non-reserved tag is never read at all.
//!
//! Pure: the spec grammar and GitHub's naming rules, each with a unit test.

use std::fmt;

use crate::smtp::is_region_name;

/// The reserved tag key prefix of a delivery target; the label follows.
pub const DELIVER_TAG_PREFIX: &str = "iam-key-rotation:deliver:";

/// The names a GitHub target writes unless its spec says `names=`.
pub const DEFAULT_ACCESS_KEY_ID_NAME: &str = "AWS_ACCESS_KEY_ID";
pub const DEFAULT_SECRET_ACCESS_KEY_NAME: &str = "AWS_SECRET_ACCESS_KEY";
/// The third name, written only for a secret with `SmtpRegion`.
pub const DEFAULT_SMTP_PASSWORD_NAME: &str = "SMTP_PASSWORD";

/// The SSM parameters a target writes under its path.
pub const SSM_ACCESS_KEY_ID: &str = "AccessKeyId";
pub const SSM_SECRET_ACCESS_KEY: &str = "SecretAccessKey";
pub const SSM_SMTP_PASSWORD: &str = "SmtpPassword";

const MAX_LABEL_LEN: usize = 64;
/// Secrets Manager's limit on a tag value.
const MAX_SPEC_LEN: usize = 256;
/// GitHub's longest repository name; owners and organizations are shorter
/// on github.com, but Enterprise Managed Users (`handle_shortcode`) and GitHub
/// Enterprise Server names are longer, so one generous bound for all three.
const MAX_GITHUB_NAME_LEN: usize = 100;
/// GitHub's limit on an environment name.
const MAX_ENVIRONMENT_LEN: usize = 255;
/// SSM allows 15 levels in a parameter name; the leaf takes one.
const MAX_SSM_PATH_LEVELS: usize = 14;
/// SSM's limit on a parameter name, less the longest leaf (`/SecretAccessKey`).
const MAX_SSM_PATH_LEN: usize = 1011 - 16;
const MAX_SECRET_NAME_LEN: usize = 512;

const FORMS: &str = "github:OWNER/REPO[:env=ENVIRONMENT], github-org:ORG[:visibility=all|private], \
     each with an optional :names=ID_NAME,SECRET_NAME[,SMTP_NAME]; ssm:[ACCOUNT:]REGION:/PATH; \
     secretsmanager:ARN";

/// Why a tag is not a usable target. Its text always starts `invalid target
/// spec` (SPEC 14: the response's `Failed` entry, the failure event and `keyrot
/// deliver add` all show it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTarget(String);

impl InvalidTarget {
    pub(crate) fn new(detail: impl Into<String>) -> Self {
        Self(detail.into())
    }

    /// What is wrong, without the leading `invalid target spec: `.
    pub fn detail(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InvalidTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid target spec: {}", self.0)
    }
}

impl std::error::Error for InvalidTarget {}

/// A target's label: 1 to 64 of `A-Z a-z 0-9 _ . -`. It names the target in the
/// tag key, in the delivered record, in events and in the response.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label(String);

impl Label {
    pub fn parse(text: &str) -> Result<Self, InvalidTarget> {
        let valid = (1..=MAX_LABEL_LEN).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if valid {
            Ok(Self(text.to_string()))
        } else {
            Err(InvalidTarget::new(format!(
                "label {text:?} must be 1 to {MAX_LABEL_LEN} of the characters A-Z a-z 0-9 _ . -"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The reserved tag key that holds this label's target.
    pub fn tag_key(&self) -> String {
        format!("{DELIVER_TAG_PREFIX}{}", self.0)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One reserved delivery tag of a secret: the label as written, and the target,
/// or why it is none (an invalid label or spec is a target that fails on every
/// run, so it is kept, not dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTag {
    pub label: String,
    /// The tag's value as written.
    pub spec: String,
    pub target: Result<(Label, Target), InvalidTarget>,
}

impl DeliveryTag {
    /// The delivery tag a secret tag is, if its key starts with the reserved
    /// prefix, byte for byte.
    pub fn from_tag(key: &str, value: &str) -> Option<Self> {
        let label = key.strip_prefix(DELIVER_TAG_PREFIX)?;
        let target = Label::parse(label).and_then(|label| Ok((label, Target::parse(value)?)));
        Some(Self {
            label: label.to_string(),
            spec: value.to_string(),
            target,
        })
    }
}

/// The delivery tags among a secret's tags, by label.
pub fn delivery_tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<DeliveryTag> {
    let mut found: Vec<DeliveryTag> = tags
        .into_iter()
        .filter_map(|(key, value)| DeliveryTag::from_tag(key, value))
        .collect();
    found.sort_by(|a, b| a.label.cmp(&b.label));
    found
}

/// Where a key goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    GitHub(GitHubTarget),
    Ssm(SsmTarget),
    SecretsManager(SecretsManagerTarget),
}

/// The `kind` of a target in events and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    GitHub,
    GitHubEnvironment,
    GitHubOrg,
    Ssm,
    SecretsManager,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::GitHubEnvironment => "github-environment",
            Self::GitHubOrg => "github-org",
            Self::Ssm => "ssm",
            Self::SecretsManager => "secretsmanager",
        }
    }
}

/// GitHub Actions secrets: where, and under which names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubTarget {
    pub scope: GitHubScope,
    pub names: SecretNames,
}

/// Which Actions secrets: a repository's, one of its environments', or an
/// organization's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GitHubScope {
    Repository {
        owner: String,
        repo: String,
    },
    Environment {
        owner: String,
        repo: String,
        environment: String,
    },
    Organization {
        org: String,
        visibility: Visibility,
    },
}

impl fmt::Display for GitHubScope {
    /// As an operator finds it on GitHub: `owner/repo`, `owner/repo environment
    /// prod`, `organization acme`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Repository { owner, repo } => write!(f, "repository {owner}/{repo}"),
            Self::Environment {
                owner,
                repo,
                environment,
            } => write!(
                f,
                "environment {environment:?} of repository {owner}/{repo}"
            ),
            Self::Organization { org, .. } => write!(f, "organization {org}"),
        }
    }
}

/// Which repositories of an organization see its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Visibility {
    /// Private and internal repositories.
    #[default]
    Private,
    /// Every repository, public ones included.
    All,
}

impl Visibility {
    /// As GitHub's API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::All => "all",
        }
    }
}

/// The Actions secret names a GitHub target writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretNames {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Named in the spec; otherwise [`DEFAULT_SMTP_PASSWORD_NAME`].
    smtp_password: Option<String>,
}

impl Default for SecretNames {
    fn default() -> Self {
        Self {
            access_key_id: DEFAULT_ACCESS_KEY_ID_NAME.into(),
            secret_access_key: DEFAULT_SECRET_ACCESS_KEY_NAME.into(),
            smtp_password: None,
        }
    }
}

impl SecretNames {
    /// The name of the SMTP password, written only when the secret has
    /// `SmtpRegion` (a name given for a secret without one writes nothing).
    pub fn smtp_password(&self, has_smtp: bool) -> Option<&str> {
        has_smtp.then(|| {
            self.smtp_password
                .as_deref()
                .unwrap_or(DEFAULT_SMTP_PASSWORD_NAME)
        })
    }

    fn parse(list: &str) -> Result<Self, InvalidTarget> {
        let names: Vec<&str> = list.split(',').collect();
        let [id, secret, smtp @ ..] = names.as_slice() else {
            return Err(InvalidTarget::new(format!(
                "names={list} must list 2 or 3 names: ID_NAME,SECRET_NAME[,SMTP_NAME]"
            )));
        };
        if smtp.len() > 1 {
            return Err(InvalidTarget::new(format!(
                "names={list} must list 2 or 3 names: ID_NAME,SECRET_NAME[,SMTP_NAME]"
            )));
        }
        for name in &names {
            check_secret_name(name)?;
        }
        for (i, a) in names.iter().enumerate() {
            if names[..i].iter().any(|b| a.eq_ignore_ascii_case(b)) {
                return Err(InvalidTarget::new(format!(
                    "names={list} names {a} twice (GitHub's names ignore case)"
                )));
            }
        }
        Ok(Self {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
            smtp_password: smtp.first().map(|name| name.to_string()),
        })
    }

    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Display for SecretNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.access_key_id, self.secret_access_key)?;
        match &self.smtp_password {
            Some(smtp) => write!(f, ",{smtp}"),
            None => Ok(()),
        }
    }
}

/// GitHub's rule for secret names: letters, digits and underscores, not
/// starting with a digit, and not with `GITHUB_` (in any case).
fn check_secret_name(name: &str) -> Result<(), InvalidTarget> {
    let mut chars = name.chars();
    let well_formed = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Err(InvalidTarget::new(format!(
            "GitHub refuses the secret name {name:?}: only A-Z a-z 0-9 _, not starting with a digit"
        )));
    }
    if name
        .get(..7)
        .is_some_and(|start| start.eq_ignore_ascii_case("GITHUB_"))
    {
        return Err(InvalidTarget::new(format!(
            "GitHub refuses the secret name {name:?}: names may not start with GITHUB_"
        )));
    }
    Ok(())
}

/// SSM Parameter Store SecureString parameters under a path, in this account
/// or another (through the delivery role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsmTarget {
    pub account: Option<String>,
    pub region: String,
    /// Starts with `/`, no trailing `/`.
    pub path: String,
}

impl SsmTarget {
    /// The full name of the parameter `leaf` ([`SSM_ACCESS_KEY_ID`], ...).
    pub fn parameter(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.path)
    }
}

/// A copy in a Secrets Manager secret of another account or region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsManagerTarget {
    pub arn: String,
    pub region: String,
    pub account: String,
}

impl Target {
    /// Parses a target spec (SPEC 14); the options after the target come in any
    /// order, each at most once.
    pub fn parse(spec: &str) -> Result<Self, InvalidTarget> {
        if spec.len() > MAX_SPEC_LEN {
            return Err(InvalidTarget::new(format!(
                "longer than a tag value ({MAX_SPEC_LEN} characters)"
            )));
        }
        let Some((scheme, rest)) = spec.split_once(':') else {
            return Err(InvalidTarget::new(format!(
                "{spec:?} is none of the forms {FORMS}"
            )));
        };
        match scheme {
            "github" => parse_github_repository(rest),
            "github-org" => parse_github_org(rest),
            "ssm" => parse_ssm(rest),
            "secretsmanager" => parse_secrets_manager(rest),
            _ => Err(InvalidTarget::new(format!(
                "unknown target kind {scheme:?}: the forms are {FORMS}"
            ))),
        }
    }

    pub fn kind(&self) -> TargetKind {
        match self {
            Self::GitHub(github) => match github.scope {
                GitHubScope::Repository { .. } => TargetKind::GitHub,
                GitHubScope::Environment { .. } => TargetKind::GitHubEnvironment,
                GitHubScope::Organization { .. } => TargetKind::GitHubOrg,
            },
            Self::Ssm(_) => TargetKind::Ssm,
            Self::SecretsManager(_) => TargetKind::SecretsManager,
        }
    }
}

impl fmt::Display for Target {
    /// The spec, options in a fixed order and defaults left out: what `keyrot
    /// deliver list` shows, and parses back to the same target.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GitHub(GitHubTarget { scope, names }) => {
                match scope {
                    GitHubScope::Repository { owner, repo } => write!(f, "github:{owner}/{repo}")?,
                    GitHubScope::Environment {
                        owner,
                        repo,
                        environment,
                    } => write!(f, "github:{owner}/{repo}:env={environment}")?,
                    GitHubScope::Organization { org, visibility } => {
                        write!(f, "github-org:{org}")?;
                        if *visibility != Visibility::default() {
                            write!(f, ":visibility={}", visibility.as_str())?;
                        }
                    }
                }
                if !names.is_default() {
                    write!(f, ":names={names}")?;
                }
                Ok(())
            }
            Self::Ssm(SsmTarget {
                account,
                region,
                path,
            }) => match account {
                Some(account) => write!(f, "ssm:{account}:{region}:{path}"),
                None => write!(f, "ssm:{region}:{path}"),
            },
            Self::SecretsManager(target) => write!(f, "secretsmanager:{}", target.arn),
        }
    }
}

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

fn parse_github_repository(rest: &str) -> Result<Target, InvalidTarget> {
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

fn parse_github_org(rest: &str) -> Result<Target, InvalidTarget> {
    let mut parts = rest.split(':');
    let org = parts.next().unwrap_or_default();
    check_owner(org)?;
    let options = options(parts, &["visibility", "names"], "github-org:ORG")?;
    let visibility = match option(&options, "visibility") {
        None | Some("private") => Visibility::Private,
        Some("all") => Visibility::All,
        Some(other) => {
            return Err(InvalidTarget::new(format!(
                "visibility={other} must be all or private"
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

fn parse_ssm(rest: &str) -> Result<Target, InvalidTarget> {
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
fn parse_secrets_manager(arn: &str) -> Result<Target, InvalidTarget> {
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

#[cfg(test)]
mod tests {
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
}
