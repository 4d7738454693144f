// SPDX-License-Identifier: Apache-2.0
// kafkajs 2.2.4 producer and consumer for the failover test (0684).
//
//   node failover.js produce BOOTSTRAP TOPIC PARTITIONS  "KEY VALUE" lines on stdin
//   node failover.js consume BOOTSTRAP TOPIC N           until N distinct values
//
// Prints one JSON object a line on stdout ("t": seconds since start):
//   {"handed": n}            records passed to producer.send() so far
//   {"acked": [values]}      a producer.send() that resolved
//   {"got": [values]}        values a consumer's eachBatch was given
//   {"log": text}            a kafkajs WARN/ERROR log line, a consumer crash
//   {"error": text}          a failure the client gave up on (then exit 1)
//   {"done": true}           the producer sent everything / the consumer read N
// TRIB_KJS_DEBUG=1 writes kafkajs's debug log to stderr.
//
// Producer: idempotent, acks=-1, one request in flight, and
//   retry { retries: Number.MAX_SAFE_INTEGER }: what kafkajs means an
//     idempotent producer to have (it warns otherwise), but Kafka#producer()
//     always passes a retry object (src/index.js:124), so the unlimited
//     default of src/producer/index.js:43 never applies and it gives up
//     after 5 retries (about 9 s), before a SIGKILLed leader's ZooKeeper
//     session has expired and the partition has a new leader;
//   one partition per send(): records are given an explicit partition
//     (round robin) and each send() carries one partition's records. A
//     send() spanning partitions on several brokers can resolve without
//     storing some of them: when one broker's request fails, the retry asks
//     only the brokers that have not answered yet
//     (src/producer/sendMessages.js:56-65, the responsePerBroker map kept
//     across retries), so a partition whose leader moved to a broker that
//     already answered for another partition is never sent again
//     (kafkajs issue 1303, pull request 1798). TRIB_KJS_MIXED_SENDS=1 sends
//     every partition in one send() to show it.
// Consumer: a group consumer (kafkajs has no manual assignment) from the
// beginning, no offset commits, kafkajs's defaults otherwise. It does not
// refresh its metadata when the leader it fetches from refuses connections
// (src/consumer/consumerGroup.js:553-594 rethrows KafkaJSConnectionError);
// the runner retries with the same metadata, then the consumer "crashes"
// and restarts with fresh metadata (src/consumer/runner.js:107-170,
// src/consumer/index.js:246-300), which is how it resumes.
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, logLevel } = require('kafkajs');

const t0 = Date.now();
const secs = () => (Date.now() - t0) / 1000;
const out = (o) => process.stdout.write(`${JSON.stringify(Object.assign({ t: secs() }, o))}\n`);
const DEBUG = !!process.env.TRIB_KJS_DEBUG;
const logCreator = () => ({ namespace, level, log }) => {
  if (DEBUG) process.stderr.write(`+${secs()} ${namespace} ${log.message} ${JSON.stringify(log)}\n`);
  if (level <= logLevel.WARN) {
    const { message, timestamp, logger, stack, ...rest } = log;
    out({ log: `${namespace} ${message} ${JSON.stringify(rest)}` });
  }
};

const MIXED_SENDS = !!process.env.TRIB_KJS_MIXED_SENDS;

function client(bootstrap, id) {
  return new Kafka({
    clientId: id,
    brokers: bootstrap.split(','),
    logLevel: DEBUG ? logLevel.DEBUG : logLevel.WARN,
    logCreator,
  });
}

async function produce(bootstrap, topic, partitions) {
  const producer = client(bootstrap, 'kjs-failover-producer').producer({
    idempotent: true,
    maxInFlightRequests: 1,
    retry: { retries: Number.MAX_SAFE_INTEGER },
  });
  await producer.connect();
  let queue = [];
  let eof = false;
  let wake = null;
  let rest = '';
  let handed = 0;
  let nread = 0;
  process.stdin.on('data', (d) => {
    const lines = (rest + d.toString()).split('\n');
    rest = lines.pop();
    for (const l of lines) {
      const sp = l.indexOf(' ');
      queue.push({ key: l.slice(0, sp), value: l.slice(sp + 1), partition: nread++ % partitions });
    }
    if (wake) wake();
  });
  process.stdin.on('end', () => {
    eof = true;
    if (wake) wake();
  });
  for (;;) {
    if (queue.length === 0) {
      if (eof) break;
      await new Promise((r) => { wake = r; });
      wake = null;
      continue;
    }
    const chunk = queue.slice(0, 100);
    queue = queue.slice(chunk.length);
    handed += chunk.length;
    out({ handed });
    // One partition per send(): see the top of this file.
    const groups = MIXED_SENDS ? [chunk]
      : [...Array(partitions).keys()].map((p) => chunk.filter((m) => m.partition === p))
        .filter((g) => g.length);
    for (const messages of groups) {
      await producer.send({ topic, acks: -1, messages });
      out({ acked: messages.map((m) => m.value) });
    }
  }
  await producer.disconnect();
  out({ done: true });
}

async function consume(bootstrap, topic, n) {
  const consumer = client(bootstrap, 'kjs-failover-consumer').consumer({
    groupId: `kjs-failover-${topic}`,
  });
  const seen = new Set();
  let finished = false;
  const finish = async () => {
    if (finished) return;
    finished = true;
    await consumer.disconnect();
    out({ done: true });
    process.exit(0);
  };
  consumer.on(consumer.events.CRASH, (e) => {
    const { error, restart } = e.payload;
    out({ log: `crash: ${error.name}: ${error.message}, restart ${restart}` });
    if (!restart) {
      out({ error: `consumer crashed: ${error.name}: ${error.message}` });
      process.exit(1);
    }
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      const values = batch.messages.map((m) => m.value.toString());
      values.forEach((v) => seen.add(v));
      if (DEBUG) {
        process.stderr.write(`+${secs()} batch p${batch.partition} offsets ${batch.firstOffset()}..`
          + `${batch.lastOffset()} high watermark ${batch.highWatermark}\n`);
      }
      out({ got: values });
      if (seen.size >= n) setImmediate(finish);
    },
  });
}

const [mode, bootstrap, topic, n] = process.argv.slice(2);
const run = mode === 'produce' ? produce(bootstrap, topic, Number(n))
  : mode === 'consume' ? consume(bootstrap, topic, Number(n))
    : Promise.reject(new Error(`unknown mode '${mode}'`));
run.catch((e) => {
  out({ error: `${e.name}: ${e.message}` });
  process.exit(1);
});
