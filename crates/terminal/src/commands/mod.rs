//! One module per command group of `softpos-terminal`.

pub mod kernel;
pub mod output;
