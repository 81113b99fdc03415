/// @file stress_recovery.cpp
/// @brief Nodal stresses averaged over the elements as CalculiX does (extrapolate.f).
///
/// CalculiX's rule, checked with ccx 2.20: every solid element extrapolates its
/// integration-point stresses to its nodes (solid_nodal_stress); a node takes the sum of its
/// elements' values divided by a count. The count is the number of solid elements at the node
/// *plus the number of SPRINGA and SPRING2 elements* at it: those contribute no stress but are
/// counted, so a node where a solid meets an axial spring shows half the stress. SPRING1 and
/// MASS elements are not counted. Nodes without any counted element get zero.
#include <cblas.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <limits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "vsense/kernels/errors.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/elements.hpp"

namespace vsense::model {

namespace {
constexpr int max_solid_nodes = 20;
/// Elements whose nodal values are computed in parallel before they are summed in element
/// order; bounds the buffer at chunk * 20 * 6 doubles (about 15 MB).
constexpr std::size_t chunk_elements = 16384;

/// nodal_stress's divisor per node: solid elements plus SPRINGA and SPRING2 elements at it.
std::vector<std::int32_t> stress_counts(const Model& model) {
  std::vector<std::int32_t> count(model.n_nodes(), 0);
  for (std::size_t e = 0; e < model.n_elements(); ++e) {
    const ElementType type = model.element_types[e];
    const auto* nodes = model.nodes_of(e);
    if (is_solid(type)) {
      for (int a = 0; a < model.n_nodes_of(e); ++a) ++count[nodes[a]];
    } else if (type == ElementType::springa || type == ElementType::spring2) {
      ++count[nodes[0]];
      ++count[nodes[1]];
    }
  }
  return count;
}

/// Runs body(i) for i in [0, n) in parallel; the first failure is rethrown, an InputError
/// naming element element_of(i).
template <typename Body, typename ElementOf>
void parallel_over(std::int64_t n, const Model& model, ElementOf element_of, Body body) {
  std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 64)
  for (std::int64_t i = 0; i < n; ++i) {
    try {
      body(i);
    } catch (const InputError& error) {
#pragma omp critical(vsense_stress_operator_failure)
      if (!failure) {
        failure = std::make_exception_ptr(InputError(
            fmt::format("element {}: {}", model.element_ids[element_of(i)], error.what())));
      }
    } catch (...) {
#pragma omp critical(vsense_stress_operator_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

// Element stress matrices [6 n, 3 n] (row-major: row 6 a + k, column 3 b + d), by linearity:
// column 3 b + d is the element's nodal stress for the unit displacement of its DOF (b, d)
// (solid_nodal_stress_matrix).
constexpr int max_dofs = 3 * max_solid_nodes;
constexpr std::size_t matrix_size = 6 * max_solid_nodes * max_dofs;

/// The stress matrices of the solid elements among [first, last), in parallel, element e's at
/// matrices + (e - first) * matrix_size; other elements are skipped.
/// @throws InputError for a degenerate element, naming it.
void element_stress_matrices(const Model& model, std::size_t first, std::size_t last,
                             double* matrices) {
  parallel_over(
      static_cast<std::int64_t>(last - first), model,
      [&](std::int64_t i) { return first + static_cast<std::size_t>(i); },
      [&](std::int64_t i) {
        const std::size_t e = first + static_cast<std::size_t>(i);
        const ElementType type = model.element_types[e];
        if (!is_solid(type)) return;
        const int n = model.n_nodes_of(e);
        const auto* nodes = model.nodes_of(e);
        double xyz[3 * max_solid_nodes];
        for (int a = 0; a < n; ++a) {
          for (int d = 0; d < 3; ++d) xyz[3 * a + d] = model.coordinates[nodes[a]][d];
        }
        solid_nodal_stress_matrix(type, xyz, model.material_of(e),
                                  matrices + static_cast<std::size_t>(i) * matrix_size);
      });
}

/// values[6 a + k, :] = sum over (b, d) of matrix[6 a + k, 3 b + d] * fields[nodes[b], d, :]:
/// an element's nodal stresses for a panel of fields (rows of `stride` doubles, `width` used),
/// one small GEMM on the element's gathered fields (`gathered`: [3 n, stride] of work).
void apply_element_matrix(const double* matrix, int n, const std::int32_t* nodes,
                          const double* fields, std::size_t width, std::size_t stride,
                          double* gathered, double* values) {
  const auto dofs = static_cast<std::size_t>(3 * n);
  for (std::size_t c = 0; c < dofs; ++c) {
    const double* u = fields + (3 * static_cast<std::size_t>(nodes[c / 3]) + c % 3) * stride;
    std::copy(u, u + width, gathered + c * stride);
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 6 * n, static_cast<int>(width),
              static_cast<int>(dofs), 1.0, matrix, static_cast<int>(dofs), gathered,
              static_cast<int>(stride), 0.0, values, static_cast<int>(stride));
}
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


void nodal_stresses(const Model& model, const double* displacements, std::size_t n_fields,
                    double* stresses) {
  const std::size_t n_nodes = model.n_nodes();
  const std::size_t n_elements = model.n_elements();
  if (n_fields == 0) return;
  const std::vector<std::int32_t> count = stress_counts(model);
  constexpr std::size_t panel_fields = 64;
  const std::size_t panel = std::min(panel_fields, n_fields);
  // The panel's fields and stress sums node-major ([n_nodes, 3, panel] and [n_nodes, 6, panel]:
  // an element gathers and adds contiguous rows), and per element of a chunk its stress matrix
  // and its nodal stresses [6 n, panel].
  std::vector<double> fields(n_nodes * 3 * panel), sums(n_nodes * 6 * panel);
  const std::size_t chunk = std::min<std::size_t>(256, std::max<std::size_t>(n_elements, 1));
  std::vector<double> element_matrix(chunk * matrix_size);
  std::vector<double> element_values(chunk * 6 * max_solid_nodes * panel);
  const auto n_nodes_signed = static_cast<std::int64_t>(n_nodes);
  for (std::size_t f0 = 0; f0 < n_fields; f0 += panel) {
    const std::size_t width = std::min(panel, n_fields - f0);
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < n_nodes_signed; ++p) {
      for (std::size_t d = 0; d < 3; ++d) {
        double* row = fields.data() + (3 * static_cast<std::size_t>(p) + d) * panel;
        for (std::size_t j = 0; j < width; ++j) {
          row[j] = displacements[(f0 + j) * 3 * n_nodes + 3 * static_cast<std::size_t>(p) + d];
        }
      }
    }
    std::fill(sums.begin(), sums.end(), 0.0);
    for (std::size_t first = 0; first < n_elements; first += chunk) {
      const std::size_t last = std::min(first + chunk, n_elements);
      element_stress_matrices(model, first, last, element_matrix.data());
      const auto count_signed = static_cast<std::int64_t>(last - first);
#pragma omp parallel for schedule(dynamic, 16)
      for (std::int64_t i = 0; i < count_signed; ++i) {
        const std::size_t e = first + static_cast<std::size_t>(i);
        if (!is_solid(model.element_types[e])) continue;
        double gathered[3 * max_solid_nodes * panel_fields];
        apply_element_matrix(
            element_matrix.data() + static_cast<std::size_t>(i) * matrix_size,
            model.n_nodes_of(e), model.nodes_of(e), fields.data(), width, panel, gathered,
            element_values.data() + static_cast<std::size_t>(i) * 6 * max_solid_nodes * panel);
      }
      // Summation in element order into the node-major panel (rows of `panel` fields,
      // contiguous); the threads split each row's fields, so every sum keeps element order.
#pragma omp parallel
      {
        std::size_t j0 = 0, j1 = width;
#ifdef _OPENMP
        const auto threads = static_cast<std::size_t>(omp_get_num_threads());
        const auto thread = static_cast<std::size_t>(omp_get_thread_num());
        j0 = width * thread / threads;
        j1 = width * (thread + 1) / threads;
#endif
        for (std::size_t e = first; e < last && j0 < j1; ++e) {
          if (!is_solid(model.element_types[e])) continue;
          const auto* nodes = model.nodes_of(e);
          const double* values = element_values.data() + (e - first) * 6 * max_solid_nodes * panel;
          for (int a = 0; a < model.n_nodes_of(e); ++a) {
            double* rows = sums.data() + 6 * static_cast<std::size_t>(nodes[a]) * panel;
            const double* from = values + static_cast<std::size_t>(6 * a) * panel;
            for (std::size_t r = 0; r < 6 * panel; r += panel) {
              for (std::size_t j = j0; j < j1; ++j) rows[r + j] += from[r + j];
            }
          }
        }
      }
    }
    // Back to [field, node, 6], divided by the nodes' counts.
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < n_nodes_signed; ++p) {
      const auto node = static_cast<std::size_t>(p);
      const double divisor = count[node] > 1 ? static_cast<double>(count[node]) : 1.0;
      for (std::size_t j = 0; j < width; ++j) {
        double* stress = stresses + (f0 + j) * 6 * n_nodes + 6 * node;
        for (std::size_t k = 0; k < 6; ++k) stress[k] = sums[(6 * node + k) * panel + j] / divisor;
      }
    }
  }
}


NodalStressOperator nodal_stress_operator(const Model& model, const DofMap& dofs) {
  const std::size_t n_nodes = model.n_nodes();
  const std::size_t n_elements = model.n_elements();
  if (dofs.n_equations >= std::numeric_limits<std::int32_t>::max()) {
    throw InputError(fmt::format("nodal stress operator: {} equations exceed 32-bit columns",
                                 dofs.n_equations));
  }
  NodalStressOperator s;
  s.rows = static_cast<std::int64_t>(6 * n_nodes);
  s.cols = dofs.n_equations;
  const std::vector<std::int32_t> count = stress_counts(model);

  // Solid elements at each node, in element order: [n_nodes + 1] offsets into `at_node`.
  std::vector<std::int64_t> node_offsets(n_nodes + 1, 0);
  for (std::size_t e = 0; e < n_elements; ++e) {
    if (!is_solid(model.element_types[e])) continue;
    for (int a = 0; a < model.n_nodes_of(e); ++a) ++node_offsets[model.nodes_of(e)[a] + 1];
  }
  for (std::size_t p = 0; p < n_nodes; ++p) node_offsets[p + 1] += node_offsets[p];
  std::vector<std::int64_t> at_node(static_cast<std::size_t>(node_offsets[n_nodes]));
  {
    std::vector<std::int64_t> next(node_offsets.begin(), node_offsets.end() - 1);
    for (std::size_t e = 0; e < n_elements; ++e) {
      if (!is_solid(model.element_types[e])) continue;
      for (int a = 0; a < model.n_nodes_of(e); ++a) {
        at_node[static_cast<std::size_t>(next[model.nodes_of(e)[a]]++)] =
            static_cast<std::int64_t>(e);
      }
    }
  }

  // Pattern of node p's rows: the free equations of the nodes sharing a solid element with p,
  // ascending (equations are numbered node by node in node order).
  const auto pattern_of = [&](std::size_t p, std::vector<std::int32_t>& columns) {
    std::vector<std::int32_t> neighbours;
    for (auto k = node_offsets[p]; k < node_offsets[p + 1]; ++k) {
      const auto e = static_cast<std::size_t>(at_node[static_cast<std::size_t>(k)]);
      const auto* nodes = model.nodes_of(e);
      neighbours.insert(neighbours.end(), nodes, nodes + model.n_nodes_of(e));
    }
    std::sort(neighbours.begin(), neighbours.end());
    neighbours.erase(std::unique(neighbours.begin(), neighbours.end()), neighbours.end());
    columns.clear();
    for (const auto q : neighbours) {
      for (int d = 0; d < 3; ++d) {
        const std::int64_t eq = dofs.equation[3 * static_cast<std::size_t>(q) + d];
        if (eq >= 0) columns.push_back(static_cast<std::int32_t>(eq));
      }
    }
  };
  std::vector<std::int64_t> node_width(n_nodes, 0);
  const auto n_nodes_signed = static_cast<std::int64_t>(n_nodes);
#pragma omp parallel
  {
    std::vector<std::int32_t> columns;
#pragma omp for schedule(dynamic, 256)
    for (std::int64_t p = 0; p < n_nodes_signed; ++p) {
      pattern_of(static_cast<std::size_t>(p), columns);
      node_width[static_cast<std::size_t>(p)] = static_cast<std::int64_t>(columns.size());
    }
  }
  s.row_offsets.assign(static_cast<std::size_t>(s.rows) + 1, 0);
  for (std::size_t p = 0; p < n_nodes; ++p) {
    for (int k = 0; k < 6; ++k) {
      s.row_offsets[6 * p + k + 1] = s.row_offsets[6 * p + k] + node_width[p];
    }
  }
  const auto nnz = static_cast<std::size_t>(s.row_offsets.back());
  s.columns.resize(nnz);
  s.values.assign(nnz, 0.0);
#pragma omp parallel
  {
    std::vector<std::int32_t> columns;
#pragma omp for schedule(dynamic, 256)
    for (std::int64_t p = 0; p < n_nodes_signed; ++p) {
      pattern_of(static_cast<std::size_t>(p), columns);
      for (int k = 0; k < 6; ++k) {
        std::copy(columns.begin(), columns.end(),
                  s.columns.begin() + s.row_offsets[6 * static_cast<std::size_t>(p) + k]);
      }
    }
  }

  // Element stress matrices computed in parallel per chunk, summed in element order as
  // nodal_stress sums.
  // 512 elements: at most 512 * 57.6 kB (C3D20) of element matrices at a time.
  const std::size_t chunk = std::min<std::size_t>(512, std::max<std::size_t>(n_elements, 1));
  std::vector<double> element_matrix(chunk * matrix_size);
  for (std::size_t first = 0; first < n_elements; first += chunk) {
    const std::size_t last = std::min(first + chunk, n_elements);
    element_stress_matrices(model, first, last, element_matrix.data());
    for (std::size_t e = first; e < last; ++e) {
      if (!is_solid(model.element_types[e])) continue;
      const int n = model.n_nodes_of(e);
      const auto* nodes = model.nodes_of(e);
      const double* matrix = element_matrix.data() + (e - first) * matrix_size;
      for (int a = 0; a < n; ++a) {
        const auto p = static_cast<std::size_t>(nodes[a]);
        const auto row_begin = s.columns.begin() + s.row_offsets[6 * p];
        const auto row_end = s.columns.begin() + s.row_offsets[6 * p + 1];
        for (int b = 0; b < n; ++b) {
          for (int d = 0; d < 3; ++d) {
            const std::int64_t eq = dofs.equation[3 * static_cast<std::size_t>(nodes[b]) + d];
            if (eq < 0) continue;
            const auto at = std::lower_bound(row_begin, row_end, static_cast<std::int32_t>(eq));
            const auto offset = static_cast<std::size_t>(at - s.columns.begin()) -
                                static_cast<std::size_t>(s.row_offsets[6 * p]);
            for (int k = 0; k < 6; ++k) {
              s.values[static_cast<std::size_t>(s.row_offsets[6 * p + k]) + offset] +=
                  matrix[(6 * a + k) * 3 * n + 3 * b + d];
            }
          }
        }
      }
    }
  }
  for (std::size_t p = 0; p < n_nodes; ++p) {
    if (count[p] <= 1) continue;
    for (auto k = s.row_offsets[6 * p]; k < s.row_offsets[6 * p + 6]; ++k) {
      s.values[static_cast<std::size_t>(k)] /= count[p];
    }
  }
  return s;
}

}  // namespace vsense::model
