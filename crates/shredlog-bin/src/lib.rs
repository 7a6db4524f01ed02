//! The `shredlog` command (DESIGN §5): the command-line interface and the
//! HTTP server of the shredlog engine. A library only so that the binary's
//! tests and fuzz targets can reach its parts; not a stable API.

#![forbid(unsafe_code)]

mod cli;
mod config;
mod server;

pub use cli::run;

/// Fuzz entry points (`fuzz/`, and the corpus replay in `cargo test`).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Server request bodies: never panics; errors never echo the input.
    pub fn request_body(data: &[u8]) {
        crate::server::fuzz_request_body(data);
    }
}
