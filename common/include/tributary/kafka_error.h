/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kafka protocol error codes, as the broker puts them in responses.
 *
 * These are a type of their own (trib_kafka_err_t, an int16 on the wire)
 * and never mix with Tributary's local error codes (error.h). The list is
 * Kafka's, from code -1 (UNKNOWN_SERVER_ERROR) to 127; the retriable flag
 * is what Kafka's clients treat as retriable.
 */
#ifndef TRIBUTARY_KAFKA_ERROR_H
#define TRIBUTARY_KAFKA_ERROR_H

#include <stdbool.h>
#include <stdint.h>

/* X(name, code, retriable, message) */
#define TRIB_KAFKA_ERROR_LIST(X)                                                                   \
    X(UNKNOWN_SERVER_ERROR, -1, 0,                                                                 \
      "The server experienced an unexpected error when processing the request.")                   \
    X(NONE, 0, 0, "No error.")                                                                     \
    X(OFFSET_OUT_OF_RANGE, 1, 0,                                                                   \
      "The requested offset is not within the range of offsets maintained by the server.")         \
    X(CORRUPT_MESSAGE, 2, 1,                                                                       \
      "This message has failed its CRC checksum, exceeds the valid size, has a null key for a "    \
      "compacted topic, or is otherwise corrupt.")                                                 \
    X(UNKNOWN_TOPIC_OR_PARTITION, 3, 1, "This server does not host this topic-partition.")         \
    X(INVALID_FETCH_SIZE, 4, 0, "The requested fetch size is invalid.")                            \
    X(LEADER_NOT_AVAILABLE, 5, 1,                                                                  \
      "There is no leader for this topic-partition as we are in the middle of a leadership "       \
      "election.")                                                                                 \
    X(NOT_LEADER_OR_FOLLOWER, 6, 1,                                                                \
      "For requests intended only for the leader, this error indicates that the broker is not "    \
      "the current leader.")                                                                       \
    X(REQUEST_TIMED_OUT, 7, 1, "The request timed out.")                                           \
    X(BROKER_NOT_AVAILABLE, 8, 0, "The broker is not available.")                                  \
    X(REPLICA_NOT_AVAILABLE, 9, 1,                                                                 \
      "The replica is not available for the requested topic-partition.")                           \
    X(MESSAGE_TOO_LARGE, 10, 0,                                                                    \
      "The request included a message larger than the max message size the server will accept.")   \
    X(STALE_CONTROLLER_EPOCH, 11, 0, "The controller moved to another broker.")                    \
    X(OFFSET_METADATA_TOO_LARGE, 12, 0, "The metadata field of the offset request was too large.") \
    X(NETWORK_EXCEPTION, 13, 1, "The server disconnected before a response was received.")         \
    X(COORDINATOR_LOAD_IN_PROGRESS, 14, 1,                                                         \
      "The coordinator is loading and hence can't process requests.")                              \
    X(COORDINATOR_NOT_AVAILABLE, 15, 1, "The coordinator is not available.")                       \
    X(NOT_COORDINATOR, 16, 1, "This is not the correct coordinator.")                              \
    X(INVALID_TOPIC_EXCEPTION, 17, 0,                                                              \
      "The request attempted to perform an operation on an invalid topic.")                        \
    X(RECORD_LIST_TOO_LARGE, 18, 0,                                                                \
      "The request included message batch larger than the configured segment size on the server.") \
    X(NOT_ENOUGH_REPLICAS, 19, 1,                                                                  \
      "Messages are rejected since there are fewer in-sync replicas than required.")               \
    X(NOT_ENOUGH_REPLICAS_AFTER_APPEND, 20, 1,                                                     \
      "Messages are written to the log, but to fewer in-sync replicas than required.")             \
    X(INVALID_REQUIRED_ACKS, 21, 0,                                                                \
      "Produce request specified an invalid value for required acks.")                             \
    X(ILLEGAL_GENERATION, 22, 0, "Specified group generation id is not valid.")                    \
    X(INCONSISTENT_GROUP_PROTOCOL, 23, 0,                                                          \
      "The group member's supported protocols are incompatible with those of existing members or " \
      "first group member tried to join with empty protocol type or empty protocol list.")         \
    X(INVALID_GROUP_ID, 24, 0, "The configured groupId is invalid.")                               \
    X(UNKNOWN_MEMBER_ID, 25, 0, "The coordinator is not aware of this member.")                    \
    X(INVALID_SESSION_TIMEOUT, 26, 0,                                                              \
      "The session timeout is not within the range allowed by the broker.")                        \
    X(REBALANCE_IN_PROGRESS, 27, 0, "The group is rebalancing, so a rejoin is needed.")            \
    X(INVALID_COMMIT_OFFSET_SIZE, 28, 0, "The committing offset data size is not valid.")          \
    X(TOPIC_AUTHORIZATION_FAILED, 29, 0, "Topic authorization failed.")                            \
    X(GROUP_AUTHORIZATION_FAILED, 30, 0, "Group authorization failed.")                            \
    X(CLUSTER_AUTHORIZATION_FAILED, 31, 0, "Cluster authorization failed.")                        \
    X(INVALID_TIMESTAMP, 32, 0, "The timestamp of the message is out of acceptable range.")        \
    X(UNSUPPORTED_SASL_MECHANISM, 33, 0,                                                           \
      "The broker does not support the requested SASL mechanism.")                                 \
    X(ILLEGAL_SASL_STATE, 34, 0, "Request is not valid given the current SASL state.")             \
    X(UNSUPPORTED_VERSION, 35, 0, "The version of API is not supported.")                          \
    X(TOPIC_ALREADY_EXISTS, 36, 0, "Topic with this name already exists.")                         \
    X(INVALID_PARTITIONS, 37, 0, "Number of partitions is below 1.")                               \
    X(INVALID_REPLICATION_FACTOR, 38, 0,                                                           \
      "Replication factor is below 1 or larger than the number of available brokers.")             \
    X(INVALID_REPLICA_ASSIGNMENT, 39, 0, "Replica assignment is invalid.")                         \
    X(INVALID_CONFIG, 40, 0, "Configuration is invalid.")                                          \
    X(NOT_CONTROLLER, 41, 1, "This is not the correct controller for this cluster.")               \
    X(INVALID_REQUEST, 42, 0,                                                                      \
      "This most likely occurs because of a request being malformed by the client library or the " \
      "message was sent to an incompatible broker.")                                               \
    X(UNSUPPORTED_FOR_MESSAGE_FORMAT, 43, 0,                                                       \
      "The message format version on the broker does not support the request.")                    \
    X(POLICY_VIOLATION, 44, 0, "Request parameters do not satisfy the configured policy.")         \
    X(OUT_OF_ORDER_SEQUENCE_NUMBER, 45, 0, "The broker received an out of order sequence number.") \
    X(DUPLICATE_SEQUENCE_NUMBER, 46, 0, "The broker received a duplicate sequence number.")        \
    X(INVALID_PRODUCER_EPOCH, 47, 0, "Producer attempted to produce with an old epoch.")           \
    X(INVALID_TXN_STATE, 48, 0,                                                                    \
      "The producer attempted a transactional operation in an invalid state.")                     \
    X(INVALID_PRODUCER_ID_MAPPING, 49, 0,                                                          \
      "The producer attempted to use a producer id which is not currently assigned to its "        \
      "transactional id.")                                                                         \
    X(INVALID_TRANSACTION_TIMEOUT, 50, 0,                                                          \
      "The transaction timeout is larger than the maximum value allowed by the broker.")           \
    X(CONCURRENT_TRANSACTIONS, 51, 1,                                                              \
      "The producer attempted to update a transaction while another concurrent operation on the "  \
      "same transaction was ongoing.")                                                             \
    X(TRANSACTION_COORDINATOR_FENCED, 52, 0,                                                       \
      "Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the "      \
      "current coordinator for a given producer.")                                                 \
    X(TRANSACTIONAL_ID_AUTHORIZATION_FAILED, 53, 0, "Transactional Id authorization failed.")      \
    X(SECURITY_DISABLED, 54, 0, "Security features are disabled.")                                 \
    X(OPERATION_NOT_ATTEMPTED, 55, 0, "The broker did not attempt to execute this operation.")     \
    X(KAFKA_STORAGE_ERROR, 56, 1, "Disk error when trying to access log file on the disk.")        \
    X(LOG_DIR_NOT_FOUND, 57, 0,                                                                    \
      "The user-specified log directory is not found in the broker config.")                       \
    X(SASL_AUTHENTICATION_FAILED, 58, 0, "SASL Authentication failed.")                            \
    X(UNKNOWN_PRODUCER_ID, 59, 0,                                                                  \
      "This exception is raised by the broker if it could not locate the producer metadata "       \
      "associated with the producerId in question.")                                               \
    X(REASSIGNMENT_IN_PROGRESS, 60, 0, "A partition reassignment is in progress.")                 \
    X(DELEGATION_TOKEN_AUTH_DISABLED, 61, 0, "Delegation Token feature is not enabled.")           \
    X(DELEGATION_TOKEN_NOT_FOUND, 62, 0, "Delegation Token is not found on server.")               \
    X(DELEGATION_TOKEN_OWNER_MISMATCH, 63, 0, "Specified Principal is not valid Owner/Renewer.")   \
    X(DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, 64, 0,                                                 \
      "Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels and on "          \
      "delegation token authenticated channels.")                                                  \
    X(DELEGATION_TOKEN_AUTHORIZATION_FAILED, 65, 0, "Delegation Token authorization failed.")      \
    X(DELEGATION_TOKEN_EXPIRED, 66, 0, "Delegation Token is expired.")                             \
    X(INVALID_PRINCIPAL_TYPE, 67, 0, "Supplied principalType is not supported.")                   \
    X(NON_EMPTY_GROUP, 68, 0, "The group is not empty.")                                           \
    X(GROUP_ID_NOT_FOUND, 69, 0, "The group id does not exist.")                                   \
    X(FETCH_SESSION_ID_NOT_FOUND, 70, 1, "The fetch session ID was not found.")                    \
    X(INVALID_FETCH_SESSION_EPOCH, 71, 1, "The fetch session epoch is invalid.")                   \
    X(LISTENER_NOT_FOUND, 72, 1,                                                                   \
      "There is no listener on the leader broker that matches the listener on which metadata "     \
      "request was processed.")                                                                    \
    X(TOPIC_DELETION_DISABLED, 73, 0, "Topic deletion is disabled.")                               \
    X(FENCED_LEADER_EPOCH, 74, 1,                                                                  \
      "The leader epoch in the request is older than the epoch on the broker.")                    \
    X(UNKNOWN_LEADER_EPOCH, 75, 1,                                                                 \
      "The leader epoch in the request is newer than the epoch on the broker.")                    \
    X(UNSUPPORTED_COMPRESSION_TYPE, 76, 0,                                                         \
      "The requesting client does not support the compression type of given partition.")           \
    X(STALE_BROKER_EPOCH, 77, 0, "Broker epoch has changed.")                                      \
    X(OFFSET_NOT_AVAILABLE, 78, 1,                                                                 \
      "The leader high watermark has not caught up from a recent leader election so the offsets "  \
      "cannot be guaranteed to be monotonically increasing.")                                      \
    X(MEMBER_ID_REQUIRED, 79, 0,                                                                   \
      "The group member needs to have a valid member id before actually entering a consumer "      \
      "group.")                                                                                    \
    X(PREFERRED_LEADER_NOT_AVAILABLE, 80, 1, "The preferred leader was not available.")            \
    X(GROUP_MAX_SIZE_REACHED, 81, 0, "The consumer group has reached its max size.")               \
    X(FENCED_INSTANCE_ID, 82, 0,                                                                   \
      "The broker rejected this static consumer since another consumer with the same "             \
      "group.instance.id has registered with a different member.id.")                              \
    X(ELIGIBLE_LEADERS_NOT_AVAILABLE, 83, 1,                                                       \
      "Eligible topic partition leaders are not available.")                                       \
    X(ELECTION_NOT_NEEDED, 84, 1, "Leader election not needed for topic partition.")               \
    X(NO_REASSIGNMENT_IN_PROGRESS, 85, 0, "No partition reassignment is in progress.")             \
    X(GROUP_SUBSCRIBED_TO_TOPIC, 86, 0,                                                            \
      "Deleting offsets of a topic is forbidden while the consumer group is actively subscribed "  \
      "to it.")                                                                                    \
    X(INVALID_RECORD, 87, 0,                                                                       \
      "This record has failed the validation on broker and hence will be rejected.")               \
    X(UNSTABLE_OFFSET_COMMIT, 88, 1, "There are unstable offsets that need to be cleared.")        \
    X(THROTTLING_QUOTA_EXCEEDED, 89, 1, "The throttling quota has been exceeded.")                 \
    X(PRODUCER_FENCED, 90, 0,                                                                      \
      "There is a newer producer with the same transactionalId which fences the current one.")     \
    X(RESOURCE_NOT_FOUND, 91, 0,                                                                   \
      "A request illegally referred to a resource that does not exist.")                           \
    X(DUPLICATE_RESOURCE, 92, 0, "A request illegally referred to the same resource twice.")       \
    X(UNACCEPTABLE_CREDENTIAL, 93, 0,                                                              \
      "Requested credential would not meet criteria for acceptability.")                           \
    X(INCONSISTENT_VOTER_SET, 94, 0,                                                               \
      "Indicates that either the sender or recipient of a voter-only request is not one of the "   \
      "expected voters.")                                                                          \
    X(INVALID_UPDATE_VERSION, 95, 0, "The given update version was invalid.")                      \
    X(FEATURE_UPDATE_FAILED, 96, 0,                                                                \
      "Unable to update finalized features due to an unexpected server error.")                    \
    X(PRINCIPAL_DESERIALIZATION_FAILURE, 97, 0,                                                    \
      "Request principal deserialization failed during forwarding.")                               \
    X(SNAPSHOT_NOT_FOUND, 98, 0, "Requested snapshot was not found.")                              \
    X(POSITION_OUT_OF_RANGE, 99, 0,                                                                \
      "Requested position is not greater than or equal to zero, and less than the size of the "    \
      "snapshot.")                                                                                 \
    X(UNKNOWN_TOPIC_ID, 100, 1, "This server does not host this topic ID.")                        \
    X(DUPLICATE_BROKER_REGISTRATION, 101, 0, "This broker ID is already in use.")                  \
    X(BROKER_ID_NOT_REGISTERED, 102, 0, "The given broker ID was not registered.")                 \
    X(INCONSISTENT_TOPIC_ID, 103, 1,                                                               \
      "The log's topic ID did not match the topic ID in the request.")                             \
    X(INCONSISTENT_CLUSTER_ID, 104, 0,                                                             \
      "The clusterId in the request does not match that found on the server.")                     \
    X(TRANSACTIONAL_ID_NOT_FOUND, 105, 0, "The transactionalId could not be found.")               \
    X(FETCH_SESSION_TOPIC_ID_ERROR, 106, 1,                                                        \
      "The fetch session encountered inconsistent topic ID usage.")                                \
    X(INELIGIBLE_REPLICA, 107, 0, "The new ISR contains at least one ineligible replica.")         \
    X(NEW_LEADER_ELECTED, 108, 0,                                                                  \
      "The AlterPartition request successfully updated the partition state but the leader has "    \
      "changed.")                                                                                  \
    X(OFFSET_MOVED_TO_TIERED_STORAGE, 109, 0, "The requested offset is moved to tiered storage.")  \
    X(FENCED_MEMBER_EPOCH, 110, 0, "The member epoch is fenced by the group coordinator.")         \
    X(UNRELEASED_INSTANCE_ID, 111, 0,                                                              \
      "The instance ID is still used by another member in the consumer group.")                    \
    X(UNSUPPORTED_ASSIGNOR, 112, 0,                                                                \
      "The assignor or its version range is not supported by the consumer group.")                 \
    X(STALE_MEMBER_EPOCH, 113, 0, "The member epoch is stale.")                                    \
    X(MISMATCHED_ENDPOINT_TYPE, 114, 0, "The request was sent to an endpoint of the wrong type.")  \
    X(UNSUPPORTED_ENDPOINT_TYPE, 115, 0, "This endpoint type is not supported yet.")               \
    X(UNKNOWN_CONTROLLER_ID, 116, 0, "This controller ID is not known.")                           \
    X(UNKNOWN_SUBSCRIPTION_ID, 117, 0,                                                             \
      "Client sent a push telemetry request with an invalid or outdated subscription ID.")         \
    X(TELEMETRY_TOO_LARGE, 118, 0,                                                                 \
      "Client sent a push telemetry request larger than the maximum size the broker will accept.") \
    X(INVALID_REGISTRATION, 119, 0,                                                                \
      "The controller has considered the broker registration to be invalid.")                      \
    X(TRANSACTION_ABORTABLE, 120, 0, "The server encountered an error with the transaction.")      \
    X(INVALID_RECORD_STATE, 121, 0, "The record state is invalid.")                                \
    X(SHARE_SESSION_NOT_FOUND, 122, 1, "The share session was not found.")                         \
    X(INVALID_SHARE_SESSION_EPOCH, 123, 1, "The share session epoch is invalid.")                  \
    X(FENCED_STATE_EPOCH, 124, 0,                                                                  \
      "The share coordinator rejected the request because the share-group state epoch did not "    \
      "match.")                                                                                    \
    X(INVALID_VOTER_KEY, 125, 0, "The voter key doesn't match the receiving replica's key.")       \
    X(DUPLICATE_VOTER, 126, 0, "The voter is already part of the set of voters.")                  \
    X(VOTER_NOT_FOUND, 127, 0, "The voter is not part of the set of voters.")

typedef enum trib_kafka_err {
#define TRIB_KAFKA_ERR_ENUM_(name, code, retriable, msg) TRIB_KAFKA_##name = (code),
    TRIB_KAFKA_ERROR_LIST(TRIB_KAFKA_ERR_ENUM_)
#undef TRIB_KAFKA_ERR_ENUM_
} trib_kafka_err_t;

/* "UNKNOWN_TOPIC_OR_PARTITION"; "UNKNOWN" for a code not in the list. */
const char *trib_kafka_err_name(int16_t code);
/* Kafka's description of the error; never NULL. */
const char *trib_kafka_err_message(int16_t code);
bool trib_kafka_err_retriable(int16_t code);
/* True if the code is in the list. */
bool trib_kafka_err_known(int16_t code);

#endif
