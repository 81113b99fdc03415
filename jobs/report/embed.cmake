# Writes the file INPUT as a C++ raw string literal into OUTPUT (cmake -P).
file(READ ${INPUT} content)
string(FIND "${content}" ")vsense_script\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )vsense_script\"")
endif()
file(WRITE ${OUTPUT} "// Generated from ${INPUT} by embed.cmake; do not edit.\n"
                     "R\"vsense_script(${content})vsense_script\"\n")
