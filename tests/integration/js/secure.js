// SPDX-License-Identifier: Apache-2.0
// kafkajs 2.2.4 over TLS and SASL for the security tests (07xx).
//
//   node secure.js BOOTSTRAP TOPIC N CA_FILE [MECHANISM USER PASSWORD]
//
// Connects with TLS (the collector checked against CA_FILE) and, when a
// mechanism is given (plain, scram-sha-256, scram-sha-512), SASL; sends N
// records with acks=-1, then reads them all back with a consumer group.
// Exit 0 when every record came back; 1 (with the reason) otherwise.
// With CLIENT_CERT and CLIENT_KEY in the environment (PEM files) it
// presents that client certificate (mTLS).
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, topic, n, caFile, mechanism, username, password] = process.argv.slice(2);
  const config = {
    clientId: 'tributary-it-secure',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    ssl: { ca: [fs.readFileSync(caFile, 'utf-8')], servername: 'localhost' },
    retry: { retries: 3 },
  };
  if (process.env.CLIENT_CERT) {
    config.ssl.cert = fs.readFileSync(process.env.CLIENT_CERT, 'utf-8');
    config.ssl.key = fs.readFileSync(process.env.CLIENT_KEY, 'utf-8');
  }
  if (mechanism) {
    config.sasl = { mechanism, username, password };
  }
  const kafka = new Kafka(config);
  const total = Number(n);
  const producer = kafka.producer();
  await producer.connect();
  const messages = [];
  for (let i = 0; i < total; i++) {
    messages.push({ key: `k${i % 5}`, value: `js-${i}` });
  }
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `${topic}-js`, sessionTimeout: 10000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Set();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${seen.size} of ${total} records`)),
                             60000);
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.add(message.value.toString());
        if (seen.size === total) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  console.log(`kafkajs: ${total} records through ${topic}`);
}

main().catch((e) => {
  console.error(`kafkajs: ${e.message}`);
  process.exit(1);
});
