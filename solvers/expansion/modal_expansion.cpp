// Modal expansion with re-derivation for the live channels (see reconstruction.hpp).
#include <cblas.h>
#include <fmt/format.h>

#include <Eigen/Dense>
#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <limits>

#include "vsense/kernels/errors.hpp"
#include "vsense/solvers/reconstruction.hpp"

namespace vsense::solvers::reconstruction {

namespace {
constexpr std::size_t kCacheSize = 64;

/// C [rows, n] = A [rows, k] (leading dimension lda) B [k, n], all row-major.
void gemm_row_major(std::size_t rows, std::size_t n, std::size_t k, const double* a,
                    std::size_t lda, const double* b, double* c) {
  if (rows == 0 || n == 0) return;
  if (k == 0) {
    std::fill(c, c + rows * n, 0.0);
    return;
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows),
              static_cast<int>(n), static_cast<int>(k), 1.0, a, static_cast<int>(lda), b,
              static_cast<int>(n), 0.0, c, static_cast<int>(n));
}
}  // namespace

ModalExpansion::ModalExpansion(std::vector<double> channel_matrix, std::size_t n_channels,
                               std::size_t n_modes, ExpansionOptions options)
    : a_(std::move(channel_matrix)), n_channels_(n_channels), n_modes_(n_modes), options_(options) {
  if (n_channels == 0 || n_modes == 0 || a_.size() != n_channels * n_modes) {
    throw InputError(fmt::format("modal expansion: the channel matrix has {} values, expected {} "
                                 "channels x {} modes",
                                 a_.size(), n_channels, n_modes));
  }
  for (const double v : a_) {
    if (!std::isfinite(v)) throw InputError("modal expansion: the channel matrix is not finite");
  }
  if (!(options_.regularisation >= 0.0) || !std::isfinite(options_.regularisation)) {
    throw InputError(fmt::format("modal expansion: regularisation must be >= 0, got {}",
                                 options_.regularisation));
  }
  double frobenius2 = 0.0;
  for (const double v : a_) frobenius2 += v * v;
  gamma_ = options_.regularisation * options_.regularisation * frobenius2 /
           static_cast<double>(n_modes_);
  all_live_.assign(n_channels_, 1);
}

ExpansionOperator ModalExpansion::derive(const std::uint8_t* mask) const {
  ExpansionOperator op;
  for (std::size_t c = 0; c < n_channels_; ++c) {
    if (mask[c]) op.live.push_back(static_cast<std::uint32_t>(c));
  }
  const std::size_t n_live = op.live.size(), m = n_modes_;
  op.matrix.assign(n_live * m, 0.0);
  if (n_live == 0) {
    op.condition = std::numeric_limits<double>::infinity();
    return op;
  }
  Eigen::MatrixXd a(static_cast<Eigen::Index>(n_live), static_cast<Eigen::Index>(m));
  for (std::size_t i = 0; i < n_live; ++i) {
    for (std::size_t k = 0; k < m; ++k) a(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k)) = a_[op.live[i] * m + k];
  }
  Eigen::BDCSVD<Eigen::MatrixXd> svd(a, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::VectorXd& s = svd.singularValues();
  const double s_max = s.size() > 0 ? s(0) : 0.0;
  const double s_min = (n_live >= m && s.size() > 0) ? s(s.size() - 1) : 0.0;
  op.condition = s_min > 0.0 ? s_max / s_min : std::numeric_limits<double>::infinity();
  op.observable = s_max > 0.0 && (gamma_ > 0.0 || op.condition <= options_.condition_limit);
  if (!op.observable) return op;
  // matrix = (A_l^+)^T = U diag(s / (s^2 + gamma)) V^T  [n_live, m]
  Eigen::VectorXd w(s.size());
  for (Eigen::Index i = 0; i < s.size(); ++i) {
    w(i) = s(i) > 0.0 ? s(i) / (s(i) * s(i) + gamma_) : 0.0;
  }
  const Eigen::MatrixXd e = svd.matrixU() * w.asDiagonal() * svd.matrixV().transpose();
  for (std::size_t i = 0; i < n_live; ++i) {
    for (std::size_t k = 0; k < m; ++k) op.matrix[i * m + k] = e(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k));
  }
  const Eigen::MatrixXd covariance =
      svd.matrixV() * w.array().square().matrix().asDiagonal() * svd.matrixV().transpose();
  op.covariance.resize(m * m);
  for (std::size_t a = 0; a < m; ++a) {
    for (std::size_t b = 0; b < m; ++b) {
      op.covariance[a * m + b] = covariance(static_cast<Eigen::Index>(a), static_cast<Eigen::Index>(b));
    }
  }
  return op;
}

