#include "single_threaded_blas.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

// OpenBLAS's thread control, when the BLAS is OpenBLAS (weak: absent with another BLAS).
extern "C" {
void openblas_set_num_threads(int) __attribute__((weak));
int openblas_get_num_threads(void) __attribute__((weak));
}

namespace vsense::solvers {

SingleThreadedBlas::SingleThreadedBlas() {
  if (openblas_get_num_threads && openblas_set_num_threads) {
    previous_ = openblas_get_num_threads();
    if (previous_ > 1) openblas_set_num_threads(1);
  }
}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (previous_ > 1) openblas_set_num_threads(previous_);
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
