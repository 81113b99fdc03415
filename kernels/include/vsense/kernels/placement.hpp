#pragma once
/// @file placement.hpp
/// @brief Candidate scoring for sensor placement: the GEMM-shaped work of every greedy step.
///
/// Each candidate i is a triaxial node with a block Phi_i (3 x m: rows x, y, z; columns the
/// modes). One scoring pass multiplies all blocks by a small right matrix R = [R1 | R2]
/// (m x (k1 + k2)), P_i = Phi_i R (one GEMM over [3 n, m] data), and reduces each candidate's
/// 3 x (k1 + k2) product to two symmetric 3 x 3 Grams
///   S_i = P_i[:, 0:k1] P_i[:, 0:k1]^T,   T_i = P_i[:, k1:k1+k2] P_i[:, k1:k1+k2]^T,
/// from which a scalar score is taken (see BlockScore). With R1 = L^-T (Q = L L^T) and
/// R2 = Q^-1 C (G = C C^T), S_i = Phi_i Q^-1 Phi_i^T and T_i = Phi_i Q^-1 G Q^-1 Phi_i^T: the
/// terms of the block Woodbury update of Q^-1 and of the matrix determinant lemma.
///
/// Correlated prediction error (optional): with sensor errors correlated between nodes as
/// sigma^2 exp(-d/lambda) (per direction, directions independent), a new node j adds the
/// information r_j^T r_j / s_j, with r_j = Phi_j - sum_a beta_ja Phi_a over the selected nodes a,
/// beta_j = C_S^-1 c_j, c_ja = exp(-d_ja / lambda), s_j = 1 - c_j^T C_S^-1 c_j (conditional
/// Gaussian / Schur complement). The scorer applies this to P_i before the Grams, so
/// every score stays exact. Shapes are stated next to each array.
///
/// Backends: the CUDA scorer is here (kernels/cuda, stub in kernels/cuda_stub). The CPU
/// reference calls the host BLAS, which only vsense_solvers links, so it lives in
/// solvers/placement/scoring_cpu.cpp (vsense/solvers/placement_scoring.hpp) together with the
/// dispatch over backends; both share the 3 x 3 algebra of placement_scores.hpp.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "vsense/kernels/executor.hpp"

namespace vsense::kernels {

/// The scalar taken from a candidate's (S_i, T_i).
enum class BlockScore : int {
  log_det_plus = 0,  ///< log det(I3 + S): D-optimal gain (matrix determinant lemma)
  trace_ratio = 1,   ///< tr((I3 + S)^-1 T): decrease of tr(Q^-1 G) when the node is added
  efi_removal = 2,   ///< 1 - det(I3 - S): fraction of det Q lost when the node is removed
  trace = 3,         ///< tr(S)
};

/// The best candidate of a pass: largest score, lowest global index among equal scores.
struct BestCandidate {
  double score = 0.0;
  std::int64_t index = -1;  ///< global candidate index; -1 when no candidate was eligible
};

/// Keeps the better of two (larger score; on equal scores the lower index). Used for the
/// reduction over chunks, threads, partitions and ranks, so that the result does not depend
/// on how candidates are split.
inline BestCandidate better(const BestCandidate& a, const BestCandidate& b) noexcept {
  if (a.index < 0) return b;
  if (b.index < 0) return a;
  if (a.score > b.score) return a;
  if (b.score > a.score) return b;
  return a.index < b.index ? a : b;
}

/// Correlated prediction error of the selected sensors (all host arrays, small).
struct ErrorCorrelation {
  double length = 0.0;                       ///< lambda, model length units (> 0)
  std::size_t n_selected = 0;                ///< |S|
  const double* selected_coordinates = nullptr;  ///< [n_selected, 3]
  const double* selected_inverse = nullptr;      ///< [n_selected, n_selected] C_S^-1
  const double* selected_products = nullptr;     ///< [n_selected, 3, k1 + k2] Phi_a R
};

/// One scoring pass.
struct ScoreRequest {
  const double* right = nullptr;  ///< host, [m, k1 + k2] row-major: R = [R1 | R2]
  std::size_t k1 = 0;             ///< columns of R1 (>= 1)
  std::size_t k2 = 0;             ///< columns of R2 (0 unless the score uses T)
  BlockScore score = BlockScore::log_det_plus;
  const ErrorCorrelation* correlation = nullptr;  ///< null: uncorrelated errors
};

/// @brief Candidate blocks resident on one executor, scored chunk by chunk.
///
/// Holds the candidates [offset, offset + n) of a larger global list (one rank's or one
/// partition's share). Chunks start at fixed multiples of `chunk` from the global origin,
/// so a candidate's score is bit-identical however the global list is partitioned (as long
/// as partitions start at multiples of `chunk`).
class BlockScorer {
public:
  virtual ~BlockScorer() = default;
  /// @brief Scores every candidate with eligible[i] != 0.
  /// @param[in] eligible host, [n] 1 = may be chosen; others score -inf (and are not reported)
  /// @param[out] scores host, [n] every candidate's score (ineligible: -inf), or null
  /// @return the best eligible candidate (global index), index -1 if none
  virtual BestCandidate score(const ScoreRequest& request, const std::uint8_t* eligible,
                              double* scores) = 0;
  std::size_t size() const noexcept { return n_; }
  std::size_t offset() const noexcept { return offset_; }
  std::size_t n_modes() const noexcept { return m_; }

protected:
  BlockScorer(std::size_t offset, std::size_t n, std::size_t m) : offset_(offset), n_(n), m_(m) {}
  std::size_t offset_, n_, m_;
};

namespace cuda {
/// @brief CUDA scorer (cuBLAS dgemm per chunk, one warp per candidate for the Grams, device
/// argmax).
/// @param[in] offset global index of the first candidate held
/// @param[in] blocks host, [n, 3, m] row-major; uploaded once (not borrowed)
/// @param[in] coordinates host, [n, 3] (correlated error model); uploaded once
/// @param[in] chunk candidates per GEMM (a multiple of it must start every partition)
/// @throws DeviceResourceError when the blocks do not fit in device memory.
std::unique_ptr<BlockScorer> make_block_scorer(const CudaExecutor& exec, std::size_t offset,
                                               std::size_t n, std::size_t m,
                                               const double* blocks, const double* coordinates,
                                               std::size_t chunk);
}  // namespace cuda

}  // namespace vsense::kernels
