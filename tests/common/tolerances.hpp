#pragma once
/// @file tolerances.hpp
/// @brief The tolerances of the modal checks against CalculiX and closed-form results, in one
/// place, each with the reason for its value. Tests print actual vs these.
///
/// The comparison with CalculiX is of two programs solving the *same* discrete problem (same
/// elements, integration and mass matrices by contract), so the bounds come from what limits
/// the reference's accuracy, not from discretisation error:
/// - ccx's eigenvalues are read in full double precision from its .eig file, but ARPACK stops
///   at a tolerance of 1e-2 on the Ritz residual with a shift of 1 (rad/s)^2; measured on the
///   test models, eigenvalues move by < 1e-14 (restrained) and < 1e-7 (free-free, where the
///   shift-inverted operator is dominated by the rigid-body modes) between 12 and 60 requested
///   modes.
/// - ccx writes shapes and stresses with 6 significant digits (E12.5): a rounding error of
///   5e-6 of each value, so of at most 5e-6 of the mode's peak.
namespace vsense::test::tolerance {

/// Relative error of each compared natural frequency. 1e-6 is ~50x above the worst ccx
/// eigenvalue error seen on the free-free model (2e-8 in frequency), and loose enough for an
/// iterative eigensolver converged to ~1e-10 residual; a real formulation difference (e.g. a
/// different mass matrix or integration rule) shows up at 1e-4 and above.
inline constexpr double frequency_rel = 1e-6;

/// Modal assurance criterion for non-repeated modes. Shapes rounded to 6 digits lose about
/// 1e-10 of MAC; a shape that is truly different (e.g. two modes swapped) has MAC well below
/// 0.99. 0.9999 allows eigenvector error ~ residual / relative gap of 1e-2 at gaps of 1e-2.
inline constexpr double mac_min = 0.9999;

/// Repeated (degenerate) eigenvalues: the eigenvectors are arbitrary within their subspace, so
/// the subspaces are compared instead: every principal angle's cos^2 must reach this (the
/// subspace analogue of MAC, same reasoning).
inline constexpr double subspace_cos2_min = 0.9999;

/// Modes whose reference eigenvalues are closer than this (relative) are compared as one
/// subspace. Eigenvectors are determined only to ~ (eigensolver error) / (relative gap): with
/// relative errors around 1e-8 a gap of 1e-4 still fixes the vectors to 1e-4.
inline constexpr double degenerate_rel_gap = 1e-4;

/// Nodal stresses, max |sigma_vsense - sigma_ccx| over nodes and components, relative to the
/// mode's peak |sigma_ccx|: ccx's 6-digit output accounts for <= 5e-6; the remaining budget is
/// for eigenvector error. Extrapolation or averaging done differently shows up at >= 1e-2.
inline constexpr double stress_rel_peak = 1e-4;

/// Mode shape amplitude (after matching sign or subspace rotation), max |phi_vsense - phi_ccx|
/// relative to the mode's peak |phi_ccx|: checks mass normalisation as well as shape, same
/// budget as the stresses.
inline constexpr double shape_rel_peak = 1e-4;

/// A mode counts as rigid-body when its frequency is below this fraction of the first elastic
/// mode's; numerically, rigid-body eigenvalues of a double precision solve sit at
/// ~1e-14 * lambda_max, i.e. frequencies ~1e-7 of the elastic ones.
inline constexpr double rigid_body_frequency_ratio = 1e-3;

/// Total mass and centre of mass against the exact values of the generated models: the
/// geometry is exact (see tests/data/ccx/make_models.py) and every mass rule integrates it
/// exactly, so only summation round-off remains: ~1e-16 * sqrt(n_elements).
inline constexpr double mass_rel = 1e-12;

/// ccx prints masses and centres of gravity with 7 significant digits (E13.6): 5e-7 relative,
/// with margin. Centre-of-mass coordinates are compared relative to the model's size.
inline constexpr double ccx_printed_mass_rel = 1e-6;

// ---- closed-form references ---------------------------------------------------------------

/// Slender steel cantilever (L = 1 m, 0.02 m square section, L/h = 50), converged 3-D solid
/// against Euler-Bernoulli f_i = (beta_i L)^2 / (2 pi L^2) sqrt(EI / (rho A)). The 3-D model
/// differs from that beam for physical reasons, not discretisation:
/// - shear deformation and rotary inertia (Timoshenko, kappa = 10(1+nu)/(12+11nu)) lower the
///   frequencies by 0.031 % (mode 1) and 0.22 % (mode 2), from the clamped-free Timoshenko
///   frequency equation;
/// - the fully clamped root face (all three DOFs of every node) forbids Poisson contraction and
///   warping there, which stiffens by ~0.1 %: C3D20R at 20x4x4 gives +0.099 % / -0.086 %
///   (CalculiX 2.20), 0.12-0.13 % above Timoshenko for both modes.
/// The same root makes the stress field singular, so refining along the length converges at
/// first order only: C3D20R at 80x2x2 gives +0.100 % / -0.084 %, with changes halving at each
/// doubling (last one 0.03 %), i.e. ~0.03 % of discretisation error left.
/// 0.3 % covers these with margin and still catches a wrong density, modulus or mass matrix
/// (>= 1 %).
inline constexpr double beam_vs_euler_bernoulli = 3e-3;

/// C3D8 (full integration) locks in bending and converges slowly, at second order: its
/// Richardson extrapolation (4 f_{h/2} - f_h) / 3 is compared instead. From the 50x2x2 and
/// 100x4x4 meshes, still pre-asymptotic (observed ratio of successive changes 3.1-3.7 for the
/// ideal 4), it lands +0.58 % / +0.39 % from Euler-Bernoulli: allowed 1 %. From 100x4x4 and
/// 200x8x8 (the slow test) it lands +0.12 % / -0.07 %: allowed beam_vs_euler_bernoulli.
inline constexpr double beam_c3d8_extrapolated_coarse = 1e-2;

// ---- one computation done two ways (backends, operators) ----------------------------------

/// The nodal-stress operator S x against nodal_stress(x), and a CUDA sparse product against
/// the CPU's, max abs difference relative to the largest |value| of the same vector: both sum
/// the same products (a few dozen per entry, ~1e3 per node for 20-node elements) in different
/// orders, so they differ by a few hundred eps at worst; a wrong entry of S (a missing element,
/// a wrong divisor) shows up at 1e-3 and above.
inline constexpr double same_sum_rel = 1e-12;

/// Natural frequencies of the dense GPU solve against the CPU's sparse shift-invert solver:
/// both converge to a residual of ~1e-12 (eigenvalue error ~ residual^2 relative for well
/// separated modes, ~residual for the worst), so 1e-8 leaves margin and still catches a wrong
/// shift or normalisation (>= 1e-6).
inline constexpr double backend_frequency_rel = 1e-8;

/// MAC between the GPU and CPU shapes of the same mode (non-repeated): eigenvector error ~
/// residual / relative gap, ~1e-9 at gaps of 1e-3; a different mode gives MAC well below 0.9.
inline constexpr double backend_mac_min = 0.999999;

// ---- sparse Cholesky solves ---------------------------------------------------------------

/// Double precision unit roundoff (2^-52), spelled out to keep this header free of includes.
inline constexpr double double_epsilon = 0x1p-52;

/// Two solves of A x = b with the same Cholesky factor that sum in different orders (CHOLMOD,
/// the supernodal CPU reference, the GPU with atomics and cuBLAS blocking), as
/// ||x - x_ref||_2 / ||x_ref||_2: each is backward stable, so each has a forward error of at most
/// ~ c eps cond_2(A), with c growing like the root of the terms per dot product in practice
/// (<= 45 for the <= 2000 rows of a test supernode). 64 eps cond(A) covers that (measured
/// <= 7 eps against CHOLMOD at cond(A) ~ 500-900); a wrong supernode, level order or
/// permutation gives O(1).
inline constexpr double factor_solve_rel(double condition) {
  return 64.0 * double_epsilon * condition;
}

/// The normwise backward error ||A x - b||_inf / (||A||_inf ||x||_inf) of such a solve:
/// Cholesky's bound is (3n + 1) eps worst case, O(sqrt(terms) eps) in practice; measured
/// <= 4 eps on the test matrices. 64 eps leaves margin and still catches any real error.
inline constexpr double factor_solve_backward_error = 64.0 * double_epsilon;

}  // namespace vsense::test::tolerance
