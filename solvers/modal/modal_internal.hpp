#pragma once
// Internal pieces of the CPU modal solvers (not a public header): the shift-invert operators on
// sparse factors of K - sigma M, the block Lanczos iteration, and the checks shared by the
// single-vector (Spectra) and the block solvers.
#include <Eigen/Dense>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vsense/io/modes_file.hpp"
#include "vsense/kernels/block_ops.hpp"
#include "vsense/kernels/executor.hpp"
#include "vsense/kernels/supernodal.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/model.hpp"
#include "vsense/solvers/modal.hpp"
#include "vsense/solvers/modal_analysis.hpp"

struct cholmod_common_struct;
struct cholmod_factor_struct;
struct cholmod_dense_struct;

namespace vsense::solvers::detail {

using model::SparseMatrix;

double seconds_since(std::chrono::steady_clock::time_point start);

/// "sigma = -39.48 (rad/s)^2 = -(2 pi * 1 Hz)^2" for messages.
std::string describe_shift(double sigma);

/// The automatic negative shift (see modal.cpp for the reasoning).
double automatic_shift(const SparseMatrix& stiffness, const SparseMatrix& mass);

/// y = M x for a block: mass is a lower triangle.
/// x, y: [n, ncols] column-major, leading dimension n.
void mass_product(const SparseMatrix& mass, const double* x, double* y, Eigen::Index ncols);

/// y = A x for blocks of vectors and a symmetric sparse A (K or M), fast: A is held as both
/// triangles in compressed rows and the block is streamed row-major, so that each stored entry
/// updates a contiguous row of the block (vectorised), instead of the scattered updates of a
/// lower-triangle product.
class SymmetricProduct {
public:
  explicit SymmetricProduct(const SparseMatrix& lower);
  Eigen::Index rows() const { return full_.rows(); }
  /// x, y: [n, ncols] column-major, leading dimension n (they must not alias).
  void apply(const double* x, double* y, Eigen::Index ncols) const;

private:
  Eigen::SparseMatrix<double, Eigen::RowMajor, std::int64_t> full_;
  mutable std::vector<double> x_rows_, y_rows_;  // [n, ncols] row-major work blocks
};

/// y = (K - sigma M)^{-1} x for blocks of right-hand sides, through one sparse factorisation.
class ShiftInvert {
public:
  virtual ~ShiftInvert() = default;
  virtual Eigen::Index rows() const = 0;
  virtual double sigma() const = 0;
  /// in, out: [n, ncols] column-major, leading dimension n (they must not alias).
  virtual void solve(const double* in, double* out, Eigen::Index ncols) const = 0;
  virtual double factor_seconds() const = 0;
  virtual std::int64_t factor_nonzeros() const = 0;
  /// > 0 when the pencil was singular and the factor regularised (solves are refined).
  virtual double regularisation() const { return 0.0; }
};

/// Supernodal CHOLMOD LL^T of K - sigma M (sigma below the spectrum: positive definite). A
/// singular pencil (K and M sharing null vectors) is factorised as K - sigma M + delta I with
/// every solve refined against the true matrix.
class CholmodShiftInvert final : public ShiftInvert {
public:
  /// @param ordering "auto" (CHOLMOD's default choice), "amd", "metis" or "nesdis"
  CholmodShiftInvert(const SparseMatrix& stiffness, const SparseMatrix& mass, double sigma,
                     const std::string& ordering = "auto");
  ~CholmodShiftInvert() override;
  CholmodShiftInvert(const CholmodShiftInvert&) = delete;
  CholmodShiftInvert& operator=(const CholmodShiftInvert&) = delete;

  Eigen::Index rows() const override { return shifted_.rows(); }
  double sigma() const override { return sigma_; }
  void solve(const double* in, double* out, Eigen::Index ncols) const override;
  double factor_seconds() const override { return factor_seconds_; }
  std::int64_t factor_nonzeros() const override { return factor_nonzeros_; }
  double regularisation() const override { return regularisation_; }
  /// The fill-reducing permutation CHOLMOD chose: [n], row i of the factor is row perm[i] of A.
  const std::vector<std::int64_t>& permutation() const { return permutation_; }
  /// The supernodal LL^T factor in place (host memory owned by this object), for a copy on a
  /// device. @throws Error when CHOLMOD did not keep it supernodal LL^T.
  kernels::SupernodalFactorView supernodal_view() const;

private:
  bool try_factorise(SparseMatrix& target);
  void raw_solve(const double* in, double* out, Eigen::Index ncols) const;

