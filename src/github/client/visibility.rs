//! An organization secret's visibility, kept as it is: a write with the
//! spec's visibility over a secret GitHub shows with another would change
//! which repositories may read the key (`private` over `selected` opens it to
//! every private repository of the organization), so it is refused, and a
//! `selected` secret is written back with the repositories chosen in GitHub.

use super::paths::segment;
use super::{Call, GitHub};
use crate::github::error::GitHubError;
use crate::model::delivery_target::{GitHubScope, Visibility};

impl GitHub {
    /// An organization secret's write must not change who may read it: when
    /// the secret exists, its visibility must be the spec's (`private` over a
    /// `selected` secret would open it to every private repository); with
    /// `selected`, the repositories chosen in GitHub are read, to be written
    /// back as they are. `None` for every other scope, and for a new secret.
    pub(super) async fn keep_visibility(
        &self,
        scope: &GitHubScope,
        base: &str,
        name: &str,
        target: &str,
        call: &Call<'_>,
    ) -> Result<Option<Vec<u64>>, GitHubError> {
        let GitHubScope::Organization { visibility, .. } = scope else {
            return Ok(None);
        };
        let path = format!("{base}/{}", segment(name));
        let reply = self.exchange(call, target, "GET", &path, None).await?;
        let found = match reply.status {
            200 => reply
                .json()
                .and_then(|body| body["visibility"].as_str().map(str::to_string)),
            404 if *visibility == Visibility::Selected => {
                return Err(GitHubError::NotFound {
                    target: format!(
                        "{target} (visibility=selected: create it in GitHub first, choosing its repositories)"
                    ),
                });
            }
            404 => return Ok(None),
            _ => return Err(self.refusal(&reply, target.to_string())),
        };
        match found {
            Some(found) if found != visibility.as_str() => Err(GitHubError::Visibility {
                target: target.to_string(),
                found,
                wanted: visibility.as_str(),
            }),
            _ if *visibility == Visibility::Selected => self
                .selected_repositories(&path, target, call)
                .await
                .map(Some),
            _ => Ok(None),
        }
    }

    /// The ids of the repositories a `selected` organization secret is open
    /// to, every page of them.
    async fn selected_repositories(
        &self,
        path: &str,
        target: &str,
        call: &Call<'_>,
    ) -> Result<Vec<u64>, GitHubError> {
        let mut ids = Vec::new();
        for page in 1.. {
            let page_path = format!("{path}/repositories?per_page=100&page={page}");
            let reply = self.exchange(call, target, "GET", &page_path, None).await?;
            if reply.status != 200 {
                return Err(self.refusal(&reply, target.to_string()));
            }
            let body = reply.json().unwrap_or_default();
            let listed: Vec<u64> = body["repositories"]
                .as_array()
                .map(|repositories| {
                    repositories
                        .iter()
                        .filter_map(|repository| repository["id"].as_u64())
                        .collect()
                })
                .unwrap_or_default();
            let total = body["total_count"].as_u64().unwrap_or(0);
            let done = listed.is_empty();
            ids.extend(listed);
            if done || ids.len() as u64 >= total {
                break;
            }
        }
        Ok(ids)
    }
}
