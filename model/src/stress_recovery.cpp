/// @file stress_recovery.cpp
/// @brief Nodal stresses averaged over the elements as CalculiX does (extrapolate.f).
///
/// CalculiX's rule, checked with ccx 2.20: every solid element extrapolates its
/// integration-point stresses to its nodes (solid_nodal_stress); a node takes the sum of its
/// elements' values divided by a count. The count is the number of solid elements at the node
/// *plus the number of SPRINGA and SPRING2 elements* at it: those contribute no stress but are
/// counted, so a node where a solid meets an axial spring shows half the stress. SPRING1 and
/// MASS elements are not counted. Nodes without any counted element get zero.
#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <vector>

#include "vsense/kernels/errors.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/elements.hpp"

namespace vsense::model {

namespace {
constexpr int max_solid_nodes = 20;
/// Elements whose nodal values are computed in parallel before they are summed in element
/// order; bounds the buffer at chunk * 20 * 6 doubles (about 15 MB).
constexpr std::size_t chunk_elements = 16384;
}  // namespace

void nodal_stress(const Model& model, const double* displacement, double* stress) {
  const std::size_t n_nodes = model.n_nodes();
  const std::size_t n_elements = model.n_elements();
  std::fill(stress, stress + 6 * n_nodes, 0.0);
  std::vector<std::int32_t> count(n_nodes, 0);

  // element_stress: [chunk, 20, 6], nodal values of the elements of the current chunk
  std::vector<double> element_stress(std::min(chunk_elements, n_elements) * max_solid_nodes * 6);
  for (std::size_t first = 0; first < n_elements; first += chunk_elements) {
    const std::size_t last = std::min(first + chunk_elements, n_elements);
    const auto n_chunk = static_cast<std::int64_t>(last - first);
    std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 64)
    for (std::int64_t i = 0; i < n_chunk; ++i) {
      const std::size_t e = first + static_cast<std::size_t>(i);
      const ElementType type = model.element_types[e];
      if (!is_solid(type)) continue;
      try {
        const int n = model.n_nodes_of(e);
        const auto* nodes = model.nodes_of(e);
        double xyz[3 * max_solid_nodes];
        double u[3 * max_solid_nodes];
        for (int a = 0; a < n; ++a) {
          for (int d = 0; d < 3; ++d) {
            xyz[3 * a + d] = model.coordinates[nodes[a]][d];
            u[3 * a + d] = displacement[3 * static_cast<std::size_t>(nodes[a]) + d];
          }
        }
        solid_nodal_stress(type, xyz, model.material_of(e), u,
                           element_stress.data() + i * max_solid_nodes * 6);
      } catch (const InputError& error) {
#pragma omp critical(vsense_nodal_stress_failure)
        if (!failure) {
          failure = std::make_exception_ptr(
              InputError(fmt::format("element {}: {}", model.element_ids[e], error.what())));
        }
      } catch (...) {
#pragma omp critical(vsense_nodal_stress_failure)
        if (!failure) failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);

    // Summation in element order, as CalculiX does, so the result does not depend on the
    // number of threads.
    for (std::size_t e = first; e < last; ++e) {
      const ElementType type = model.element_types[e];
      const auto* nodes = model.nodes_of(e);
      if (is_solid(type)) {
        const double* values = element_stress.data() + (e - first) * max_solid_nodes * 6;
        for (int a = 0; a < model.n_nodes_of(e); ++a) {
          double* s = stress + 6 * static_cast<std::size_t>(nodes[a]);
          for (int k = 0; k < 6; ++k) s[k] += values[6 * a + k];
          ++count[nodes[a]];
        }
      } else if (type == ElementType::springa || type == ElementType::spring2) {
        ++count[nodes[0]];
        ++count[nodes[1]];
      }
    }
  }
  for (std::size_t p = 0; p < n_nodes; ++p) {
    if (count[p] > 1) {
      for (int k = 0; k < 6; ++k) stress[6 * p + k] /= count[p];
    }
  }
}

}  // namespace vsense::model