  SparseMatrix shifted_;  // A = K - sigma M, lower triangle; CHOLMOD reads it in place
  double sigma_;
  std::unique_ptr<cholmod_common_struct> common_;
  cholmod_factor_struct* factor_ = nullptr;
  mutable cholmod_dense_struct* x_ = nullptr;
  mutable cholmod_dense_struct* y_workspace_ = nullptr;
  mutable cholmod_dense_struct* e_workspace_ = nullptr;
  // The solves on all BLAS threads (subtrees of the elimination tree at once) when there are
  // several; CHOLMOD's own solve otherwise.
  std::unique_ptr<kernels::SupernodalSchedule> schedule_;
  std::unique_ptr<kernels::cpu::ThreadedSupernodalSolver> threaded_;
  double factor_seconds_ = 0.0;
  std::int64_t factor_nonzeros_ = 0;
  double regularisation_ = 0.0;
  std::vector<std::int64_t> permutation_;
};

/// MUMPS LDL^T (symmetric indefinite, sequential) of K - sigma M for any sigma: the operator of
/// an interior shift, whose inertia is the Sturm count at sigma for free.
class MumpsShiftInvert final : public ShiftInvert {
public:
  /// @param ordering optional fill-reducing order [n] (pivot k is equation ordering[k])
  MumpsShiftInvert(const SparseMatrix& stiffness, const SparseMatrix& mass, double sigma,
                   const std::vector<std::int64_t>* ordering = nullptr);
  ~MumpsShiftInvert() override;
  MumpsShiftInvert(const MumpsShiftInvert&) = delete;
  MumpsShiftInvert& operator=(const MumpsShiftInvert&) = delete;

