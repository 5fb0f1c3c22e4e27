//! SPEC 11, T11: the reserved tags (`iam-key-rotation:*`) are protected by an
//! SCP, and SCPs do not govern the organization's management account. A stack
//! there trusts tags that anyone with `iam:TagUser` in that account can
//! write, so keyrot says so whenever it reads that account.

use crate::aws::Clients;
use crate::aws::organizations::management_account;
use crate::aws::sts::caller;

/// A warning for an operator reading the organization's management account,
/// or `None` (another account, no organization, or Organizations not
/// answering: this is advice, never a failure).
pub async fn management_account_warning(clients: &Clients) -> Option<String> {
    let account = caller(clients).await.ok()?.account;
    let management = management_account(clients).await.ok()??;
    (management == account).then(|| warning(&account))
}

fn warning(account: &str) -> String {
    format!(
        "account {account} is the organization's management account, which SCPs do not govern: the reserved tags (iam-key-rotation:*) that bind users to secrets, exempt users and record rotations are not protected here, so anyone in this account with iam:TagUser can bind a user to their own secret and receive its keys. Deploy the central stack in a delegated administrator account instead, or put a permissions boundary denying those tag keys on every principal but the function's role (docs/operating.md, \"Where the reserved tags are protected\")"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_names_the_account_the_risk_and_the_remedy() {
        let text = warning("123456789012");
        for words in [
            "123456789012",
            "management account",
            "SCPs do not govern",
            "iam:TagUser",
            "delegated administrator",
            "permissions boundary",
        ] {
            assert!(text.contains(words), "no {words:?} in {text}");
        }
    }
}
