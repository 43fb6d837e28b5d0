//! One module per command group of `softpos-terminal`, plus the shared output layer
//! ([`output`]) and store/error helpers ([`common`]).

pub mod common;
pub mod device;
pub mod fleet;
pub mod init;
pub mod kernel;
pub mod kernel_update;
pub mod output;
pub mod pay;
pub mod sales;
pub mod virtual_reader;
