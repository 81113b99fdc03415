// Reference for the modal benchmark: "the obvious library combination", Spectra's
// SymGEigsShiftSolver (shift-invert mode) on Eigen's CHOLMOD supernodal LLT of K - sigma M,
// run on matrices exported by `vsense model export`. Prints one JSON line with the times.
//
//   bench_spectra_cholmod DIR N_MODES [SIGMA]     (DIR holds K.mtx and M.mtx, lower triangles)
#include <Spectra/MatOp/SymShiftInvert.h>
#include <Spectra/MatOp/SparseSymMatProd.h>
#include <Spectra/SymGEigsShiftSolver.h>
#include <fmt/format.h>

#include <Eigen/CholmodSupport>
#include <Eigen/Sparse>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <unsupported/Eigen/SparseExtra>

#include "vsense/jobs/stage_support.hpp"
#include "vsense/kernels/blas_runtime.hpp"

namespace {

using SparseMatrix = Eigen::SparseMatrix<double, Eigen::ColMajor, long>;
using Clock = std::chrono::steady_clock;

using vsense::jobs::peak_memory_bytes;
using vsense::jobs::seconds_since;

/// y = (K - sigma M)^{-1} x with a CHOLMOD supernodal factor (the interface Spectra expects of
/// its shift-invert operator).
class CholmodShiftSolve {
public:
  using Scalar = double;
  CholmodShiftSolve(const SparseMatrix& k_lower, const SparseMatrix& m_lower)
      : k_(k_lower), m_(m_lower) {}
  Eigen::Index rows() const { return k_.rows(); }
  Eigen::Index cols() const { return k_.cols(); }
  void set_shift(double sigma) {
    SparseMatrix a = k_ - sigma * m_;
    factor_.compute(a);
    if (factor_.info() != Eigen::Success) {
      std::cerr << "bench_spectra_cholmod: factorisation failed\n";
      std::exit(3);
    }
  }
  void perform_op(const double* x_in, double* y_out) const {
    Eigen::Map<const Eigen::VectorXd> x(x_in, rows());
    Eigen::Map<Eigen::VectorXd> y(y_out, rows());
    y = factor_.solve(x);
  }

private:
  const SparseMatrix& k_;
  const SparseMatrix& m_;
  Eigen::CholmodSupernodalLLT<SparseMatrix, Eigen::Lower> factor_;
};

}  // namespace

int main(int argc, char** argv) {
  // The BLAS kernels vsense itself runs with (see vsense/kernels/blas_runtime.hpp).
  vsense::restart_with_faster_blas(argv);
  if (argc < 3) {
    std::cerr << "usage: bench_spectra_cholmod DIR N_MODES [SIGMA]\n";
    return 2;
  }
  const std::string dir = argv[1];
  const int n_modes = std::atoi(argv[2]);
  const double sigma = argc > 3 ? std::atof(argv[3]) : -39.47841760435743;  // -(2 pi 1 Hz)^2

  auto t = Clock::now();
  SparseMatrix k, m;
  if (!Eigen::loadMarket(k, dir + "/K.mtx") || !Eigen::loadMarket(m, dir + "/M.mtx")) {
    std::cerr << "bench_spectra_cholmod: cannot read " << dir << "/K.mtx or M.mtx\n";
    return 2;
  }
  // loadMarket keeps the stored (lower) triangle of a symmetric file.
  const double load_s = seconds_since(t);

  t = Clock::now();
  CholmodShiftSolve op(k, m);
  using BOp = Spectra::SparseSymMatProd<double, Eigen::Lower, Eigen::ColMajor, long>;
  BOp bop(m);
  const int ncv = std::min<Eigen::Index>(k.rows(), std::max(2 * n_modes + 1, n_modes + 20));
  Spectra::SymGEigsShiftSolver<CholmodShiftSolve, BOp, Spectra::GEigsMode::ShiftInvert> solver(
      op, bop, n_modes, ncv, sigma);
  solver.init();
  const Eigen::Index converged = solver.compute(Spectra::SortRule::LargestMagn, 1000, 1e-10);
  const double solve_s = seconds_since(t);
  if (solver.info() != Spectra::CompInfo::Successful) {
    std::cerr << "bench_spectra_cholmod: Spectra did not converge (" << converged << ")\n";
    return 4;
  }
  Eigen::VectorXd lambda = solver.eigenvalues().reverse();
  fmt::print(
      "{{\"reference\":\"spectra+cholmod\",\"n\":{},\"n_modes\":{},\"load_s\":{:.3f},"
      "\"solve_s\":{:.3f},\"lowest_hz\":{:.9g},\"highest_hz\":{:.9g},\"peak_memory_bytes\":{}}}\n",
      k.rows(), n_modes, load_s, solve_s,
      std::sqrt(std::max(0.0, lambda(0))) / (2 * M_PI),
      std::sqrt(std::max(0.0, lambda(lambda.size() - 1))) / (2 * M_PI), peak_memory_bytes());
  return 0;
}