const ExpansionOperator& ModalExpansion::get(const std::uint8_t* mask) {
  std::vector<std::uint8_t> key(mask, mask + n_channels_);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  if (cache_.size() >= kCacheSize) {
    // Forget the oldest, but never the full set (the common case).
    for (auto order = cache_order_.begin(); order != cache_order_.end(); ++order) {
      if (*order != all_live_) {
        cache_.erase(*order);
        cache_order_.erase(order);
        break;
      }
    }
  }
  cache_order_.push_back(key);
  return cache_.emplace(std::move(key), derive(mask)).first->second;
}

void ModalExpansion::expand(const double* y, std::size_t n, double* q_acc,
                            std::uint8_t* observable, std::uint32_t* live_count,
                            double* residual_sq, std::uint32_t* residual_dof) {
  const std::size_t nc = n_channels_, m = n_modes_;
  std::vector<std::uint8_t> mask(nc);
  std::size_t row = 0;
  while (row < n) {
    for (std::size_t c = 0; c < nc; ++c) mask[c] = std::isfinite(y[row * nc + c]) ? 1 : 0;
    // The run of rows with the same live set.
    std::size_t end = row + 1;
    for (; end < n; ++end) {
      bool same = true;
      for (std::size_t c = 0; c < nc && same; ++c) {
        same = (std::isfinite(y[end * nc + c]) ? 1 : 0) == mask[c];
      }
      if (!same) break;
    }
    const ExpansionOperator& op = get(mask.data());
    const std::size_t rows = end - row, n_live = op.live.size();
    std::fill(observable + row, observable + end, op.observable ? 1 : 0);
    if (live_count) std::fill(live_count + row, live_count + end, static_cast<std::uint32_t>(n_live));
    // The live channels' samples [rows, n_live] (the rows of y themselves when all are live).
    const double* live_y = y + row * nc;
    if (op.observable && n_live != nc) {
      gathered_.resize(rows * n_live);
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t i = 0; i < n_live; ++i) {
          gathered_[r * n_live + i] = y[(row + r) * nc + op.live[i]];
        }
      }
      live_y = gathered_.data();
    }
    if (!op.observable) {
      std::fill(q_acc + row * m, q_acc + end * m, 0.0);
    } else {
      gemm_row_major(rows, m, n_live, live_y, n_live, op.matrix.data(), q_acc + row * m);
    }
    if (residual_sq) {
      const bool fitted = op.observable && n_live > m;
      if (fitted) {
        // fitted = q''^ A_l^T: [rows, n_live]
        if (a_live_.size() != n_live * m || a_live_key_ != op.live) {
          a_live_.resize(m * n_live);
          for (std::size_t i = 0; i < n_live; ++i) {
            for (std::size_t k = 0; k < m; ++k) a_live_[k * n_live + i] = a_[op.live[i] * m + k];
          }
          a_live_key_ = op.live;
        }
        fitted_.resize(rows * n_live);
        gemm_row_major(rows, n_live, m, q_acc + row * m, m, a_live_.data(), fitted_.data());
      }
      for (std::size_t r = 0; r < rows; ++r) {
        double sum = 0.0;
        if (fitted) {
          for (std::size_t i = 0; i < n_live; ++i) {
            const double d = live_y[r * n_live + i] - fitted_[r * n_live + i];
            sum += d * d;
          }
        }
        residual_sq[row + r] = sum;
        if (residual_dof) residual_dof[row + r] = fitted ? static_cast<std::uint32_t>(n_live - m) : 0;
      }
    }
    row = end;
  }
}

}  // namespace vsense::solvers::reconstruction
