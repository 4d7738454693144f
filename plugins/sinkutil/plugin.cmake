# SPDX-License-Identifier: Apache-2.0
# Included by every plugins/<name>/CMakeLists.txt (directories are added in
# name order, so the helpers cannot rely on plugins/sinkutil coming first).
#
# trib_sinkutil: JSON rendering of records and a growable string, a static
# PIC library linked into each plugin MODULE. It is not part of the ABI.
#
# trib_sink_plugin(<name> <sources...>): the MODULE <name>.so in
# ${TRIB_SINK_DIR}, symbols hidden but the entry point (TRIB_SINK_EXPORT).
include_guard(GLOBAL)

add_library(trib_sinkutil STATIC ${CMAKE_CURRENT_LIST_DIR}/sinkutil.c)
set_target_properties(trib_sinkutil PROPERTIES POSITION_INDEPENDENT_CODE ON
                      C_VISIBILITY_PRESET hidden)
target_include_directories(trib_sinkutil PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(trib_sinkutil PUBLIC tributary_common)

function(trib_sink_plugin name)
  add_library(sink_${name} MODULE ${ARGN})
  set_target_properties(sink_${name} PROPERTIES PREFIX "" OUTPUT_NAME ${name}
                        LIBRARY_OUTPUT_DIRECTORY ${TRIB_SINK_DIR}
                        C_VISIBILITY_PRESET hidden)
  target_link_libraries(sink_${name} PRIVATE trib_sinkutil)
  # The static libraries linked in stay private to the plugin.
  target_link_options(sink_${name} PRIVATE -Wl,--exclude-libs,ALL -Wl,--no-undefined)
endfunction()
