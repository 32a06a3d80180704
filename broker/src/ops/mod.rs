//! Work the broker does on its own, beside the calls: the expiry and retention sweeper, the
//! TLS file watcher, and the Prometheus metrics endpoint.

pub mod background;
pub mod metrics;
