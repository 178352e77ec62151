//! Summaries of raw samples.

/// The median of `samples` (the mean of the two middle values for an even count); None when empty.
pub fn median(samples: &[u64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid] as f64
    } else {
        (sorted[mid - 1] as f64 + sorted[mid] as f64) / 2.0
    })
}

/// The median of microsecond samples, in milliseconds.
pub fn median_ms(micros: &[u64]) -> Option<f64> {
    median(micros).map(|us| us / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_nothing_is_none() {
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn median_of_odd_count_is_the_middle_value() {
        assert_eq!(median(&[7]), Some(7.0));
        assert_eq!(median(&[9, 1, 5]), Some(5.0));
        assert_eq!(median(&[3, 3, 1, 100, 2]), Some(3.0));
    }

    #[test]
    fn median_of_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4, 1]), Some(2.5));
        assert_eq!(median(&[10, 40, 20, 30]), Some(25.0));
    }

    #[test]
    fn median_does_not_overflow() {
        assert_eq!(median(&[u64::MAX, u64::MAX]), Some(u64::MAX as f64));
    }

    #[test]
    fn median_ms_converts_microseconds() {
        assert_eq!(median_ms(&[1500, 2500, 1000]), Some(1.5));
    }
}
