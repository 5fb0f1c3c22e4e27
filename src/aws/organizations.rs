//! Organizations: the accounts of the caller's organization
//! (`organizations:ListAccounts`, by the management account or a delegated
//! administrator), for `keyrot --org` and the organization's daily audit.

use super::Clients;
use super::error::AwsError;

/// One account as `ListAccounts` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: String,
    pub name: Option<String>,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`, ... (`None` if AWS gave none).
    pub state: Option<String>,
}

/// Every account of the organization, every page.
pub async fn list_accounts(clients: &Clients) -> Result<Vec<OrgAccount>, AwsError> {
    let mut accounts = Vec::new();
    let mut pages = clients
        .organizations()
        .list_accounts()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| AwsError::from_sdk("ListAccounts", "", &error))?;
        for account in page.accounts() {
            let Some(id) = account.id() else { continue };
            // `State` replaces the deprecated `Status`; an older endpoint (an
            // emulator) may give only the latter.
            let state = account.state().map(|s| s.as_str().to_string()).or_else(|| {
                #[allow(deprecated)]
                account.status().map(|s| s.as_str().to_string())
            });
            accounts.push(OrgAccount {
                id: id.to_string(),
                name: account.name().map(str::to_string),
                state,
            });
        }
    }
    Ok(accounts)
}

/// The organization's management account, if the caller's account is in an
/// organization (`organizations:DescribeOrganization`, which any member may
/// call); `None` outside one.
pub async fn management_account(clients: &Clients) -> Result<Option<String>, AwsError> {
    match clients.organizations().describe_organization().send().await {
        Ok(output) => Ok(output
            .organization()
            .and_then(|organization| organization.master_account_id())
            .map(str::to_string)),
        Err(error) => {
            let error = AwsError::from_sdk_unadvised("DescribeOrganization", "", &error);
            if error.code == "AWSOrganizationsNotInUseException" {
                Ok(None)
            } else {
                Err(error)
            }
        }
    }
}
