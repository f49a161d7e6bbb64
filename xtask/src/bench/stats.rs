//! Medians, extremes and ratio cells of the tables.

pub(super) fn ratio_cell(ratios: &[f64]) -> String {
    format!(
        "{:.3} [{:.2}-{:.2}]",
        median(ratios),
        min(ratios),
        max(ratios)
    )
}

pub(super) fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

pub(super) fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

pub(super) fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}
