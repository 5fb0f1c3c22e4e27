//! Counts the AWS calls the clients make, for the `AwsCalls` metric: an SDK
//! interceptor on every client, so no call goes uncounted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_iam::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_iam::config::{ConfigBag, Intercept, RuntimeComponents};

/// Counts every attempt of every AWS call made through the clients it is
/// installed on (and the clients derived from them).
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<AtomicU64>);

impl CallCounter {
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_iam::error::BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Logs every attempt of every AWS call at DEBUG (`keyrot -v`): the service
/// and operation, the endpoint and path it went to, the HTTP status and how
/// long it took. Never a header, a query string or a body, so never a
/// credential or a secret.
#[derive(Debug, Clone, Default)]
pub struct CallLog;

/// When the attempt being logged was sent.
#[derive(Debug, Clone)]
struct Sent(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for Sent {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_iam::error::BoxError> {
        cfg.interceptor_state()
            .store_put(Sent(std::time::Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &aws_sdk_iam::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_iam::error::BoxError> {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return Ok(());
        }
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| format!("{} {}", m.service(), m.name()))
            .unwrap_or_else(|| "unknown operation".into());
        let target = context
            .request()
            .map(|request| {
                let uri = request.uri();
                uri.split('?').next().unwrap_or(uri).to_string()
            })
            .unwrap_or_else(|| "(not sent)".into());
        let status = context
            .response()
            .map(|response| response.status().as_u16().to_string())
            .unwrap_or_else(|| "no answer".into());
        let elapsed = cfg
            .load::<Sent>()
            .map(|sent| format!("{} ms", sent.0.elapsed().as_millis()))
            .unwrap_or_default();
        tracing::debug!("AWS call {operation} -> {target}: {status}, {elapsed}");
        Ok(())
    }
}
