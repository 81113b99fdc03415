// CUDA stress recovery (kernels/include/vsense/kernels/stress_recovery.hpp): the modal stresses
// live on the device; per run of rows one cuBLAS dgemm per node tile writes sigma = q Psi^T
// into a device buffer, then one thread per node walks the rows in time order (von Mises
// maximum, equivalent stress, turning points with the rule shared with the CPU), and a scan
// compacts the turning points before they are copied to the host.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <fmt/format.h>
#include <thrust/device_ptr.h>
#include <thrust/execution_policy.h>
#include <thrust/scan.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../common/turning_points.hpp"
#include "../common/von_mises.hpp"
#include "check.cuh"
#include "device_buffer.cuh"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/stress_recovery.hpp"

namespace vsense::kernels::cuda {

namespace {

using cuda_detail::DeviceBuffer;

/// Rows per run: a run's turning points per node fit in a [n_nodes, kRunRows] buffer.
constexpr std::size_t kRunRows = 256;
/// Bytes of the stress buffer of one node tile ([kRunRows, 6 tile] doubles).
constexpr std::size_t kStressBufferBytes = std::size_t{1} << 30;
constexpr int kThreads = 128;

/// One thread per node of the tile [a, a + width): walks the run's rows in time order.
/// stress: [rows, ld] row-major, node a + jj at columns 6 jj .. 6 jj + 5.
__global__ void recover_kernel(const double* __restrict__ stress, int rows, std::size_t ld,
                               std::size_t a, std::size_t width, int kind,
                               const std::int64_t* __restrict__ samples,
                               RecoveryNodeState* __restrict__ state, double* __restrict__ turning,
                               std::int64_t* __restrict__ count, int stride) {
  const std::size_t jj = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (jj >= width) return;
  const std::size_t j = a + jj;
  RecoveryNodeState st = state[j];
  common::TurningState ts;
  ts.last = st.last;
  ts.direction = st.direction;
  ts.started = st.started;
  std::int64_t c = 0;
  double* out = turning + j * static_cast<std::size_t>(stride);
  for (int r = 0; r < rows; ++r) {
    const double* s = stress + static_cast<std::size_t>(r) * ld + 6 * jj;
    const double vm = common::von_mises(s);
    if (vm > st.vm_max || st.vm_sample < 0) {
      st.vm_max = vm;
      st.vm_sample = samples[r];
    }
    const double x = kind == common::kVonMises ? vm
                     : kind == common::kSignedVonMises ? ((s[0] + s[1] + s[2]) < 0.0 ? -vm : vm)
                                                       : common::max_principal(s);
    double t;
    if (common::turning_step(x, ts, &t)) out[c++] = t;
  }
  st.last = ts.last;
  st.direction = ts.direction;
  st.started = ts.started;
  state[j] = st;
  count[j] = c;
}

/// Node j's turning points to compact[offsets[j] ..].
__global__ void compact_kernel(const double* __restrict__ turning, int stride,
                               const std::int64_t* __restrict__ offsets, std::size_t n_nodes,
                               double* __restrict__ compact) {
  const std::size_t j = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n_nodes) return;
  const std::int64_t begin = offsets[j], n = offsets[j + 1] - begin;
  const double* src = turning + j * static_cast<std::size_t>(stride);
  for (std::int64_t i = 0; i < n; ++i) compact[begin + i] = src[i];
}

class CudaStressRecovery final : public StressRecoveryDevice {
public:
  CudaStressRecovery(const CudaExecutor& exec, const double* modal_stress, std::size_t n_nodes,
                     std::size_t n_modes, int kind)
      : exec_(exec), p_(n_nodes), m_(n_modes), kind_(kind) {
    VSENSE_CUDA_CHECK(cudaSetDevice(exec_.device_id()));
    stream_ = static_cast<cudaStream_t>(exec_.stream());
    VSENSE_CUBLAS_CHECK(cublasCreate(&handle_));
    VSENSE_CUBLAS_CHECK(cublasSetStream(handle_, stream_));
    psi_.reserve(p_ * 6 * m_);
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(psi_.get(), modal_stress, p_ * 6 * m_ * sizeof(double),
                                      cudaMemcpyHostToDevice, stream_));
    state_.reserve(p_);
    std::vector<RecoveryNodeState> initial(p_);
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(state_.get(), initial.data(), p_ * sizeof(RecoveryNodeState),
                                      cudaMemcpyHostToDevice, stream_));
    tile_ = std::max<std::size_t>(1, std::min(p_, kStressBufferBytes / (kRunRows * 6 * sizeof(double))));
    stress_.reserve(kRunRows * 6 * tile_);
    turning_.reserve(p_ * kRunRows);
    count_.reserve(p_ + 1);
    offsets_.reserve(p_ + 1);
    VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  ~CudaStressRecovery() override {
    if (handle_) cublasDestroy(handle_);
  }

  std::size_t n_nodes() const noexcept override { return p_; }

