# SPDX-License-Identifier: Apache-2.0
# The kafka-python oracle for the generated message codecs: kcodec_tool puts
# the codecs behind a line protocol, oracle_messages.py feeds it every
# (API, version, direction) kafka-python implements and compares bytes and
# values. Exit status 77 (no kafka-python, no official schemas) is a skip.
add_executable(kcodec_tool ${CMAKE_CURRENT_LIST_DIR}/kcodec_tool.c)
target_link_libraries(kcodec_tool PRIVATE tributary_common)
set_target_properties(kcodec_tool PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

add_test(NAME codec.oracle.messages
         COMMAND ${TRIB_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/oracle_messages.py
                 --tool $<TARGET_FILE:kcodec_tool>)
set_tests_properties(codec.oracle.messages PROPERTIES
  LABELS "codec"
  SKIP_RETURN_CODE 77
  TIMEOUT 600)
