//! The fleet's bounds: loopback servers only, and a ceiling on devices, rate and duration, so a
//! mistyped option cannot turn the simulator into a flood against somebody's server.

use std::net::IpAddr;

use reqwest::Url;

/// Most virtual devices in one run.
pub const MAX_DEVICES: u32 = 10_000;
/// Highest offered rate, payments per second.
pub const MAX_RATE: f64 = 100_000.0;
/// Longest paced phase, seconds.
pub const MAX_DURATION_SECS: f64 = 3_600.0;

/// Accepts `http(s)://` URLs whose host is a loopback address or `localhost`.
///
/// # Errors
/// A message saying why the URL is refused.
pub fn loopback_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|error| format!("{text:?} is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?}: only http and https are supported"));
    }
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!(
            "{text:?}: the fleet simulator only drives a server on this machine (127.0.0.1, ::1 or localhost)"
        ));
    }
    Ok(url)
}

/// Checks the run's size.
///
/// # Errors
/// A message naming the option out of range.
pub fn check_bounds(
    devices: u32,
    rate: f64,
    duration_secs: f64,
    compromised_share: f64,
) -> Result<(), String> {
    if !(1..=MAX_DEVICES).contains(&devices) {
        return Err(format!("--devices must be 1 to {MAX_DEVICES}"));
    }
    if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
        return Err(format!("--rate must be above 0 and at most {MAX_RATE}"));
    }
    if !(duration_secs.is_finite() && duration_secs > 0.0 && duration_secs <= MAX_DURATION_SECS) {
        return Err(format!(
            "--duration must be above 0 and at most {MAX_DURATION_SECS} seconds"
        ));
    }
    if !(0.0..=1.0).contains(&compromised_share) {
        return Err("--compromised-share must be 0 to 1".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_servers() {
        for ok in [
            "http://127.0.0.1:8080",
            "https://localhost/",
            "http://[::1]:9",
        ] {
            assert!(loopback_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "ftp://127.0.0.1",
            "127.0.0.1:80",
        ] {
            assert!(loopback_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_are_bounded() {
        assert!(check_bounds(5, 10.0, 3.0, 0.2).is_ok());
        assert!(
            check_bounds(0, 10.0, 3.0, 0.0)
                .unwrap_err()
                .contains("--devices")
        );
        assert!(check_bounds(10_001, 10.0, 3.0, 0.0).is_err());
        assert!(
            check_bounds(5, 0.0, 3.0, 0.0)
                .unwrap_err()
                .contains("--rate")
        );
        assert!(check_bounds(5, f64::NAN, 3.0, 0.0).is_err());
        assert!(
            check_bounds(5, 1.0, 3_601.0, 0.0)
                .unwrap_err()
                .contains("--duration")
        );
        assert!(
            check_bounds(5, 1.0, 1.0, 1.5)
                .unwrap_err()
                .contains("--compromised-share")
        );
    }
}
