//! The deconfliction broker.
