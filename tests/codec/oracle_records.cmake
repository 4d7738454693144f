# SPDX-License-Identifier: Apache-2.0
# The kafka-python oracle for record batches v2 and the compression codecs:
# record_tool dumps and rebuilds batches with our parser and builder,
# oracle_records.py builds batches with kafka-python's
# DefaultRecordBatchBuilder, compares every field and byte, and reads our
# batches back with kafka-python's reader for every codec it can decode.
# A missing kafka-python is a failure, not a skip (scripts/test installs
# python3-kafka; python3-snappy, python3-lz4 and python3-zstandard widen the
# codecs covered beyond gzip).
add_executable(record_tool ${CMAKE_CURRENT_LIST_DIR}/record_tool.c)
target_link_libraries(record_tool PRIVATE tributary_common)
set_target_properties(record_tool PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

add_test(NAME codec.oracle.records
         COMMAND ${TRIB_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/oracle_records.py
                 --tool $<TARGET_FILE:record_tool>
                 --workdir ${CMAKE_CURRENT_BINARY_DIR}/oracle_records)
set_tests_properties(codec.oracle.records PROPERTIES
  LABELS "codec"
  TIMEOUT 600)
