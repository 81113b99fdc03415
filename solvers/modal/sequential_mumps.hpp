#pragma once
// The sequential MUMPS (Debian libmumps-seq-dev) of the Sturm counts and the indefinite
// shift-invert factors, loaded at run time with deep binding (not a public header).
//
// Why not linked: PETSc (the SLEPc backend) links the MPI-parallel MUMPS, which exports the
// same symbols; a linked sequential MUMPS would sit in the program's global scope and capture
// PETSc's calls. Loaded with RTLD_LOCAL | RTLD_DEEPBIND, the sequential MUMPS and its MPI stubs
// resolve among themselves and stay invisible to everything else.
#include <dmumps_c.h>

namespace vsense::solvers::detail {

using DmumpsEntry = void (*)(DMUMPS_STRUC_C*);

/// MUMPS's dmumps_c of the sequential library, loaded on first use.
/// @throws NotCompiled naming the library when it cannot be loaded.
DmumpsEntry sequential_dmumps();

}  // namespace vsense::solvers::detail
