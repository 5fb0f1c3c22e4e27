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

mod parse;

use parse::{parse_github_org, parse_github_repository, parse_secrets_manager, parse_ssm};

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

const FORMS: &str = "github:OWNER/REPO[:env=ENVIRONMENT], github-org:ORG[:visibility=all|private|selected], \
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
    /// The repositories chosen for it in GitHub, kept as they are: the secret
    /// must exist there with that visibility already.
    Selected,
}

impl Visibility {
    /// As GitHub's API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::All => "all",
            Self::Selected => "selected",
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

#[cfg(test)]
mod tests;