  void set_state(const std::vector<RecoveryNodeState>& state) override {
    if (state.size() != p_) throw Error("stress recovery: state of the wrong size");
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(state_.get(), state.data(), p_ * sizeof(RecoveryNodeState),
                                      cudaMemcpyHostToDevice, stream_));
    VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  std::vector<RecoveryNodeState> state() const override {
    std::vector<RecoveryNodeState> out(p_);
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(out.data(), state_.get(), p_ * sizeof(RecoveryNodeState),
                                      cudaMemcpyDeviceToHost, stream_));
    VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return out;
  }

  void process(const double* q, std::size_t n, const std::int64_t* samples,
               const TurningSink& sink) override {
    if (n == 0) return;
    VSENSE_CUDA_CHECK(cudaSetDevice(exec_.device_id()));
    double* q_device = q_.reserve(n * m_);
    std::int64_t* samples_device = samples_.reserve(n);
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(q_device, q, n * m_ * sizeof(double), cudaMemcpyHostToDevice, stream_));
    VSENSE_CUDA_CHECK(cudaMemcpyAsync(samples_device, samples, n * sizeof(std::int64_t),
                                      cudaMemcpyHostToDevice, stream_));
    std::vector<std::int64_t> offsets(p_ + 1);
    std::vector<double> values;
    const double one = 1.0, zero = 0.0;
    for (std::size_t r0 = 0; r0 < n; r0 += kRunRows) {
      const auto rows = static_cast<int>(std::min(kRunRows, n - r0));
      for (std::size_t a = 0; a < p_; a += tile_) {
        const std::size_t width = std::min(tile_, p_ - a);
        // Column-major view: S^T [6 width, rows] = Psi_tile^T ([m, 6 width]) ^T q^T ([m, rows]).
        VSENSE_CUBLAS_CHECK(cublasDgemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(6 * width),
                                        rows, static_cast<int>(m_), &one, psi_.get() + a * 6 * m_,
                                        static_cast<int>(m_), q_device + r0 * m_, static_cast<int>(m_),
                                        &zero, stress_.get(), static_cast<int>(6 * width)));
        const auto blocks = static_cast<unsigned>((width + kThreads - 1) / kThreads);
        recover_kernel<<<blocks, kThreads, 0, stream_>>>(stress_.get(), rows, 6 * width, a, width,
                                                         kind_, samples_device + r0, state_.get(),
                                                         turning_.get(), count_.get(),
                                                         static_cast<int>(kRunRows));
        VSENSE_CUDA_CHECK(cudaGetLastError());
      }
      // Offsets of the run's turning points by node, then the compacted values to the host.
      VSENSE_CUDA_CHECK(cudaMemsetAsync(count_.get() + p_, 0, sizeof(std::int64_t), stream_));
      thrust::exclusive_scan(thrust::cuda::par.on(stream_), thrust::device_pointer_cast(count_.get()),
                             thrust::device_pointer_cast(count_.get() + p_ + 1),
                             thrust::device_pointer_cast(offsets_.get()));
      VSENSE_CUDA_CHECK(cudaMemcpyAsync(offsets.data(), offsets_.get(), (p_ + 1) * sizeof(std::int64_t),
                                        cudaMemcpyDeviceToHost, stream_));
      VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream_));
      const auto total = static_cast<std::size_t>(offsets[p_]);
      values.resize(total);
      if (total > 0) {
        double* compact = compact_.reserve(total);
        const auto blocks = static_cast<unsigned>((p_ + kThreads - 1) / kThreads);
        compact_kernel<<<blocks, kThreads, 0, stream_>>>(turning_.get(), static_cast<int>(kRunRows),
                                                         offsets_.get(), p_, compact);
        VSENSE_CUDA_CHECK(cudaGetLastError());
        VSENSE_CUDA_CHECK(cudaMemcpyAsync(values.data(), compact, total * sizeof(double),
                                          cudaMemcpyDeviceToHost, stream_));
        VSENSE_CUDA_CHECK(cudaStreamSynchronize(stream_));
      }
      sink(offsets.data(), values.data());
    }
  }

private:
  const CudaExecutor& exec_;
  std::size_t p_, m_;
  int kind_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t handle_ = nullptr;
  std::size_t tile_ = 1;
  DeviceBuffer<double> psi_, stress_, turning_, compact_, q_;
  DeviceBuffer<std::int64_t> samples_, count_, offsets_;
  DeviceBuffer<RecoveryNodeState> state_;
};

}  // namespace

std::unique_ptr<StressRecoveryDevice> make_stress_recovery(const CudaExecutor& exec,
                                                           const double* modal_stress,
                                                           std::size_t n_nodes,
                                                           std::size_t n_modes,
                                                           int equivalent_kind) {
  if (n_nodes == 0 || n_modes == 0) throw InputError("stress recovery: no nodes or no modes");
  return std::make_unique<CudaStressRecovery>(exec, modal_stress, n_nodes, n_modes,
                                              equivalent_kind);
}

}  // namespace vsense::kernels::cuda
