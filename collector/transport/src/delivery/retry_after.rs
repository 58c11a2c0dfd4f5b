//! `Retry-After` (RFC 9110 §10.2.3): either delta-seconds or an HTTP-date. A date is turned into
//! a delay against the caller's clock; a date in the past means "now". Clamping to
//! [`super::MAX_RETRY_AFTER`] happens where the delay is used, in [`super::Delivery::decide`].

use std::time::{Duration, SystemTime};

/// The delay a `Retry-After` value asks for at `now`, or `None` when the value is neither
/// form (the sender then uses its own backoff).
#[must_use]
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // A number too large for u64 is still "a very long time".
        return Some(Duration::from_secs(v.parse().unwrap_or(u64::MAX)));
    }
    // IMF-fixdate, and the obsolete RFC 850 and asctime forms recipients must accept.
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    /// Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
    fn example() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(parse("120", example()), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 ", example()), Some(Duration::ZERO));
        assert_eq!(
            parse("99999999999999999999999", example()),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn all_three_date_forms_give_the_delay_from_now() {
        let now = example() - Duration::from_secs(90);
        for v in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse(v, now), Some(Duration::from_secs(90)), "{v}");
        }
    }

    #[test]
    fn a_date_in_the_past_means_now() {
        let now = example() + Duration::from_secs(5);
        assert_eq!(
            parse("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_is_ignored() {
        for v in ["", "-5", "1.5", "soon", "Sun, 32 Nov 1994 08:49:37 GMT"] {
            assert_eq!(parse(v, example()), None, "{v}");
        }
    }
}
