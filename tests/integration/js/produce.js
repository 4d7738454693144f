// SPDX-License-Identifier: Apache-2.0
// kafkajs 2.2.4 producer for the integration tests.
//
//   node produce.js BOOTSTRAP TOPIC CODEC N_KEYS PER_KEY
//
// Sends N_KEYS*PER_KEY keyed records ("key-K" -> "key-K-SEQ", keys
// interleaved, SEQ increasing per key) with an idempotent producer
// (acks=-1, one request in flight) and the codec (none, gzip, snappy: the
// codecs kafkajs has here; lz4 and zstd need native codec modules). kafkajs
// has no manual assignment (every consumer is a group consumer), so the
// test reads what it wrote with kcat and the tributary CLI.
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs');
const SnappyCodec = require('kafkajs-snappy');

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
const CODECS = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
};

async function main() {
  const [bootstrap, topic, codecName, nKeys, perKey] = process.argv.slice(2);
  if (!(codecName in CODECS)) {
    throw new Error(`kafkajs here has no codec '${codecName}'`);
  }
  const kafka = new Kafka({
    clientId: 'tributary-it',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
  });
  const admin = kafka.admin();
  await admin.connect();
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  const parts = md.topics[0].partitions.length;
  await admin.disconnect();

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const total = Number(nKeys) * Number(perKey);
  let batch = [];
  let sent = 0;
  for (let seq = 0; seq < Number(perKey); seq++) {
    for (let k = 0; k < Number(nKeys); k++) {
      batch.push({ key: `key-${k}`, value: `key-${k}-${seq}` });
      if (batch.length === 1000) {
        await producer.send({ topic, acks: -1, compression: CODECS[codecName], messages: batch });
        sent += batch.length;
        batch = [];
      }
    }
  }
  if (batch.length) {
    await producer.send({ topic, acks: -1, compression: CODECS[codecName], messages: batch });
    sent += batch.length;
  }
  await producer.disconnect();
  if (sent !== total) {
    throw new Error(`sent ${sent} of ${total}`);
  }
  console.error(`kafkajs: ${sent} records to ${topic} (${parts} partitions), ${codecName}, idempotent`);
}

main().catch((e) => {
  console.error(`kafkajs: ${e.stack || e}`);
  process.exit(1);
});
