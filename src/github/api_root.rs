//! Where GitHub's REST API is: `GITHUB_API_URL`, the API root with its path
//! (`https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise
//! Server). Plain `http://` only for a loopback host (a local stand-in or a
//! tunnel), since the requests carry the token and the sealed secrets.

use std::net::IpAddr;

use super::error::GitHubError;

/// The environment variable that names the API root.
pub const GITHUB_API_URL: &str = "GITHUB_API_URL";
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// A checked API root, without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRoot(String);

impl Default for ApiRoot {
    fn default() -> Self {
        Self(DEFAULT_API_URL.to_string())
    }
}

impl ApiRoot {
    /// `GITHUB_API_URL`, or github.com when it is unset or empty.
    pub fn from_env() -> Result<Self, GitHubError> {
        match std::env::var(GITHUB_API_URL) {
            Ok(url) if !url.is_empty() => Self::parse(&url),
            _ => Ok(Self::default()),
        }
    }

    pub fn parse(url: &str) -> Result<Self, GitHubError> {
        let refuse = |detail: &str| {
            // A user part may hold a password: never shown.
            let shown = if url.contains('@') {
                "(a URL with a user part, not shown)".to_string()
            } else {
                format!("{url:?}")
            };
            Err(GitHubError::ApiUrl {
                url: shown,
                detail: detail.to_string(),
            })
        };
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return refuse("it must start with https:// (http:// only for a loopback host)");
        };
        if rest.contains(['?', '#', '@'])
            || rest.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return refuse("it must be a plain URL: no user, query, fragment or spaces");
        }
        let authority = rest.split('/').next().unwrap_or_default();
        let Some(host) = host_of(authority) else {
            return refuse("it names no host (or a port that is not a number)");
        };
        if !https && !is_loopback(host) {
            return refuse(
                "http:// is accepted only for a loopback host (localhost, 127.0.0.1, [::1]); use https://",
            );
        }
        Ok(Self(url.trim_end_matches('/').to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL of an API path (which starts with `/`).
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

/// The host of `host[:port]` or `[v6]:port`, if the port (when given) is a number.
fn host_of(authority: &str) -> Option<&str> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port_ok = port.is_none_or(|port| !port.is_empty() && port.parse::<u16>().is_ok());
    (!host.is_empty() && port_ok).then_some(host)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_roots_keep_their_path_without_a_trailing_slash() {
        assert_eq!(ApiRoot::default().as_str(), "https://api.github.com");
        let ghes = ApiRoot::parse("https://github.example.com/api/v3/").unwrap();
        assert_eq!(ghes.as_str(), "https://github.example.com/api/v3");
        assert_eq!(
            ghes.url("/orgs/acme/actions/secrets/public-key"),
            "https://github.example.com/api/v3/orgs/acme/actions/secrets/public-key"
        );
        ApiRoot::parse("https://github.example.com:8443").unwrap();
    }

    #[test]
    fn plain_http_only_for_a_loopback_host() {
        for local in [
            "http://127.0.0.1:8080/api/v3",
            "http://127.1.2.3",
            "http://localhost:9",
            "http://[::1]:8080",
        ] {
            ApiRoot::parse(local).unwrap();
        }
        for refused in [
            "http://api.github.com",
            "http://10.0.0.1",
            "http://127.0.0.1.example.com",
            "http://localhost.example.com",
            "ftp://api.github.com",
            "api.github.com",
            "https://",
            "https://:443",
            "https://host:port",
            "https://user:pass@api.github.com",
            "https://api.github.com?x=1",
            "https://api.github.com /x",
        ] {
            let error = ApiRoot::parse(refused).unwrap_err().to_string();
            assert!(error.contains("GITHUB_API_URL"), "{refused}: {error}");
            assert!(!error.contains("pass"), "{error}");
        }
    }
}
