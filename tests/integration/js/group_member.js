// SPDX-License-Identifier: Apache-2.0
// A kafkajs 2.2.4 group member that commits what it read (test 0632).
//
//   node group_member.js BOOTSTRAP TOPIC GROUP
//
// The group's protocol is "roundrobin", the name librdkafka and
// kafka-python give their round-robin assignors (kafkajs calls its own
// RoundRobinAssigner), so that the three clients can share a group: the
// assigner below deals every partition of the subscribed topics to the
// members sorted by id, in turn, whichever client leads.
// Reads TOPIC in GROUP from the committed offsets (the beginning without
// one); after each batch it commits the offset after the batch's last
// record (commitOffsets, autoCommit off) and waits 200 ms. Runs until
// its stdin closes, then leaves the group. One JSON object a line on
// stdout ("t": wall-clock milliseconds):
//   {"got": [partition, [offsets]]}   records eachBatch was given
//   {"acked": [partition, offset]}    a commit that resolved
//   {"failed": text}                  a commit that threw (kafkajs then
//                                     restarts the consumer: from the
//                                     committed offsets)
//   {"log": text}                     a kafkajs WARN/ERROR line, a crash
//   {"done": true}                    left the group
// TRIB_KJS_DEBUG=1 writes kafkajs's debug log to stderr.
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, logLevel, AssignerProtocol } = require('kafkajs');

const RoundRobin = ({ cluster }) => ({
  name: 'roundrobin',
  version: 0,
  async assign({ members, topics }) {
    const ids = members.map((m) => m.memberId).sort();
    const assignment = {};
    ids.forEach((id) => { assignment[id] = {}; });
    let i = 0;
    for (const topic of [...topics].sort()) {
      const parts = cluster.findTopicPartitionMetadata(topic).map((m) => m.partitionId)
        .sort((a, b) => a - b);
      for (const p of parts) {
        const id = ids[i % ids.length];
        i += 1;
        (assignment[id][topic] = assignment[id][topic] || []).push(p);
      }
    }
    return ids.map((memberId) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({
        version: 0, assignment: assignment[memberId], userData: Buffer.alloc(0),
      }),
    }));
  },
  protocol({ topics }) {
    return {
      name: 'roundrobin',
      metadata: AssignerProtocol.MemberMetadata.encode({
        version: 0, topics, userData: Buffer.alloc(0),
      }),
    };
  },
});

const out = (o) => process.stdout.write(`${JSON.stringify(Object.assign({ t: Date.now() }, o))}\n`);
const DEBUG = !!process.env.TRIB_KJS_DEBUG;
const logCreator = () => ({ namespace, level, log }) => {
  if (DEBUG) process.stderr.write(`${Date.now()} ${namespace} ${log.message} ${JSON.stringify(log)}\n`);
  if (level <= logLevel.WARN) {
    const { message } = log;
    out({ log: `${namespace} ${message}` });
  }
};

async function main() {
  const [bootstrap, topic, group] = process.argv.slice(2);
  const kafka = new Kafka({
    clientId: 'kjs-group-member',
    brokers: bootstrap.split(','),
    logLevel: DEBUG ? logLevel.DEBUG : logLevel.WARN,
    logCreator,
    // Short retries: kafkajs follows a new coordinator only after its
    // consumer crashed and restarted with fresh metadata (it retries the
    // dead one, "Broker N not found in the cached metadata"); with its
    // defaults that takes minutes.
    retry: { initialRetryTime: 300, maxRetryTime: 3000, retries: 4 },
  });
  const consumer = kafka.consumer({
    groupId: group, sessionTimeout: 10000, partitionAssigners: [RoundRobin],
  });
  consumer.on(consumer.events.CRASH, (e) => {
    const { error, restart } = e.payload;
    out({ log: `crash: ${error.name}: ${error.message}, restart ${restart}` });
    if (!restart) {
      out({ log: 'no restart: exiting' });
      process.exit(1);
    }
  });
  let stopping = false;
  process.stdin.on('data', () => {});
  process.stdin.on('end', async () => {
    stopping = true;
    try {
      await consumer.disconnect();
    } finally {
      out({ done: true });
      process.exit(0);
    }
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, heartbeat }) => {
      if (stopping || batch.messages.length === 0) return;
      const offs = batch.messages.map((m) => Number(m.offset));
      out({ got: [batch.partition, offs] });
      const next = String(offs[offs.length - 1] + 1);
      try {
        await consumer.commitOffsets([{ topic, partition: batch.partition, offset: next }]);
        out({ acked: [batch.partition, Number(next)] });
      } catch (e) {
        out({ failed: `${e.name}: ${e.message}` });
        throw e;
      }
      await heartbeat();
      await new Promise((r) => setTimeout(r, 200));
    },
  });
}

main().catch((e) => {
  out({ log: `fatal: ${e.name}: ${e.message}` });
  process.exit(1);
});
