# SPDX-License-Identifier: Apache-2.0
# codec.regen: the committed common/kafka/gen must be exactly what
# tools/codegen/kafka_codegen.py writes from ../shared/kafka-protocol/message.
# Skipped (exit 77) when that folder is not beside the repository.
add_test(NAME codec.regen
         COMMAND ${TRIB_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/regen_check.py
                 --repo ${CMAKE_SOURCE_DIR}
                 --schemas ${CMAKE_SOURCE_DIR}/../shared/kafka-protocol/message
                 --tmp ${CMAKE_CURRENT_BINARY_DIR}/regen)
set_tests_properties(codec.regen PROPERTIES LABELS "codec" SKIP_RETURN_CODE 77 TIMEOUT 120)
