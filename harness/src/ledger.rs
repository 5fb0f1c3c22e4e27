//! The secrets IAM handed out, seen by an SDK interceptor on the test's own IAM
//! client: the only way to check invariant 3 against moto, which has no call that
//! returns a key's secret later.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_iam::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_iam::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_iam::operation::create_access_key::CreateAccessKeyOutput;

use crate::evidence::record_issued_secret;

/// Access keys as IAM handed them out, captured from `CreateAccessKey` responses
/// by an SDK interceptor: the only way to check invariant 3 against moto, which
/// has no call that returns a key's secret later.
#[derive(Debug, Default, Clone)]
pub struct KeyLedger(Arc<Mutex<HashMap<String, String>>>);

impl KeyLedger {
    pub fn secret_of(&self, key_id: &str) -> Option<String> {
        self.0.lock().unwrap().get(key_id).cloned()
    }

    pub fn all_secrets(&self) -> Vec<String> {
        self.0.lock().unwrap().values().cloned().collect()
    }
}

impl Intercept for KeyLedger {
    fn name(&self) -> &'static str {
        "KeyLedger"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_iam::error::BoxError> {
        if let Ok(output) = context.output_or_error()
            && let Some(created) = output.downcast_ref::<CreateAccessKeyOutput>()
            && let Some(key) = created.access_key()
        {
            record_issued_secret(key.secret_access_key());
            self.0.lock().unwrap().insert(
                key.access_key_id().to_string(),
                key.secret_access_key().to_string(),
            );
        }
        Ok(())
    }
}
