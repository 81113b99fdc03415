// Sparse assembly of K and M over the free DOFs (lower triangles, CSC, int64 indices).
//
// The pattern is built at node level first (node -> elements incidence, then for each node the
// sorted set of neighbour nodes with a larger or equal index), expanded to 3x3 DOF blocks with
// fixed DOFs dropped, and the values are scattered element by element in parallel. Memory is
// the final matrices plus O(n_nodes + element_nodes) integers.
#include "vsense/model/assembly.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "vsense/kernels/errors.hpp"
#include "vsense/model/elements.hpp"

namespace vsense::model {

namespace {

constexpr int max_element_nodes = 20;
constexpr int max_element_dofs = 3 * max_element_nodes;

/// Node -> elements incidence in CSR form.
struct Incidence {
  std::vector<std::int64_t> offsets;   // [n_nodes + 1]
  std::vector<std::int32_t> elements;  // element indices
};

Incidence node_incidence(const Model& model) {
  Incidence inc;
  inc.offsets.assign(model.n_nodes() + 1, 0);
  for (std::int32_t node : model.element_nodes) ++inc.offsets[node + 1];
  std::partial_sum(inc.offsets.begin(), inc.offsets.end(), inc.offsets.begin());
  inc.elements.resize(model.element_nodes.size());
  std::vector<std::int64_t> cursor(inc.offsets.begin(), inc.offsets.end() - 1);
  for (std::size_t e = 0; e < model.n_elements(); ++e) {
    const auto* nodes = model.nodes_of(e);
    for (int a = 0; a < model.n_nodes_of(e); ++a) {
      inc.elements[cursor[nodes[a]]++] = static_cast<std::int32_t>(e);
    }
  }
  return inc;
}

const Section& section_of(const Model& model, std::size_t e) {
  const auto s = model.element_section[e];
  if (s < 0) {
    throw InputError(fmt::format("element {} has no section", model.element_ids[e]));
  }
  return model.sections[s];
}

/// Gathers the coordinates of element e into [n, 3].
void gather_coordinates(const Model& model, std::size_t e, double* xyz) {
  const auto* nodes = model.nodes_of(e);
  for (int a = 0; a < model.n_nodes_of(e); ++a) {
    for (int d = 0; d < 3; ++d) xyz[3 * a + d] = model.coordinates[nodes[a]][d];
  }
}

/// Element matrices of any element type, as dense [3n, 3n] row-major over all 3 DOFs of each of
/// its nodes (springs and masses included).
void element_matrices(const Model& model, std::size_t e, double* ke, double* me) {
  const ElementType type = model.element_types[e];
  const int n = model.n_nodes_of(e);
  const int n_dofs = 3 * n;
  if (is_solid(type)) {
    double xyz[3 * max_element_nodes];
    gather_coordinates(model, e, xyz);
    solid_matrices(type, xyz, model.material_of(e), ke, me);
    return;
  }
  std::fill(ke, ke + n_dofs * n_dofs, 0.0);
  std::fill(me, me + n_dofs * n_dofs, 0.0);
  const Section& section = section_of(model, e);
  const auto* nodes = model.nodes_of(e);
  switch (type) {
    case ElementType::mass:
      for (int d = 0; d < 3; ++d) me[d * n_dofs + d] = section.mass;
      break;
    case ElementType::spring1: {
      const int d = section.dof1 - 1;
      ke[d * n_dofs + d] = section.stiffness;
      break;
    }
    case ElementType::spring2: {
      const int a = section.dof1 - 1, b = 3 + section.dof2 - 1;
      ke[a * n_dofs + a] += section.stiffness;
      ke[b * n_dofs + b] += section.stiffness;
      ke[a * n_dofs + b] -= section.stiffness;
      ke[b * n_dofs + a] -= section.stiffness;
      break;
    }
    case ElementType::springa: {
      double axis[3];
      double length = 0.0;
      for (int d = 0; d < 3; ++d) {
        axis[d] = model.coordinates[nodes[1]][d] - model.coordinates[nodes[0]][d];
        length += axis[d] * axis[d];
      }
      length = std::sqrt(length);
      if (!(length > 0.0)) {
        throw InputError(fmt::format(
            "SPRINGA element {} joins coincident nodes {} and {}: its axis is undefined",
            model.element_ids[e], model.node_ids[nodes[0]], model.node_ids[nodes[1]]));
      }
      for (double& c : axis) c /= length;
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
          const double k = section.stiffness * axis[i] * axis[j];
          ke[i * n_dofs + j] += k;
          ke[(3 + i) * n_dofs + 3 + j] += k;
          ke[i * n_dofs + 3 + j] -= k;
          ke[(3 + i) * n_dofs + j] -= k;
        }
      }
      break;
    }
    default:
      throw InputError(fmt::format("element {}: type {} is not supported", model.element_ids[e],
                                   element_type_name(type)));
  }
}

