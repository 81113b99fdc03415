#pragma once
/// @file sturm.hpp
/// @brief Sturm-sequence count: how many eigenvalues of K x = lambda M x lie below a shift.
#include <cstdint>
#include <functional>
#include <vector>

#include "vsense/model/assembly.hpp"

namespace vsense::solvers {

struct SturmCount {
  std::int64_t below = 0;  ///< eigenvalues strictly below sigma
  double sigma = 0.0;      ///< the shift used, (rad/s)^2
  double seconds = 0.0;
};

/// @brief Counts the eigenvalues below `sigma` from the inertia of K - sigma M (Sylvester's law
/// of inertia): the number of negative pivots of its LDL^T factorisation (MUMPS multifrontal
/// symmetric-indefinite LDL^T with pivoting, sequential).
/// @param[in] stiffness, mass lower triangles
/// @param[in] ordering optional fill-reducing order [n] (pivot k is equation ordering[k]), e.g.
///            ModalResult::ordering; nullptr: MUMPS orders by itself
/// @throws NumericalError when a zero pivot makes the count undefined (sigma on an eigenvalue:
///         move it slightly).
SturmCount sturm_count(const model::SparseMatrix& stiffness, const model::SparseMatrix& mass,
                       double sigma, const std::vector<std::int64_t>* ordering = nullptr);

/// @brief Proof that no eigenvalue is missing below the returned ones: the Sturm count just below
/// the highest returned cluster must equal the number of returned eigenvalues below that point.
/// (Counting just *below* the top means a request that cuts through a repeated eigenvalue is not
/// mistaken for a missed mode.)
/// @param[in] eigenvalues the returned eigenvalues, ascending, (rad/s)^2
/// @return the count that was checked
/// @throws NumericalError naming the frequency range and both counts when a mode is missing.
SturmCount check_completeness(const model::SparseMatrix& stiffness,
                              const model::SparseMatrix& mass, const double* eigenvalues,
                              std::int64_t n_eigenvalues,
                              const std::vector<std::int64_t>* ordering = nullptr);

/// @brief As above with any way of counting: `count_below(sigma)` returns the eigenvalues below
/// sigma and throws NumericalError when sigma lies on an eigenvalue (the check then moves it).
/// The distributed backend counts with its own factorisation through this.
SturmCount check_completeness(const double* eigenvalues, std::int64_t n_eigenvalues,
                              const std::function<SturmCount(double sigma)>& count_below);

}  // namespace vsense::solvers
