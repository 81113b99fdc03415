#pragma once
/// @file executor.hpp
/// @brief Run-time choice of backend. An Executor is created once and passed explicitly.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace vsense {

enum class Backend { cpu, cuda };

/// @brief Owns the resources of one backend (device id, stream, library handles).
class Executor {
public:
  virtual ~Executor() = default;
  virtual Backend backend() const noexcept = 0;
  /// Blocks until all work queued on this executor has finished.
  virtual void synchronize() const = 0;
  /// Human-readable description ("cpu (2 threads)", "cuda:0 NVIDIA H100 ...").
  virtual std::string description() const = 0;
};

class CpuExecutor final : public Executor {
public:
  Backend backend() const noexcept override { return Backend::cpu; }
  void synchronize() const override {}
  std::string description() const override;
  /// Host memory this process can still allocate, in bytes: MemAvailable of /proc/meminfo,
  /// lowered to what is left under a cgroup memory limit (a Slurm job's allocation, a
  /// container's); 0 when neither can be read.
  std::size_t free_bytes() const;
};

/// @brief CUDA device executor. Defined in kernels/cuda (or throws NotCompiled from the stub).
class CudaExecutor final : public Executor {
public:
  /// @throws NotCompiled when built without CUDA, DeviceUnavailable when no device works.
  static std::shared_ptr<CudaExecutor> create(int device_id = 0);
  /// Number of usable CUDA devices; 0 on any CUDA error (no driver, no device) or without CUDA.
  static int device_count() noexcept;
  /// True when this build contains the CUDA backend.
  static bool compiled() noexcept;

  ~CudaExecutor() override;
  Backend backend() const noexcept override { return Backend::cuda; }
  void synchronize() const override;
  std::string description() const override;
  int device_id() const noexcept { return device_id_; }
  /// Free device memory now, in bytes (cudaMemGetInfo).
  std::size_t free_bytes() const;
  /// The cudaStream_t this executor queues work on (as an opaque pointer).
  void* stream() const noexcept { return stream_; }

private:
  explicit CudaExecutor(int device_id);
  int device_id_ = 0;
  void* stream_ = nullptr;
};

/// @brief Executor from a spec: "cpu", "cuda", "cuda:N" or "auto" (the GPU when one is usable,
/// else the CPU).
/// @throws InputError for an unknown spec; NotCompiled/DeviceUnavailable for "cuda".
std::shared_ptr<Executor> make_executor(std::string_view spec);

}  // namespace vsense
