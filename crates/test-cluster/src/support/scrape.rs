//! Reading one sample from a Prometheus text exposition.

/// The value of the sample line `sample` (metric name with its labels exactly as exposed, e.g.
/// `requests_total{result="ok"}`) in `text`. `None` when no such line is there, so that a metric
/// that was never scraped or never written cannot pass for a zero.
pub fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(sample)?;
        // The sample name must end here: `a_total` must not match `a_total_created`.
        if !value.starts_with(' ') {
            return None;
        }
        value.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x_total X.\nx_total{r=\"a\"} 3\nx_total_created 17\nleader 0\n";

    #[test]
    fn reads_a_sample_and_tells_a_missing_one_from_zero() {
        assert_eq!(metric(TEXT, "x_total{r=\"a\"}"), Some(3.0));
        assert_eq!(metric(TEXT, "leader"), Some(0.0));
        assert_eq!(metric(TEXT, "x_total{r=\"b\"}"), None);
        assert_eq!(
            metric(TEXT, "x_total"),
            None,
            "a prefix of another name is no match"
        );
        assert_eq!(metric("", "leader"), None);
    }
}
