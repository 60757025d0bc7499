//! When the mask changes and by how much: every `interval` steps until `end` (a fraction of all
//! steps), with an update fraction that decays from `initial` to zero on a cosine, as in RigL
//! and DSL:
//!
//! ```text
//! fraction(t) = initial / 2 * (1 + cos(pi * t / T_end))      for t < T_end, a multiple of ΔT
//! ```

/// The prune-and-regrow schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// Steps between two updates (ΔT).
    pub interval: u64,
    /// Last step at which the mask may change (T_end).
    pub end: u64,
    /// Fraction of the budget moved by the first update.
    pub initial: f64,
}

impl Schedule {
    /// A schedule over `total` steps: updates every `interval` steps up to `end_fraction` of
    /// them, starting from fraction `initial`.
    pub fn new(total: u64, interval: u64, end_fraction: f64, initial: f64) -> Self {
        Schedule {
            interval: interval.max(1),
            end: ((total as f64) * end_fraction.clamp(0.0, 1.0)).round() as u64,
            initial,
        }
    }

    /// Whether the mask is updated after step `step` (1-based count of steps taken).
    pub fn updates_after(&self, step: u64) -> bool {
        step > 0 && step < self.end && step.is_multiple_of(self.interval)
    }

    /// How many updates the schedule makes: one after every multiple of `interval` below `end`.
    pub fn update_count(&self) -> usize {
        (self.end.saturating_sub(1) / self.interval) as usize
    }

    /// The update fraction after step `step`.
    pub fn fraction(&self, step: u64) -> f64 {
        if step >= self.end || self.end == 0 {
            return 0.0;
        }
        let x = step as f64 / self.end as f64;
        self.initial / 2.0 * (1.0 + (std::f64::consts::PI * x).cos())
    }

    /// Whether the gradient of step `step` (1-based) is needed for the next update: every step
    /// for accumulated regrowth, only the last one before an update for last-batch regrowth.
    pub fn gradient_needed(&self, step: u64, accumulated: bool) -> bool {
        if step >= self.end {
            return false;
        }
        accumulated || self.updates_after(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_decay_from_the_initial_fraction() {
        let s = Schedule::new(1000, 100, 0.8, 0.5);
        assert_eq!(s.end, 800);
        assert!((s.fraction(0) - 0.5).abs() < 1e-12);
        assert!((s.fraction(400) - 0.25).abs() < 1e-12);
        assert_eq!(s.fraction(800), 0.0);
        assert!(s.fraction(700) < s.fraction(100));
    }

    #[test]
    fn updates_every_interval_until_the_end() {
        let s = Schedule::new(1000, 100, 0.8, 0.5);
        let steps: Vec<u64> = (0..1000).filter(|&t| s.updates_after(t)).collect();
        assert_eq!(steps, vec![100, 200, 300, 400, 500, 600, 700]);
        assert!(s.gradient_needed(150, true));
        assert!(!s.gradient_needed(150, false));
        assert!(s.gradient_needed(200, false));
        assert!(!s.gradient_needed(900, true));
    }

    #[test]
    fn update_count_matches_updates_after() {
        for (total, interval, end) in [
            (100, 10, 0.75),
            (100, 25, 0.75),
            (100, 7, 1.0),
            (5, 10, 0.75),
        ] {
            let schedule = Schedule::new(total, interval, end, 0.5);
            let counted = (1..=total).filter(|&s| schedule.updates_after(s)).count();
            assert_eq!(schedule.update_count(), counted, "{total} {interval} {end}");
        }
    }
}
