//! Tests of `dukpt_tdes`.
