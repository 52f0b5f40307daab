/**
 * Confidence sequences: bounds on an effect that hold at every look at once, so a test repeated at every tick keeps
 * its error rate however often it looks (a fixed-sample test checked every minute does not). An estimate θ̂ that is
 * asymptotically normal around θ with variance V behaves, as data accumulate, like Brownian motion in the information
 * 1/V; the one-sided normal mixture martingale over drifts θ' ~ half-normal(0, τ²) (Robbins 1970; the mixture SPRT
 * of Johari, Pekelis & Walsh 2017; Howard, Ramdas, McAuliffe & Sekhon 2021, §3) then crosses 1/α with probability at
 * most α over all looks (Ville's inequality). With z = (θ̂ − θ)/√V and r = τ²/V it is
 *
 *   M(z) = 2 / √(1 + r) · exp(z² r / (2(1 + r))) · Φ(z √(r / (1 + r))),
 *
 * and θ ≥ θ̂ − z*·√V holds at every look with probability ≥ 1 − α, z* solving M(z*) = 1/α (and symmetrically for
 * the upper bound). With V estimated, the guarantee is asymptotic (Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas 2021,
 * "Time-uniform central limit theory"), which is why a decision also waits for enough users. τ sets where the bound is
 * tightest: near V ≈ τ², i.e. for effects of about τ's size.
 */

import { normalCdf } from './delong';

/**
 * The multiple of √V by which each one-sided bound lies from the estimate: lower = θ̂ − m·√V, upper = θ̂ + m·√V.
 * Always larger than the fixed-sample quantile, growing like √(log(1/V)) as data accumulate.
 */
export function mixtureBoundMultiple(variance: number, alpha: number, tau: number): number {
  if (!(variance > 0) || !(alpha > 0 && alpha < 1) || !(tau > 0)) return NaN;
  const r = (tau * tau) / variance;
  const target = Math.log(1 / alpha);
  const c = Math.sqrt(r / (1 + r));
  // log M(z) − log(1/α), for z ≥ 0 (Φ ≥ ½ there, its logarithm well conditioned); increasing and convex in z.
  const excess = (z: number) =>
    Math.LN2 - 0.5 * Math.log1p(r) + (z * z * c * c) / 2 + Math.log(normalCdf(z * c)) - target;
  const slope = (z: number) =>
    z * c * c + (c * Math.exp((-z * z * c * c) / 2)) / (Math.sqrt(2 * Math.PI) * normalCdf(z * c));
  // Start from the root with Φ taken as 1 — never past the true one, which Φ < 1 pushes further out — then Newton.
  let z = Math.sqrt((2 / (c * c)) * Math.max(0, target - Math.LN2 + 0.5 * Math.log1p(r)));
  for (let i = 0; i < 20; i++) {
    const step = excess(z) / slope(z);
    z -= step;
    if (Math.abs(step) < 1e-12) break;
  }
  return z;
}

export interface ConfidenceBounds {
  lower: number;
  upper: number;
}

/** One-sided always-valid bounds of θ at level 1 − alpha each, from its estimate and (estimated) variance. */
export function mixtureBounds(estimate: number, variance: number, alpha: number, tau: number): ConfidenceBounds {
  const m = mixtureBoundMultiple(variance, alpha, tau);
  const half = m * Math.sqrt(variance);
  return { lower: estimate - half, upper: estimate + half };
}
