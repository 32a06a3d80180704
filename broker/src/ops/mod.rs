//! Work the broker does on its own, beside the calls: the expiry and retention sweeper, the
//! TLS file watcher, the Prometheus metrics endpoint, and (in a stand-alone token service)
//! the mirror of the broker's registry.

pub mod background;
pub mod metrics;
pub mod registry_mirror;
