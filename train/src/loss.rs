//! The training losses: BPR on inner products, and three losses on cosine scores with many
//! negatives shared by a batch (see `docs/TRAINING.md`, *Losses*).
//!
//! For the cosine losses a user `u` and an item `v` score `s = û · v̂` (`x̂ = x / |x|`). A
//! batch of `B` (user, positive item) pairs shares `N` negatives drawn uniformly from all
//! items, so the `B x N` negative scores are one matrix product. Per pair, with positive
//! score `s⁺` and negative scores `s_1 .. s_N`:
//!
//! ```text
//! ssm (sampled softmax, InfoNCE):  -s⁺/τ + ln( e^{s⁺/τ} + Σ_j e^{s_j/τ} )
//! bsl (bilateral softmax, Wu et al. 2023, as a power γ on the negative term):
//!                                  -s⁺/τ + γ ln( Σ_j e^{s_j/τ} )
//! ccl (SimpleX's cosine contrastive loss, Mao et al. 2021):
//!                                  (1 - s⁺) + w/N Σ_j max(0, s_j - m)
//! ```
//!
//! [`LossConfig::pair`] returns a pair's loss and its derivatives in `s⁺` and in every `s_j`;
//! the step ([`crate::model::Mf::step_contrastive`]) carries them back through the products
//! and the normalisation.

/// Which loss trains the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// Bayesian personalised ranking on inner products, one negative per triple.
    Bpr,
    /// Sampled softmax (InfoNCE) on cosine scores.
    Ssm,
    /// Bilateral softmax: the softmax with its negative term raised to a power.
    Bsl,
    /// Cosine contrastive loss with a margin.
    Ccl,
}

impl LossKind {
    /// Parses `bpr`, `ssm`, `bsl` or `ccl`.
    pub fn from_name(name: &str) -> Option<LossKind> {
        match name {
            "bpr" => Some(LossKind::Bpr),
            "ssm" | "softmax" | "infonce" => Some(LossKind::Ssm),
            "bsl" => Some(LossKind::Bsl),
            "ccl" => Some(LossKind::Ccl),
            _ => None,
        }
    }

    /// The name [`LossKind::from_name`] reads.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Bpr => "bpr",
            LossKind::Ssm => "ssm",
            LossKind::Bsl => "bsl",
            LossKind::Ccl => "ccl",
        }
    }

    /// Whether the model scores by cosine (every loss but BPR): the trained rows are
    /// normalised before they are written, so the files score by inner product.
    pub fn is_cosine(self) -> bool {
        self != LossKind::Bpr
    }
}

/// A loss and its settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossConfig {
    /// The loss.
    pub kind: LossKind,
    /// Negatives shared by each batch (cosine losses).
    pub negatives: usize,
    /// Temperature `τ` of `ssm` and `bsl`.
    pub temperature: f32,
    /// Power `γ` of `bsl`'s negative term (1: the softmax without the positive in its
    /// denominator).
    pub power: f32,
    /// Margin `m` of `ccl`.
    pub margin: f32,
    /// Weight `w` of `ccl`'s negative term.
    pub negative_weight: f32,
}

impl LossConfig {
    /// BPR (the other fields are unused).
    pub const BPR: LossConfig = LossConfig {
        kind: LossKind::Bpr,
        negatives: 1,
        temperature: 1.0,
        power: 1.0,
        margin: 0.0,
        negative_weight: 1.0,
    };

    /// The softmax's temperature and the power of its negative term, as a softmax fold-in
    /// reads them: `(τ, γ)` for BSL, `(τ, 1)` for SSM (and the unused fields for others).
    pub fn softmax_temperature_power(&self) -> (f32, f32) {
        let power = if self.kind == LossKind::Bsl {
            self.power
        } else {
            1.0
        };
        (self.temperature, power)
    }

    /// `kind` with its default settings (see `docs/TRAINING.md`).
    pub fn defaults(kind: LossKind) -> LossConfig {
        match kind {
            LossKind::Bpr => LossConfig::BPR,
            LossKind::Ssm | LossKind::Bsl => LossConfig {
                kind,
                negatives: 512,
                temperature: 0.1,
                power: if kind == LossKind::Bsl { 1.2 } else { 1.0 },
                ..LossConfig::BPR
            },
            LossKind::Ccl => LossConfig {
                kind,
                negatives: 512,
                margin: 0.9,
                negative_weight: 150.0,
                ..LossConfig::BPR
            },
        }
    }

    /// Checks the settings; the message names the flag.
    pub fn check(&self) -> Result<(), String> {
        if self.kind == LossKind::Bpr {
            return Ok(());
        }
        if !(1..=65_536).contains(&self.negatives) {
            return Err(format!(
                "--negatives must be between 1 and 65536, got {}",
                self.negatives
            ));
        }
        let positive = |x: f32| x > 0.0 && x.is_finite();
        match self.kind {
            LossKind::Ssm | LossKind::Bsl if !positive(self.temperature) => Err(format!(
                "--temperature must be positive, got {}",
                self.temperature
            )),
            LossKind::Bsl if !positive(self.power) => {
                Err(format!("--bsl-power must be positive, got {}", self.power))
            }
            LossKind::Ccl if !(-1.0..=1.0).contains(&self.margin) => {
                Err(format!("--margin must be in [-1, 1], got {}", self.margin))
            }
            LossKind::Ccl if !(self.negative_weight >= 0.0 && self.negative_weight.is_finite()) => {
                Err(format!(
                    "--negative-weight must be >= 0, got {}",
                    self.negative_weight
                ))
            }
            _ => Ok(()),
        }
    }

