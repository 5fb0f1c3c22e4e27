//! A whole account's worth of users, keys and secrets, made quickly (eight
//! requests at a time) for the fleet tests and benchmark.

use futures::{StreamExt, stream};
use serde_json::json;

use crate::world::World;
use crate::{BINDING_TAG, unique};

/// One user made by [`populate`].
#[derive(Debug, Clone)]
pub struct Member {
    pub user: String,
    pub access_key_id: String,
    /// The secret that holds the key, if the user got one.
    pub secret_name: Option<String>,
}

/// Makes `count` users under `path`, each with one access key; every user
/// whose index is not a multiple of `unmanaged_every` also gets a secret named
/// `<secret_prefix><user>` holding its key, and the binding tag.
pub async fn populate(
    world: &World,
    path: &str,
    secret_prefix: &str,
    count: usize,
    unmanaged_every: usize,
) -> Vec<Member> {
    stream::iter(0..count)
        .map(|index| async move {
            let user = unique("member");
            let managed = index % unmanaged_every != 0;
            let secret_name = managed.then(|| format!("{secret_prefix}{user}"));
            let (access_key_id, _secret_access_key) = match &secret_name {
                Some(name) => {
                    // The secret first: the user is bound by its ARN.
                    let arn = world.create_secret(name, &json!({"UserName": user})).await;
                    world
                        .create_user_at(&user, path, &[(BINDING_TAG, &arn)])
                        .await;
                    let (id, secret) = world.create_key(&user).await;
                    let version = world
                        .secrets()
                        .put_secret_value()
                        .secret_id(&arn)
                        .secret_string(
                            json!({"UserName": user, "AccessKeyId": id, "SecretAccessKey": secret})
                                .to_string(),
                        )
                        .send()
                        .await
                        .unwrap()
                        .version_id()
                        .unwrap()
                        .to_string();
                    // As the function leaves a key it stored: described for
                    // the version that holds it, and the move to that version
                    // recorded (finishSecret's current-since record).
                    world
                        .tag_user(&user, &id, &format!("iam-key-rotation {arn} {version}"))
                        .await;
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                    world
                        .tag_user(
                            &user,
                            "iam-key-rotation:current-since",
                            &format!("{version} {now}"),
                        )
                        .await;
                    (id, secret)
                }
                None => {
                    world.create_user_at(&user, path, &[]).await;
                    world.create_key(&user).await
                }
            };
            Member {
                user,
                access_key_id,
                secret_name,
            }
        })
        .buffer_unordered(8)
        .collect()
        .await
}
