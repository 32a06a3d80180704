//! The local control API (`deconfliction.agent.v1.AgencyControl`) as both ends use it: the
//! client connection over agencyd's Unix socket, and conversions between the wire's selectors
//! and [`token_spec::normalize::Selector`].

mod convert;
mod uds;

pub use convert::{
    form_kind_to_wire, kind_from_wire, kind_to_wire, operation_spec_to_request,
    selector_from_proto, selector_to_proto, window_to_wire,
};
pub use uds::{ConnectError, connect};

/// The generated messages, client and server of the control API.
pub use deconfliction_proto::agent::v1 as pb;

/// Environment variable naming the socket, for both agencyd and deconflict.
pub const SOCKET_ENV: &str = "DECONFLICT_SOCKET";

/// Where agencyd listens and deconflict connects when nothing else is configured.
pub fn default_socket_path() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        std::path::PathBuf::from(dir).join("agencyd/agencyd.sock")
    } else {
        std::path::PathBuf::from("/run/agencyd/agencyd.sock")
    }
}
