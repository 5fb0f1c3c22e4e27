//! IAM's credential report: every user's keys' last use in one call.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_iam::primitives::DateTime;
use aws_sdk_iam::types::ReportStateType;

use super::error::AwsError;
use super::iam::Iam;
use crate::backoff::Backoff;
use crate::clock::parse_report_time;

/// What [`CredentialReport::fetch`] found.
#[derive(Debug)]
pub enum Fetched {
    Ready(CredentialReport),
    /// IAM had not finished the report within the wait; `state` is what
    /// `GenerateCredentialReport` last said.
    NotReady {
        state: String,
    },
}

/// IAM's credential report: per user, each key's creation time, whether it is
/// active and when it was last used. One report answers for every user, where
/// asking per key would cost a call each. AWS regenerates it at most every four
/// hours, so a key newer than the report is asked about directly.
#[derive(Debug, Default)]
pub struct CredentialReport {
    users: HashMap<String, Vec<ReportKey>>,
}

#[derive(Debug, Clone)]
struct ReportKey {
    created: DateTime,
    last_used: Option<DateTime>,
}

impl CredentialReport {
    /// Generates (or reuses AWS's recent) report and reads it, asking again
    /// until IAM has it ready or `wait` has passed.
    pub async fn fetch(iam: &Iam, wait: Duration) -> Result<Fetched, AwsError> {
        let give_up_at = std::time::Instant::now() + wait;
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
        loop {
            let state = iam
                .0
                .generate_credential_report()
                .send()
                .await
                .map_err(|error| AwsError::from_sdk("GenerateCredentialReport", "", &error))?;
            if state.state() == Some(&ReportStateType::Complete) {
                break;
            }
            let now = std::time::Instant::now();
            if now >= give_up_at {
                return Ok(Fetched::NotReady {
                    state: state.state().map_or("nothing", |s| s.as_str()).to_string(),
                });
            }
            tokio::time::sleep(backoff.next_pause().min(give_up_at - now)).await;
        }
        let output = iam
            .0
            .get_credential_report()
            .send()
            .await
            .map_err(|error| AwsError::from_sdk("GetCredentialReport", "", &error))?;
        let text = output
            .content()
            .map(|blob| String::from_utf8_lossy(blob.as_ref()).into_owned())
            .unwrap_or_default();
        Ok(Fetched::Ready(Self::parse(&text)))
    }

    /// Parses the CSV. IAM allows commas in user names and in paths, and the
    /// report may not quote them, so a line is read from both ends: every
    /// column after `arn` holds a date, a boolean, a region or a service (never
    /// a comma), and a user name holds no `:`, so the user ends at the first
    /// `,arn:`.
    pub fn parse(text: &str) -> Self {
        let mut lines = text.lines();
        let Some(header) = lines.next() else {
            return Self::default();
        };
        let columns: Vec<&str> = header.split(',').collect();
        let tail_len = columns.len().saturating_sub(2);
        let column = |name: &str| {
            columns
                .iter()
                .position(|c| *c == name)
                .and_then(|i| i.checked_sub(2))
        };
        let mut users = HashMap::new();
        for line in lines {
            let fields: Vec<&str> = line.split(',').map(unquote).collect();
            if fields.len() < columns.len() {
                continue;
            }
            let (head, tail) = fields.split_at(fields.len() - tail_len);
            let head = head.join(",");
            let Some((user, _arn)) = head.split_once(",arn:") else {
                continue;
            };
            let field = |name: &str| column(name).and_then(|i| tail.get(i)).copied();
            let keys = ["access_key_1", "access_key_2"]
                .iter()
                .filter_map(|slot| {
                    let created = parse_report_time(field(&format!("{slot}_last_rotated"))?)?;
                    let last_used =
                        field(&format!("{slot}_last_used_date")).and_then(parse_report_time);
                    Some(ReportKey { created, last_used })
                })
                .collect();
            users.insert(user.to_string(), keys);
        }
        Self { users }
    }

    /// The last use of the user's key created at `created`, if the report has
    /// that key: `Some(None)` for a key never used, `None` for a key it lacks.
    pub fn last_used(&self, user: &str, created: &DateTime) -> Option<Option<DateTime>> {
        self.users
            .get(user)?
            .iter()
            .find(|key| key.created.secs() == created.secs())
            .map(|key| key.last_used)
    }
}

/// A CSV field without the quotes RFC 4180 allows around it.
fn unquote(field: &str) -> &str {
    field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

    #[test]
    fn the_credential_report_is_read_even_with_commas_in_user_names() {
        let report = CredentialReport::parse(&format!(
            "{HEADER}\n\
             a,b=c,arn:aws:iam::1:user/a,b=c,2026-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-02-01T00:00:00+00:00,2026-03-01T00:00:00+00:00,us-east-1,iam,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
             path,user,arn:aws:iam::1:user/a,b/path,user,2026-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-02-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
        ));
        let created = parse_report_time("2026-02-01T00:00:00+00:00").unwrap();
        let used = report.last_used("a,b=c", &created).unwrap().unwrap();
        assert_eq!(
            Some(used.secs()),
            parse_report_time("2026-03-01T00:00:00Z").map(|t| t.secs())
        );
        // A comma in the path as well as in the name.
        assert_eq!(report.last_used("path,user", &created), Some(None));
        assert_eq!(report.last_used("a,b=c", &DateTime::from_secs(1)), None);
    }
}
