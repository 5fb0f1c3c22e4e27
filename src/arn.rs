//! The ARNs the function reads, parsed in one place: a secret's name, account
//! and partition, a Lambda function without its qualifier, an IAM user's and
//! an IAM role's. Pure functions, so every rule has a unit test.

/// The secret's name, from its ARN (`...:secret:NAME-AbCdEf`, the suffix being
/// six random characters) or as given when it is not an ARN.
pub fn name_of(secret_id: &str) -> &str {
    let Some((_, name_and_suffix)) = secret_id
        .strip_prefix("arn:")
        .and_then(|rest| rest.split_once(":secret:"))
    else {
        return secret_id;
    };
    match name_and_suffix.rsplit_once('-') {
        Some((name, suffix)) if suffix.len() == 6 => name,
        _ => name_and_suffix,
    }
}

/// The account in an ARN (a secret's, a role's, a user's); `None` for a name.
pub fn account_of(secret_id: &str) -> Option<&str> {
    secret_id
        .strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(3))
        .filter(|account| !account.is_empty())
}

/// The partition of an ARN (`aws`, `aws-us-gov`, `aws-cn`, ...); `None` for a
/// name.
pub fn partition_of(arn: &str) -> Option<&str> {
    arn.strip_prefix("arn:")
        .and_then(|rest| rest.split(':').next())
        .filter(|partition| !partition.is_empty())
}

/// Whether two Lambda function ARNs name the same function, whatever version or
/// alias either is qualified with.
pub fn same_function(a: &str, b: &str) -> bool {
    unqualified(a) == unqualified(b)
}

/// A Lambda function ARN without its version or alias:
/// `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`.
pub fn unqualified(function_arn: &str) -> &str {
    match function_arn.match_indices(':').nth(6) {
        Some((qualifier_colon, _)) => &function_arn[..qualifier_colon],
        None => function_arn,
    }
}

/// Whether `arn` is IAM user `user` in `account`: `arn:<partition>:iam::<account>:user/<path/><user>`.
/// IAM user names are unique regardless of case, so case does not matter.
pub fn is_user_arn(arn: &str, account: Option<&str>, user: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_arn, _partition, service, _region, arn_account, resource] = parts.as_slice() else {
        return false;
    };
    *service == "iam"
        && account.is_none_or(|account| account == *arn_account)
        && resource.starts_with("user/")
        && resource
            .rsplit('/')
            .next()
            .is_some_and(|name| name.eq_ignore_ascii_case(user))
}

/// `arn:<partition>:iam::<12 digits>:role/<path/name>`.
pub fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && resource.strip_prefix("role/").is_some_and(|name| !name.is_empty())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_accounts_are_read_from_arns() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:iam-keys/app-x-AbCdEf";
        assert_eq!(name_of(arn), "iam-keys/app-x");
        assert_eq!(account_of(arn), Some("123456789012"));
        assert_eq!(name_of("iam-keys/app"), "iam-keys/app");
        assert_eq!(account_of("iam-keys/app"), None);
        assert_eq!(partition_of(arn), Some("aws"));
        assert_eq!(
            partition_of("arn:aws-us-gov:iam::123456789012:role/r"),
            Some("aws-us-gov")
        );
        assert_eq!(partition_of("iam-keys/app"), None);
    }

    #[test]
    fn user_arns_are_matched_by_account_and_name() {
        let arn = "arn:aws:iam::111122223333:user/rotated/app";
        assert!(is_user_arn(arn, Some("111122223333"), "app"));
        assert!(is_user_arn(arn, None, "app"));
        assert!(!is_user_arn(arn, Some("444455556666"), "app"));
        assert!(!is_user_arn(arn, Some("111122223333"), "ap"));
        assert!(is_user_arn(arn, Some("111122223333"), "App"));
        assert!(!is_user_arn(
            "arn:aws:sts::111122223333:user/moto",
            None,
            "moto"
        ));
        assert!(!is_user_arn(
            "arn:aws:sts::111122223333:assumed-role/r/app",
            None,
            "app"
        ));
        assert!(!is_user_arn("garbage", None, "app"));
    }
}
