// vsense place modes.h5 --sensors S --method METHOD [--candidates NSET|FILE] --out placement.h5
#include <iostream>

#include "commands.hpp"
#include "place_options.hpp"

namespace vsense::drivers {

void register_place(CLI::App& app, CommonOptions& common) {
  struct Args {
    PlaceArgs place;
    std::string method, out;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "place",
      "Place triaxial accelerometers on the model of a modes file.\n"
      "Methods: efi, efi-dpr, kinetic-energy, qr, minmac, d-optimal, min-variance, two-phase\n"
      "(formulas in the README). Candidates: the surface nodes unless --candidates is given.\n"
      "Example: vsense place modes.h5 --sensors 12 --method two-phase --out placement.h5");
  add_place_options(*cmd, args->place);
  cmd->add_option("--method", args->method, "Placement method")->required();
  cmd->add_option("--out,-o", args->out, "Output placement file (HDF5)")->required();
  cmd->callback([args, &common] {
    const jobs::PlaceSummary summary =
        jobs::run_place(args->place, args->method, args->out, *common.comm);
    if (common.json && common.comm->is_root()) std::cout << jobs::to_json(summary) << "\n";
  });
}

}  // namespace vsense::drivers
