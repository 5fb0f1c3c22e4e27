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
            let tags: Vec<(&str, &str)> = secret_name
                .as_deref()
                .map(|name| vec![(BINDING_TAG, name)])
                .unwrap_or_default();
            world.create_user_at(&user, path, &tags).await;
            let (access_key_id, secret_access_key) = world.create_key(&user).await;
            if let Some(name) = &secret_name {
                world
                    .create_secret(
                        name,
                        &json!({"UserName": user, "AccessKeyId": access_key_id, "SecretAccessKey": secret_access_key}),
                    )
                    .await;
            }
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
