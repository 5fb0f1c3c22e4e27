//! The demo's delivery (SPEC 14): a GitHub stand-in with the repository
//! `acme/app-deployer`, the secret tagged to deliver there, and, after the
//! rotation, the delivery function writing the new key into the repository's
//! Actions secrets (opened by the stand-in with the repository's private key,
//! as GitHub's runners would), then the sweep retiring the old key, only now.
//! Secret access keys are never printed: only whether the stand-in's plaintext
//! matches the secret's.

use harness::delivery::{deliver_env, env_pairs};
use harness::function::Function;
use harness::github_standin::GitHubStandIn;
use harness::{Fixture, World};
use serde_json::json;

const OWNER: &str = "acme";
const REPO: &str = "app-deployer";

pub struct DemoDelivery {
    github: GitHubStandIn,
    credentials: String,
}

impl DemoDelivery {
    /// The stand-in, a token in a credentials secret, and the target tag.
    pub async fn start(world: &World, fixture: &Fixture) -> Self {
        let github = GitHubStandIn::start();
        github.repository(OWNER, REPO, &[]).await;
        let token = github.token(&[&format!("{OWNER}/{REPO}")]).await;
        let credentials = world.github_credentials(&json!({ "token": token })).await;
        let spec = format!("github:{OWNER}/{REPO}");
        world
            .tag_secret(
                &fixture.secret_arn,
                &[("iam-key-rotation:deliver:ci", &spec)],
            )
            .await;
        println!(
            "Started a GitHub stand-in at {} with the repository {OWNER}/{REPO}; tagged the secret iam-key-rotation:deliver:ci={spec} (a fine-grained token in {credentials})",
            github.api_url()
        );
        Self {
            github,
            credentials,
        }
    }

    /// Runs the delivery function for the secret and shows what the
    /// repository now holds.
    pub async fn deliver(&self, world: &World, fixture: &Fixture) {
        self.show_repository(world, fixture, "Before the delivery")
            .await;
        let env = deliver_env(&self.github, &self.credentials, "");
        let mut deliverer =
            Function::start_deliver(&harness::moto().endpoint, &env_pairs(&env)).await;
        println!(
            "\nThe delivery function (iam-key-deliver), invoked as the rule on Access Key Rotated does:"
        );
        let response = deliverer.deliver(Some(&fixture.secret_arn)).await;
        println!("  {response}");
        deliverer.stop().await;
        self.show_repository(world, fixture, "After the delivery")
            .await;
    }

    async fn show_repository(&self, world: &World, fixture: &Fixture, title: &str) {
        let holder = format!("repos/{OWNER}/{REPO}");
        let (_, current) = world.current_value(&fixture.secret_arn).await;
        let id = self.github.secret(&holder, "AWS_ACCESS_KEY_ID").await;
        let secret = self.github.secret(&holder, "AWS_SECRET_ACCESS_KEY").await;
        println!(
            "\n{title}: the Actions secrets of {OWNER}/{REPO}, as the stand-in decrypts them:"
        );
        match (id, secret) {
            (Some(id), Some(secret)) => {
                let matches = current["SecretAccessKey"].as_str() == Some(secret.value.as_str());
                println!(
                    "  AWS_ACCESS_KEY_ID      {}  (updated {})",
                    id.value, id.updated_at
                );
                println!(
                    "  AWS_SECRET_ACCESS_KEY  {} characters, {} the secret's AWSCURRENT (updated {})",
                    secret.value.len(),
                    if matches { "matches" } else { "does not match" },
                    secret.updated_at
                );
            }
            _ => println!("  (none yet)"),
        }
    }
}
