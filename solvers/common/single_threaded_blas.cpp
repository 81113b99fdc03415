#include "single_threaded_blas.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

#include "vsense/kernels/blas_runtime.hpp"

namespace vsense::solvers {

SingleThreadedBlas::SingleThreadedBlas() : previous_(blas_threads()) {
  if (previous_ > 1) set_blas_threads(1);
}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (previous_ > 1) set_blas_threads(previous_);
}

int max_threads() noexcept {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

int thread_id() noexcept {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace vsense::solvers