    /// One pair's loss for positive score `pos` and negative scores `scores`; returns the
    /// loss and its derivative in `pos`, and overwrites each score with the loss's derivative
    /// in it. BPR has no such form (`(0, 0)` and the scores zeroed).
    pub fn pair(&self, pos: f32, scores: &mut [f32]) -> (f32, f32) {
        match self.kind {
            LossKind::Bpr => {
                scores.fill(0.0);
                (0.0, 0.0)
            }
            LossKind::Ssm => {
                let inv = 1.0 / self.temperature;
                let zp = pos * inv;
                let max = scores.iter().fold(zp, |m, &s| m.max(s * inv));
                let ep = (zp - max).exp();
                let mut sum = ep;
                for s in scores.iter_mut() {
                    *s = (*s * inv - max).exp();
                    sum += *s;
                }
                let scale = inv / sum;
                for s in scores.iter_mut() {
                    *s *= scale;
                }
                (max + sum.ln() - zp, (ep / sum - 1.0) * inv)
            }
            LossKind::Bsl => {
                let inv = 1.0 / self.temperature;
                let max = scores
                    .iter()
                    .fold(f32::NEG_INFINITY, |m, &s| m.max(s * inv));
                let mut sum = 0.0f32;
                for s in scores.iter_mut() {
                    *s = (*s * inv - max).exp();
                    sum += *s;
                }
                let scale = self.power * inv / sum;
                for s in scores.iter_mut() {
                    *s *= scale;
                }
                (self.power * (max + sum.ln()) - pos * inv, -inv)
            }
            LossKind::Ccl => {
                let w = self.negative_weight / scores.len() as f32;
                let mut loss = 1.0 - pos;
                for s in scores.iter_mut() {
                    let over = *s - self.margin;
                    if over > 0.0 {
                        loss += w * over;
                        *s = w;
                    } else {
                        *s = 0.0;
                    }
                }
                (loss, -1.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loss in f64 straight from the formulas of the module docs.
    fn reference(c: &LossConfig, pos: f64, neg: &[f64]) -> f64 {
        let t = f64::from(c.temperature);
        match c.kind {
            LossKind::Bpr => 0.0,
            LossKind::Ssm => {
                -pos / t + ((pos / t).exp() + neg.iter().map(|s| (s / t).exp()).sum::<f64>()).ln()
            }
            LossKind::Bsl => {
                -pos / t + f64::from(c.power) * neg.iter().map(|s| (s / t).exp()).sum::<f64>().ln()
            }
            LossKind::Ccl => {
                let w = f64::from(c.negative_weight) / neg.len() as f64;
                1.0 - pos
                    + w * neg
                        .iter()
                        .map(|s| (s - f64::from(c.margin)).max(0.0))
                        .sum::<f64>()
            }
        }
    }

    #[test]
    fn pair_gradients_match_finite_differences() {
        let negatives = [0.3f32, -0.2, 0.95, 0.1, 0.91, -0.7];
        for kind in [LossKind::Ssm, LossKind::Bsl, LossKind::Ccl] {
            let c = LossConfig {
                temperature: 0.2,
                power: 1.3,
                negative_weight: 3.0,
                ..LossConfig::defaults(kind)
            };
            let pos = 0.6f32;
            let mut grads = negatives;
            let (loss, gp) = c.pair(pos, &mut grads);
            let neg64: Vec<f64> = negatives.iter().map(|&s| f64::from(s)).collect();
            let want = reference(&c, f64::from(pos), &neg64);
            assert!(
                (f64::from(loss) - want).abs() < 1e-4,
                "{kind:?}: {loss} vs {want}"
            );
            let h = 1e-4;
            let fd = (reference(&c, f64::from(pos) + h, &neg64)
                - reference(&c, f64::from(pos) - h, &neg64))
                / (2.0 * h);
            assert!(
                (f64::from(gp) - fd).abs() < 1e-3,
                "{kind:?} d/ds+: {gp} vs {fd}"
            );
            for j in 0..negatives.len() {
                let mut up = neg64.clone();
                let mut down = neg64.clone();
                up[j] += h;
                down[j] -= h;
                let fd = (reference(&c, f64::from(pos), &up)
                    - reference(&c, f64::from(pos), &down))
                    / (2.0 * h);
                assert!(
                    (f64::from(grads[j]) - fd).abs() < 1e-3,
                    "{kind:?} d/ds_{j}: {} vs {fd}",
                    grads[j]
                );
            }
        }
    }

    #[test]
    fn softmax_is_stable_at_low_temperature() {
        let c = LossConfig {
            temperature: 1e-3,
            ..LossConfig::defaults(LossKind::Ssm)
        };
        let mut scores = [1.0f32, -1.0, 0.999];
        let (loss, gp) = c.pair(0.5, &mut scores);
        assert!(loss.is_finite() && gp.is_finite() && scores.iter().all(|s| s.is_finite()));
        assert!(loss > 400.0, "the positive is far below a negative: {loss}");
    }

    #[test]
    fn names_round_trip_and_bad_settings_are_refused() {
        for kind in [LossKind::Bpr, LossKind::Ssm, LossKind::Bsl, LossKind::Ccl] {
            assert_eq!(LossKind::from_name(kind.name()), Some(kind));
            assert!(LossConfig::defaults(kind).check().is_ok());
        }
        let bad = LossConfig {
            temperature: 0.0,
            ..LossConfig::defaults(LossKind::Ssm)
        };
        assert!(bad.check().unwrap_err().contains("--temperature"));
        let bad = LossConfig {
            negatives: 0,
            ..LossConfig::defaults(LossKind::Ccl)
        };
        assert!(bad.check().unwrap_err().contains("--negatives"));
    }
}
