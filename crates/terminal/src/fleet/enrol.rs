//! Client addresses for the registration of virtual devices.
//!
//! The server caps registrations per client address (120 an hour), which a fleet of hundreds
//! of devices on one machine would hit at once. Behind a trusted proxy the server reads the
//! address from `X-Forwarded-For` (`TRUST_FORWARDED_FOR=true`), so the fleet gives each
//! virtual device its own address from the benchmarking range 198.18.0.0/15 (RFC 2544) and
//! registers it with the library's client carrying that header (`Client::with_header`).

/// The benchmarking address of virtual device `index` (198.18.0.1 onwards).
#[must_use]
pub fn benchmark_address(index: u32) -> String {
    let n = index + 1;
    format!(
        "198.{}.{}.{}",
        18 + (n >> 16) % 2,
        (n >> 8) & 0xff,
        n & 0xff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_in_the_benchmarking_range() {
        assert_eq!(benchmark_address(0), "198.18.0.1");
        assert_eq!(benchmark_address(255), "198.18.1.0");
        assert_eq!(benchmark_address(65_535), "198.19.0.0");
        let all: std::collections::BTreeSet<_> = (0..10_000).map(benchmark_address).collect();
        assert_eq!(all.len(), 10_000);
    }
}
