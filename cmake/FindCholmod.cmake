# Finds CHOLMOD (SuiteSparse) and defines Cholmod::cholmod.
find_path(CHOLMOD_INCLUDE_DIR cholmod.h PATH_SUFFIXES suitesparse)
find_library(CHOLMOD_LIBRARY cholmod)
find_library(SUITESPARSE_CONFIG_LIBRARY suitesparseconfig)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Cholmod DEFAULT_MSG CHOLMOD_LIBRARY CHOLMOD_INCLUDE_DIR
                                  SUITESPARSE_CONFIG_LIBRARY)
if(Cholmod_FOUND AND NOT TARGET Cholmod::cholmod)
  add_library(Cholmod::cholmod UNKNOWN IMPORTED)
  set_target_properties(Cholmod::cholmod PROPERTIES
    IMPORTED_LOCATION "${CHOLMOD_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CHOLMOD_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${SUITESPARSE_CONFIG_LIBRARY}")
endif()
