//! Tests of `dukpt_aes`.