/// DOFs of a node that an element actually couples. Solids, masses and axial springs use all
/// three translations; SPRING1/SPRING2 only the DOF named on their *SPRING card.
void mark_active_dofs(const Model& model, std::size_t e, std::vector<char>& active) {
  const ElementType type = model.element_types[e];
  const auto* nodes = model.nodes_of(e);
  if (type == ElementType::spring1 || type == ElementType::spring2) {
    const Section& section = section_of(model, e);
    active[3 * static_cast<std::size_t>(nodes[0]) + section.dof1 - 1] = 1;
    if (type == ElementType::spring2) {
      active[3 * static_cast<std::size_t>(nodes[1]) + section.dof2 - 1] = 1;
    }
    return;
  }
  for (int a = 0; a < model.n_nodes_of(e); ++a) {
    for (int d = 0; d < 3; ++d) active[3 * static_cast<std::size_t>(nodes[a]) + d] = 1;
  }
}

}  // namespace

DofMap build_dof_map(const Model& model) {
  std::vector<char> active(3 * model.n_nodes(), 0);
  for (std::size_t e = 0; e < model.n_elements(); ++e) mark_active_dofs(model, e, active);
  for (const auto& fixed : model.fixed_dofs) {
    active[3 * static_cast<std::size_t>(fixed.node) + fixed.dof] = 0;
  }
  DofMap dofs;
  dofs.equation.assign(3 * model.n_nodes(), -1);
  for (std::size_t i = 0; i < active.size(); ++i) {
    if (active[i]) dofs.equation[i] = dofs.n_equations++;
  }
  return dofs;
}

