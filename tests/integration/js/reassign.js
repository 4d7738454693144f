// SPDX-License-Identifier: Apache-2.0
// kafkajs's admin reassignment calls, for test 0614:
//   node reassign.js BROKERS alter TOPIC PARTITION ID,ID,...   AlterPartitionReassignments
//   node reassign.js BROKERS list                               ListPartitionReassignments
// prints the answer as one JSON line (exit 1 with the error on stderr).
const { Kafka, logLevel } = require('kafkajs')

const [brokers, cmd, topic, partition, replicas] = process.argv.slice(2)
const kafka = new Kafka({ clientId: 'reassign-0614', brokers: brokers.split(','), logLevel: logLevel.NOTHING })

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  try {
    if (cmd === 'alter') {
      await admin.alterPartitionReassignments({
        topics: [{ topic, partitionAssignment: [{ partition: Number(partition), replicas: replicas.split(',').map(Number) }] }]
      })
      console.log(JSON.stringify({ ok: true }))
    } else {
      const r = await admin.listPartitionReassignments({})
      console.log(JSON.stringify(r))
    }
  } finally {
    await admin.disconnect()
  }
}

main().catch(e => { console.error(String(e && e.stack ? e.stack : e)); process.exit(1) })
