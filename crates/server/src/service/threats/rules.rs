//! The behaviour rules as pure functions over stored observations: decline streaks,
//! velocity, impossible location jumps. No I/O, no clock.

use crate::domain::UnixMillis;
use crate::service::health::policy::LocationJumpRule;
use crate::service::ports::GeoPoint;

/// Mean Earth radius, km (IUGG mean radius R1 = 6371.0088 km, rounded as usual).
pub const EARTH_RADIUS_KM: f64 = 6371.0;

/// Great-circle distance by the haversine formula, km.
pub fn haversine_km(a: GeoPoint, b: GeoPoint) -> f64 {
    let (lat1, lat2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let d_lat = lat2 - lat1;
    let d_lon = (b.longitude - a.longitude).to_radians();
    let h = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Whether a point is on Earth.
pub fn valid_point(point: GeoPoint) -> bool {
    point.latitude.is_finite()
        && point.longitude.is_finite()
        && (-90.0..=90.0).contains(&point.latitude)
        && (-180.0..=180.0).contains(&point.longitude)
        && point.accuracy_m.is_none_or(|m| m.is_finite() && m >= 0.0)
}

/// Consecutive declines at the head of `outcomes` (newest first, `true` = approved).
pub fn decline_streak(outcomes: &[bool]) -> usize {
    outcomes.iter().take_while(|approved| !**approved).count()
}

/// The streak rule fires once, when the streak reaches `max` (not again while it grows).
pub fn decline_streak_fires(streak: usize, max: u32) -> bool {
    usize::try_from(max).is_ok_and(|max| streak == max)
}

/// More than `max` transactions in the window.
pub fn velocity_exceeded(count: i64, max: u32) -> bool {
    count > i64::from(max)
}

/// What a location jump looked like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jump {
    /// Distance, km.
    pub distance_km: f64,
    /// Elapsed time, seconds.
    pub elapsed_secs: f64,
    /// Implied speed, km/h (infinite for no elapsed time).
    pub speed_kmh: f64,
}

/// The jump from `previous` (at `previous_at`) to `current` (at `at`) when it is further
/// than `min_distance_km` and faster than `max_speed_kmh`.
pub fn impossible_jump(
    rule: &LocationJumpRule,
    previous: GeoPoint,
    previous_at: UnixMillis,
    current: GeoPoint,
    at: UnixMillis,
) -> Option<Jump> {
    let distance_km = haversine_km(previous, current);
    if distance_km < rule.min_distance_km {
        return None;
    }
    #[allow(clippy::cast_precision_loss)] // milliseconds fit f64 exactly far beyond any date
    let elapsed_secs = ((at - previous_at).max(0) as f64) / 1000.0;
    let speed_kmh = if elapsed_secs > 0.0 {
        distance_km / (elapsed_secs / 3600.0)
    } else {
        f64::INFINITY
    };
    (speed_kmh > rule.max_speed_kmh).then_some(Jump {
        distance_km,
        elapsed_secs,
        speed_kmh,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ports::Severity;

    fn point(latitude: f64, longitude: f64) -> GeoPoint {
        GeoPoint {
            latitude,
            longitude,
            accuracy_m: None,
        }
    }

    fn rule() -> LocationJumpRule {
        LocationJumpRule {
            enabled: true,
            max_speed_kmh: 900.0,
            min_distance_km: 50.0,
            severity: Severity::High,
        }
    }

    #[test]
    fn haversine_known_distances() {
        // One degree of longitude on the equator is 2πR/360 = 111.194927 km for R = 6371 km.
        let one_degree = haversine_km(point(0.0, 0.0), point(0.0, 1.0));
        assert!((one_degree - 111.194_927).abs() < 1e-5, "{one_degree}");
        // Pole to pole: πR.
        let poles = haversine_km(point(90.0, 0.0), point(-90.0, 0.0));
        assert!((poles - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
        // Paris (48.8566 N, 2.3522 E) to London (51.5074 N, 0.1278 W): 343.56 km,
        // the figure the usual great-circle calculators give for R = 6371 km.
        let paris_london = haversine_km(point(48.8566, 2.3522), point(51.5074, -0.1278));
        assert!((paris_london - 343.56).abs() < 0.01, "{paris_london}");
        assert!(haversine_km(point(10.0, 10.0), point(10.0, 10.0)).abs() < 1e-9);
    }

    #[test]
    fn location_jump_rule() {
        let paris = point(48.8566, 2.3522);
        let london = point(51.5074, -0.1278);
        let hour = 3_600_000;
        // 343 km in 10 minutes (~2060 km/h): impossible.
        let jump = impossible_jump(&rule(), paris, 0, london, hour / 6).unwrap();
        assert!(
            jump.speed_kmh > 2000.0 && jump.speed_kmh < 2100.0,
            "{jump:?}"
        );
        // The same trip in an hour (343 km/h): possible.
        assert_eq!(impossible_jump(&rule(), paris, 0, london, hour), None);
        // 30 km in one second is below the minimum distance: GPS noise, not a jump.
        let near = point(48.8566, 2.3522 + 30.0 / 73.0);
        assert_eq!(impossible_jump(&rule(), paris, 0, near, 1000), None);
        // Same instant, far apart: infinite speed.
        assert!(
            impossible_jump(&rule(), paris, 5, london, 5)
                .unwrap()
                .speed_kmh
                .is_infinite()
        );
    }

    #[test]
    fn decline_streaks() {
        assert_eq!(decline_streak(&[]), 0);
        assert_eq!(decline_streak(&[true, false, false]), 0);
        assert_eq!(decline_streak(&[false, false, true, false]), 2);
        assert!(decline_streak_fires(5, 5));
        assert!(!decline_streak_fires(4, 5));
        assert!(!decline_streak_fires(6, 5));
    }

    #[test]
    fn velocity_and_points() {
        assert!(!velocity_exceeded(30, 30));
        assert!(velocity_exceeded(31, 30));
        assert!(valid_point(point(-90.0, 180.0)));
        assert!(!valid_point(point(90.1, 0.0)));
        assert!(!valid_point(point(0.0, f64::NAN)));
    }
}
