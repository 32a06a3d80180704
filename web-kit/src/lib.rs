//! What the watch centre's console (`deconflict-broker console`) and an agency's duty desk
//! (served by `agencyd`) share: the catalogues of both languages, officers' accounts and the
//! sign-in lockout, sessions and CSRF tokens, the page shell and its assets, SVG charts,
//! times in the deployment's zone, and serving over TLS.
//!
//! It holds no page of either console and knows nothing of the broker's protocol: each
//! console renders its own pages from its own data.

pub mod accounts;
pub mod auth;
pub mod clock;
pub mod i18n;
pub mod layout;
pub mod live;
pub mod officers_cli;
pub mod serve;
pub mod session;
pub mod svg;

pub use i18n::Lang;
