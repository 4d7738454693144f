/* SPDX-License-Identifier: Apache-2.0 */
/* Kafka error code names, messages and retriability from TRIB_KAFKA_ERROR_LIST. */
#include "tributary/kafka_error.h"

const char *trib_kafka_err_name(int16_t code)
{
    switch (code) {
#define NAME_(name, c, retriable, msg)                                                             \
    case c:                                                                                        \
        return #name;
        TRIB_KAFKA_ERROR_LIST(NAME_)
#undef NAME_
    default:
        return "UNKNOWN";
    }
}

const char *trib_kafka_err_message(int16_t code)
{
    switch (code) {
#define MSG_(name, c, retriable, msg)                                                              \
    case c:                                                                                        \
        return msg;
        TRIB_KAFKA_ERROR_LIST(MSG_)
#undef MSG_
    default:
        return "Unknown Kafka error code.";
    }
}

bool trib_kafka_err_retriable(int16_t code)
{
    switch (code) {
#define RETRY_(name, c, retriable, msg)                                                            \
    case c:                                                                                        \
        return retriable;
        TRIB_KAFKA_ERROR_LIST(RETRY_)
#undef RETRY_
    default:
        return false;
    }
}

bool trib_kafka_err_known(int16_t code)
{
    switch (code) {
#define KNOWN_(name, c, retriable, msg)                                                            \
    case c:                                                                                        \
        return true;
        TRIB_KAFKA_ERROR_LIST(KNOWN_)
#undef KNOWN_
    default:
        return false;
    }
}