SystemMatrices assemble(const Model& model, const DofMap& dofs) {
  const std::size_t n_nodes = model.n_nodes();
  const std::int64_t n_eq = dofs.n_equations;
  const Incidence inc = node_incidence(model);

  // Node-level lower pattern: for node j, the sorted neighbours i >= j.
  std::vector<std::int64_t> node_offsets(n_nodes + 1, 0);
  std::vector<std::vector<std::int32_t>> thread_lists;
  std::vector<std::int32_t> neighbours;
  {
    // First pass counts, second pass fills; each pass is parallel over nodes with a
    // thread-private marker array.
    auto neighbours_of = [&](std::size_t j, std::vector<std::int32_t>& marker,
                             std::vector<std::int32_t>& out) {
      out.clear();
      for (auto k = inc.offsets[j]; k < inc.offsets[j + 1]; ++k) {
        const auto e = static_cast<std::size_t>(inc.elements[k]);
        const auto* nodes = model.nodes_of(e);
        for (int a = 0; a < model.n_nodes_of(e); ++a) {
          const std::int32_t i = nodes[a];
          if (static_cast<std::size_t>(i) >= j && marker[i] != static_cast<std::int32_t>(j)) {
            marker[i] = static_cast<std::int32_t>(j);
            out.push_back(i);
          }
        }
      }
      std::sort(out.begin(), out.end());
    };
#pragma omp parallel
    {
      std::vector<std::int32_t> marker(n_nodes, -1), list;
#pragma omp for schedule(dynamic, 4096)
      for (std::ptrdiff_t j = 0; j < static_cast<std::ptrdiff_t>(n_nodes); ++j) {
        neighbours_of(static_cast<std::size_t>(j), marker, list);
        node_offsets[j + 1] = static_cast<std::int64_t>(list.size());
      }
    }
    std::partial_sum(node_offsets.begin(), node_offsets.end(), node_offsets.begin());
    neighbours.resize(static_cast<std::size_t>(node_offsets[n_nodes]));
#pragma omp parallel
    {
      std::vector<std::int32_t> marker(n_nodes, -1), list;
#pragma omp for schedule(dynamic, 4096)
      for (std::ptrdiff_t j = 0; j < static_cast<std::ptrdiff_t>(n_nodes); ++j) {
        neighbours_of(static_cast<std::size_t>(j), marker, list);
        std::copy(list.begin(), list.end(), neighbours.begin() + node_offsets[j]);
      }
    }
  }

  // Equation-level CSC pattern (lower triangle). Equations are numbered node-major in node
  // order, so sorted neighbour nodes give sorted row indices.
  std::vector<std::int64_t> col_ptr(static_cast<std::size_t>(n_eq) + 1, 0);
  for (std::size_t j = 0; j < n_nodes; ++j) {
    for (int a = 0; a < 3; ++a) {
      const auto col = dofs.equation[3 * j + a];
      if (col < 0) continue;
      std::int64_t count = 0;
      for (auto k = node_offsets[j]; k < node_offsets[j + 1]; ++k) {
        const auto i = static_cast<std::size_t>(neighbours[k]);
        for (int b = 0; b < 3; ++b) {
          const auto row = dofs.equation[3 * i + b];
          if (row >= col) ++count;
        }
      }
      col_ptr[col + 1] = count;
    }
  }
  std::partial_sum(col_ptr.begin(), col_ptr.end(), col_ptr.begin());
  const std::int64_t nnz = col_ptr.back();
  // K and M are built in place (shared pattern written into both), so the peak is the two
  // final matrices: no staging copies.
  SystemMatrices out;
  for (SparseMatrix* target : {&out.stiffness, &out.mass}) {
    target->resize(n_eq, n_eq);
    target->resizeNonZeros(nnz);
    std::copy(col_ptr.begin(), col_ptr.end(), target->outerIndexPtr());
  }
  col_ptr.clear();
  col_ptr.shrink_to_fit();
  const std::int64_t* col_start = out.stiffness.outerIndexPtr();
  std::int64_t* row_idx = out.stiffness.innerIndexPtr();
#pragma omp parallel for schedule(dynamic, 4096)
  for (std::ptrdiff_t jj = 0; jj < static_cast<std::ptrdiff_t>(n_nodes); ++jj) {
    const auto j = static_cast<std::size_t>(jj);
    for (int a = 0; a < 3; ++a) {
      const auto col = dofs.equation[3 * j + a];
      if (col < 0) continue;
      auto pos = col_start[col];
      for (auto k = node_offsets[j]; k < node_offsets[j + 1]; ++k) {
        const auto i = static_cast<std::size_t>(neighbours[k]);
        for (int b = 0; b < 3; ++b) {
          const auto row = dofs.equation[3 * i + b];
          if (row >= col) row_idx[pos++] = row;
        }
      }
    }
  }
  neighbours.clear();
  neighbours.shrink_to_fit();

  std::copy(row_idx, row_idx + nnz, out.mass.innerIndexPtr());
  double* k_values = out.stiffness.valuePtr();
  double* m_values = out.mass.valuePtr();
  std::fill(k_values, k_values + nnz, 0.0);
  std::fill(m_values, m_values + nnz, 0.0);
  const std::ptrdiff_t n_elements = static_cast<std::ptrdiff_t>(model.n_elements());
  // The first error raised inside the parallel region is rethrown after it.
  std::exception_ptr failure;
#pragma omp parallel
  {
    double ke[max_element_dofs * max_element_dofs];
    double me[max_element_dofs * max_element_dofs];
    std::int64_t eq[max_element_dofs];
#pragma omp for schedule(dynamic, 256)
    for (std::ptrdiff_t ei = 0; ei < n_elements; ++ei) {
      if (failure) continue;
      try {
        const auto e = static_cast<std::size_t>(ei);
        const int n = model.n_nodes_of(e);
        const int n_dofs = 3 * n;
        element_matrices(model, e, ke, me);
        const auto* nodes = model.nodes_of(e);
        for (int a = 0; a < n; ++a) {
          for (int d = 0; d < 3; ++d) {
            eq[3 * a + d] = dofs.equation[3 * static_cast<std::size_t>(nodes[a]) + d];
          }
        }
        for (int p = 0; p < n_dofs; ++p) {
          const auto row_p = eq[p];
          if (row_p < 0) continue;
          for (int q = 0; q < n_dofs; ++q) {
            const auto col_q = eq[q];
            if (col_q < 0 || row_p < col_q) continue;
            const double kv = ke[p * n_dofs + q], mv = me[p * n_dofs + q];
            if (kv == 0.0 && mv == 0.0) continue;
            const auto* first = row_idx + col_start[col_q];
            const auto* last = row_idx + col_start[col_q + 1];
            const auto pos = std::lower_bound(first, last, row_p) - row_idx;
#pragma omp atomic
            k_values[pos] += kv;
#pragma omp atomic
            m_values[pos] += mv;
          }
        }
      } catch (...) {
#pragma omp critical(vsense_assembly_failure)
        if (!failure) failure = std::current_exception();
      }
    }
  }
  if (failure) std::rethrow_exception(failure);

  spdlog::debug("assembled {} equations, {} nonzeros (lower triangle)", n_eq, nnz);
  return out;
}