  Eigen::Index rows() const override;
  double sigma() const override;
  void solve(const double* in, double* out, Eigen::Index ncols) const override;
  double factor_seconds() const override;
  std::int64_t factor_nonzeros() const override;
  /// Eigenvalues strictly below sigma (negative pivots).
  std::int64_t count_below() const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

/// What the block iteration selects.
enum class Wanted {
  largest,    ///< the largest nu = 1/(lambda - sigma): lowest lambda above a shift below them
  magnitude,  ///< the largest |nu|: the lambda nearest an interior shift
};

struct BlockLanczosSettings {
  int n_wanted = 10;
  int block_size = 8;
  int basis_size = 0;  ///< processed columns before a restart; 0 = automatic
  double tolerance = 1e-12;
  int max_restarts = 1000;
  Wanted wanted = Wanted::largest;
  std::uint64_t seed = 1;
  const char* pass = "main";  ///< for logs and messages
  /// Known M-orthonormal vectors [n, f] to keep out of the search space (deflation), and M
  /// times them, in the memory of the iteration's ops; f = 0 (the default) for none.
  kernels::BlockView deflate{}, mass_deflate{};
  /// M times the basis: kept whole (no M-product beyond one per pass), or for the two latest
  /// blocks only (half the basis memory, one more M-product per block); automatic: whole when
  /// the basis and M times it take at most half the free host memory (always on a device).
  enum class MassBasis { automatic, whole, latest_blocks } mass_basis = MassBasis::automatic;
};

/// Where the block iteration's vectors live (host memory for the CPU, device memory for CUDA)
/// and the two operators on them.
struct IterationSpace {
  kernels::BlockOps* ops = nullptr;
  Eigen::Index n = 0;
  double sigma = 0.0;
  /// out = (K - sigma M)^{-1} in. in, out: [n, ncols], leading dimension n, in the ops' memory
  /// (they must not alias).
  std::function<void(const double* in, double* out, Eigen::Index ncols)> solve;
  /// out = M in, likewise.
  std::function<void(const double* in, double* out, Eigen::Index ncols)> mass;
};

/// The host iteration space of a CPU factor and mass product (`ops` is host BlockOps).
IterationSpace host_space(const ShiftInvert& op, const SymmetricProduct& mass,
                          kernels::BlockOps& ops);

struct BlockLanczosPairs {
  Eigen::VectorXd eigenvalues;  ///< [k] lambda, in the order selected (nearest the shift first)
  Eigen::MatrixXd vectors;      ///< [n, k] M-orthonormal
  int restarts = 0;
  std::int64_t solves = 0;       ///< right-hand sides solved with the factor
  std::int64_t blocks = 0;       ///< blocks M-orthonormalised against the basis
  std::int64_t basis_passes = 0;  ///< Gram-Schmidt passes over the whole basis for them
  bool whole_mass_basis = true;   ///< M times the whole basis was kept (else the latest blocks)
  double operator_seconds = 0.0;        ///< in the factor solves
  double orthogonalisation_seconds = 0.0;  ///< M-products, projections, intra-block QR
  double ritz_seconds = 0.0;               ///< projected eigenproblems, restarts
};

/// Block shift-invert Lanczos with full M-reorthogonalisation (block classical Gram-Schmidt
/// against the coupled blocks, then once or twice against the whole basis, then an eigen-based
/// intra-block orthonormalisation, BLAS-3), thick restart in
/// Krylov-Schur form and locking of converged pairs.
/// @throws NumericalError when the wanted pairs do not converge in max_restarts restarts.
BlockLanczosPairs block_lanczos(const IterationSpace& space, const BlockLanczosSettings& settings);
/// The same on the host.
BlockLanczosPairs block_lanczos(const ShiftInvert& op, const SymmetricProduct& mass,
                                const BlockLanczosSettings& settings);

/// Checks and post-processing shared by the solvers (modal.cpp).
void check_request(const SparseMatrix& stiffness, const SparseMatrix& mass,
                   const ModalOptions& options);
void finish_result(const SparseMatrix& stiffness, const SparseMatrix& mass, double sigma,
                   const ModalOptions& options, ModalResult& result);
void solve_all_modes_dense(const SparseMatrix& stiffness, const SparseMatrix& mass,
                           ModalResult& result);
constexpr std::int64_t dense_all_modes_limit = 4000;

/// The single-vector Spectra path (lanczos.cpp).
ModalResult solve_lowest_modes_lanczos(const SparseMatrix& stiffness, const SparseMatrix& mass,
                                       const ModalOptions& options, double sigma);
/// Block settings for a request of nev pairs on n equations (block size and basis shrunk for
/// tiny models).
BlockLanczosSettings block_settings(Eigen::Index n, int nev, const ModalOptions& options);
/// The automatic basis size of a block iteration for nev pairs in blocks of b.
Eigen::Index default_basis_size(Eigen::Index nev, Eigen::Index b);
/// Keeps the lowest `count` pairs, ascending.
void keep_lowest(BlockLanczosPairs& pairs, Eigen::Index count);
void add_counters(BlockLanczosPairs& total, const BlockLanczosPairs& pass);
/// Spectrum slicing (slicing.cpp): ModalOptions::upper requests and requests larger than a
/// slice.
ModalResult solve_modes_sliced(const SparseMatrix& stiffness, const SparseMatrix& mass,
                               const ModalOptions& options, double sigma);
/// The dense path on an executor's backend (dense_device.cpp): the lowest options.n_modes
/// pairs of the densified pencil, checked by finish_result like the sparse paths.
ModalResult solve_lowest_modes_dense(const Executor& exec, const SparseMatrix& stiffness,
                                     const SparseMatrix& mass, const ModalOptions& options);
/// The block iteration on `space` (whose operator is `factor`'s, on the host or copied to a
/// device), the repeated-eigenvalue check, and finish_result's checks on the host: the part of
/// the block path after the factorisation.
ModalResult block_modes(const IterationSpace& space, const CholmodShiftInvert& factor,
                        const SparseMatrix& stiffness, const SparseMatrix& mass,
                        const ModalOptions& options, const BlockLanczosSettings& settings);
/// block_modes on the host: the CPU block path once `factor` is built.
ModalResult block_modes_on_host(const CholmodShiftInvert& factor,
                                const SymmetricProduct& mass_product,
                                const SparseMatrix& stiffness, const SparseMatrix& mass,
                                const ModalOptions& options, const BlockLanczosSettings& settings);
/// The block path on a CUDA device (block_device.cpp): CHOLMOD factorises on the host, the
/// factor is copied to the device and solved there (or, when it does not fit or was
/// regularised, solved on the host for device blocks); basis, orthogonalisation, M-products
/// and restarts run on the device; the checks of finish_result on the host. With fmax_hz > 0
/// the request doubles (same factor) until a mode lies above fmax_hz. `where` receives what
/// ran where, for the report.
ModalResult solve_lowest_modes_block_device(const std::shared_ptr<const CudaExecutor>& exec,
                                            const SparseMatrix& stiffness,
                                            const SparseMatrix& mass, const ModalOptions& options,
                                            double sigma, double fmax_hz, std::string& where);
/// The block path (block_lanczos.cpp).
ModalResult solve_lowest_modes_block(const SparseMatrix& stiffness, const SparseMatrix& mass,
                                     const ModalOptions& options, double sigma);

/// The modes a modal analysis returns: with fmax_hz, those at or below it (InputError when none
/// is); every flexible one must meet options.max_residual (NumericalError names the first that
/// does not). Returns their count.
int accepted_modes(const ModalResult& result, const ModalAnalysisOptions& options);

/// The modes-file contents for the first m modes of `result`: shapes on all nodes, nodal modal
/// stresses (timed into rep.stress_seconds), mesh and node sets. With a CUDA `device` the
/// stresses are one sparse product S Phi there; without, each mode's recovery on the CPU.
io::ModesData modes_data(const model::Model& model, const model::DofMap& dofs,
                         const ModalResult& result, int m, ModalAnalysisReport& rep,
                         const Executor* device = nullptr);

}  // namespace vsense::solvers::detail
