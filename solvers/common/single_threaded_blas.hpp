#pragma once
// Internal to vsense_solvers: makes the host BLAS single-threaded while OpenMP threads each run
// their own small dgemm (placement scoring, stress recovery).
namespace vsense::solvers {

/// Makes the host BLAS single-threaded for its lifetime (OpenBLAS only; a no-op with another
/// BLAS), so that OpenMP threads can each run their own dgemm: mixing OpenBLAS's thread pool and
/// OpenMP's in turn makes each spin while the other works (measured on placement scoring: a pass
/// took 1.4x the dgemm time).
class SingleThreadedBlas {
public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

private:
  int previous_ = 0;
};

/// OpenMP's thread count and id (1 and 0 without OpenMP).
int max_threads() noexcept;
int thread_id() noexcept;

}  // namespace vsense::solvers