MassProperties mass_properties(const Model& model) {
  // Mass and first moment from each element's mass matrix as integrated (so the figures are
  // those of the discrete model): m_e = sum_ij M_ij (one direction), S_e = sum_i (sum_j M_ij) x_i.
  double total = 0.0;
  double moment[3] = {0.0, 0.0, 0.0};
  const std::ptrdiff_t n_elements = static_cast<std::ptrdiff_t>(model.n_elements());
  std::exception_ptr failure;
#pragma omp parallel
  {
    double ke[max_element_dofs * max_element_dofs];
    double me[max_element_dofs * max_element_dofs];
    double local_total = 0.0, local_moment[3] = {0.0, 0.0, 0.0};
#pragma omp for schedule(dynamic, 256)
    for (std::ptrdiff_t ei = 0; ei < n_elements; ++ei) {
      const auto e = static_cast<std::size_t>(ei);
      const ElementType type = model.element_types[e];
      if (!is_solid(type) && type != ElementType::mass) continue;
      try {
        element_matrices(model, e, ke, me);
      } catch (...) {
#pragma omp critical(vsense_mass_failure)
        if (!failure) failure = std::current_exception();
        continue;
      }
      const int n = model.n_nodes_of(e);
      const int n_dofs = 3 * n;
      const auto* nodes = model.nodes_of(e);
      for (int a = 0; a < n; ++a) {
        double row_sum = 0.0;
        for (int b = 0; b < n; ++b) row_sum += me[(3 * a) * n_dofs + 3 * b];
        local_total += row_sum;
        for (int d = 0; d < 3; ++d) local_moment[d] += row_sum * model.coordinates[nodes[a]][d];
      }
    }
#pragma omp critical(vsense_mass_sum)
    {
      total += local_total;
      for (int d = 0; d < 3; ++d) moment[d] += local_moment[d];
    }
  }
  if (failure) std::rethrow_exception(failure);
  MassProperties out;
  out.total_mass = total;
  if (total > 0.0) {
    for (int d = 0; d < 3; ++d) out.centre_of_mass[d] = moment[d] / total;
  }
  return out;
}

void expand_to_nodes(const DofMap& dofs, const double* equation_values, double* nodal_values) {
  const auto n = static_cast<std::ptrdiff_t>(dofs.equation.size());
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const auto eq = dofs.equation[i];
    nodal_values[i] = eq >= 0 ? equation_values[eq] : 0.0;
  }
}

}  // namespace vsense::model
