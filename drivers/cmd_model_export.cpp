// vsense model export MODEL.inp --out-dir DIR: K and M in Matrix Market form, plus the DOF map.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "commands.hpp"
#include "vsense/io/matrix_market.hpp"
#include "vsense/kernels/errors.hpp"
#include "vsense/model/assembly.hpp"
#include "vsense/model/inp_reader.hpp"

namespace vsense::drivers {

namespace {
/// dofs.txt: one line per equation (0-based row of the matrices): node id and direction 1..3.
void write_dof_map(const std::string& path, const model::Model& model,
                   const model::DofMap& dofs) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary);
    out << "# equation node_id direction   (equation = 0-based row/column of K.mtx, M.mtx)\n";
    for (std::size_t i = 0; i < dofs.equation.size(); ++i) {
      if (dofs.equation[i] < 0) continue;
      out << dofs.equation[i] << ' ' << model.node_ids[i / 3] << ' ' << (i % 3 + 1) << '\n';
    }
    if (!out) throw IoError(fmt::format("{}: cannot write", path));
  }
  std::filesystem::rename(temporary, path);
}
}  // namespace

void register_model_export(CLI::App& model_cmd, CommonOptions& common) {
  struct Args {
    std::string model, out_dir = ".";
  };
  auto args = std::make_shared<Args>();
  auto* cmd = model_cmd.add_subcommand(
      "export",
      "Assemble K and M (constrained DOFs eliminated) and write them in Matrix Market format\n"
      "(coordinate real symmetric, lower triangle) so any tool can solve the same matrices:\n"
      "DIR/K.mtx, DIR/M.mtx and DIR/dofs.txt (equation -> node id, direction).\n"
      "Example: vsense model export genset.inp --out-dir matrices/");
  cmd->add_option("model", args->model, "Model file (.inp)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out-dir,-o", args->out_dir, "Directory to write into")->capture_default_str();
  cmd->callback([args, &common] {
    const auto start = std::chrono::steady_clock::now();
    const model::Model model = model::read_inp(args->model);
    const model::DofMap dofs = model::build_dof_map(model);
    const model::SystemMatrices system = model::assemble(model, dofs);
    std::filesystem::create_directories(args->out_dir);
    const auto dir = std::filesystem::path(args->out_dir);
    io::write_matrix_market((dir / "K.mtx").string(), system.stiffness);
    io::write_matrix_market((dir / "M.mtx").string(), system.mass);
    write_dof_map((dir / "dofs.txt").string(), model, dofs);
    spdlog::info("wrote {}/K.mtx, M.mtx, dofs.txt: {} equations, {} nonzeros (lower)",
                 args->out_dir, dofs.n_equations, system.stiffness.nonZeros());
    if (common.json) {
      std::cout << fmt::format(
                       R"({{"command":"model export","model":"{}","out_dir":"{}","n_equations":{},)"
                       R"("stiffness_nonzeros":{},"mass_nonzeros":{},"seconds":{:.3f}}})",
                       json_escape(args->model), json_escape(args->out_dir), dofs.n_equations,
                       system.stiffness.nonZeros(), system.mass.nonZeros(),
                       seconds_since(start))
                << "\n";
    }
  });
}

}  // namespace vsense::drivers
