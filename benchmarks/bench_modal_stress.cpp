// Modal stress recovery benchmark: the nodal stresses of M displacement fields (random, the
// cost does not depend on the values) three ways, measured in the same run:
//   1. per field, model::nodal_stress (the element routine on every element, then averaging),
//   2. building the sparse nodal-stress operator S once (model::nodal_stress_operator),
//   3. applying S to all fields at once (kernels::sparse_times_dense on the CPU, and with
//      --cuda also on CUDA device 0: cuSPARSE SpMM including the transfers),
//   4. model::nodal_stresses (each element's stress matrix once per panel of 32 fields, applied
//      to all of them: what `vsense modes` runs on the CPU).
// The best of --repeat runs is printed per step, with S's size and the largest difference
// between the ways relative to the largest stress.
//
// Usage: bench_modal_stress [--modes M] [--repeat N] [--cuda] MODEL.inp
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "vsense/kernels/blas_runtime.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/kernels/sparse.hpp"
#include "vsense/jobs/stage_support.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/inp_reader.hpp"

namespace {
using clock_type = std::chrono::steady_clock;
using vsense::jobs::seconds_since;
template <typename F>
double best_of(int repeat, F&& f) {
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < repeat; ++r) {
    const auto start = clock_type::now();
    f();
    best = std::min(best, seconds_since(start));
  }
  return best;
}
double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double peak = 0.0, difference = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    peak = std::max(peak, std::abs(b[i]));
    difference = std::max(difference, std::abs(a[i] - b[i]));
  }
  return peak > 0.0 ? difference / peak : difference;
}
}  // namespace

int main(int argc, char** argv) {
  vsense::restart_with_faster_blas(argv);  // as vsense does: nodal_stresses runs small GEMMs
  int n_modes = 50, repeat = 3;
  bool cuda = false;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--modes" && i + 1 < argc) {
      n_modes = std::atoi(argv[++i]);
    } else if (arg == "--repeat" && i + 1 < argc) {
      repeat = std::atoi(argv[++i]);
    } else if (arg == "--cuda") {
      cuda = true;
    } else {
      path = arg;
    }
  }
  if (path.empty() || n_modes < 1 || repeat < 1) {
    fmt::print(stderr, "usage: bench_modal_stress [--modes M] [--repeat N] [--cuda] MODEL.inp\n");
    return 2;
  }
  try {
    const auto model = vsense::model::read_inp(path);
    const auto dofs = vsense::model::build_dof_map(model);
    const std::size_t n_nodes = model.n_nodes(), n = static_cast<std::size_t>(dofs.n_equations);
    const auto m = static_cast<std::size_t>(n_modes);
    std::mt19937_64 random(1);
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    std::vector<double> x(n * m);  // [n, m] column-major
    for (auto& v : x) v = uniform(random);

    std::vector<double> direct(6 * n_nodes * m), field(3 * n_nodes);
    const double direct_s = best_of(repeat, [&] {
      for (std::size_t j = 0; j < m; ++j) {
        vsense::model::expand_to_nodes(dofs, x.data() + j * n, field.data());
        vsense::model::nodal_stress(model, field.data(), direct.data() + j * 6 * n_nodes);
      }
    });
    std::vector<double> fields(3 * n_nodes * m), panels(6 * n_nodes * m);
    for (std::size_t j = 0; j < m; ++j) {
      vsense::model::expand_to_nodes(dofs, x.data() + j * n, fields.data() + j * 3 * n_nodes);
    }
    const double panels_s = best_of(repeat, [&] {
      vsense::model::nodal_stresses(model, fields.data(), m, panels.data());
    });
    vsense::model::NodalStressOperator s;
    const double build_s = best_of(repeat, [&] { s = vsense::model::nodal_stress_operator(model, dofs); });
    std::vector<double> product(6 * n_nodes * m);
    const vsense::CpuExecutor cpu;
    const double apply_s = best_of(repeat, [&] {
      vsense::kernels::sparse_times_dense(cpu, s.view(), x.data(), m, product.data());
    });
    fmt::print("model {}: {} nodes, {} elements, {} equations; {} fields\n", path, n_nodes,
               model.n_elements(), n, m);
    fmt::print("S: {} x {}, {} nonzeros ({:.0f} MiB)\n", s.rows, s.cols, s.values.size(),
               static_cast<double>(s.values.size() * 12 + s.row_offsets.size() * 8) / 1048576.0);
    fmt::print("per field nodal_stress:   {:8.3f} s\n", direct_s);
    fmt::print("build S:                  {:8.3f} s\n", build_s);
    fmt::print("S X on the CPU:           {:8.3f} s   (build + apply {:.3f} s, {:.2f}x the "
               "per-field time; max diff {:.2e} of the peak)\n",
               apply_s, build_s + apply_s, direct_s / (build_s + apply_s),
               relative_difference(product, direct));
    fmt::print("nodal_stresses (panels):  {:8.3f} s   ({:.2f}x the per-field time; max diff "
               "{:.2e} of the peak)\n",
               panels_s, direct_s / panels_s, relative_difference(panels, direct));
    if (cuda) {
      const auto device = vsense::CudaExecutor::create(0);
      std::vector<double> on_device(product.size());
      const double device_s = best_of(repeat, [&] {
        vsense::kernels::sparse_times_dense(*device, s.view(), x.data(), m, on_device.data());
      });
      fmt::print("S X on {}: {:8.3f} s (with transfers; max diff to the CPU {:.2e})\n",
                 device->description(), device_s, relative_difference(on_device, product));
    }
  } catch (const vsense::Error& error) {
    fmt::print(stderr, "bench_modal_stress: {}\n", error.what());
    return error.exit_code();
  }
  return 0;
}
