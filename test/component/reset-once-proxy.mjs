// TCP proxy for the component self-test: resets the first connection (RST, as a throttled sshd does), then
// forwards every later one to the real sshd. Usage: node reset-once-proxy.mjs LISTEN_PORT TARGET_PORT READY_FILE
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import process from 'node:process';

const [listenPort, targetPort, readyFile] = process.argv.slice(2);
if (!listenPort || !targetPort || !readyFile) {
  process.stderr.write('usage: node reset-once-proxy.mjs LISTEN_PORT TARGET_PORT READY_FILE\n');
  process.exit(2);
}

let connections = 0;
const server = net.createServer((client) => {
  connections += 1;
  if (connections === 1) {
    process.stderr.write('proxy: resetting connection 1\n');
    client.resetAndDestroy();
    return;
  }
  process.stderr.write(`proxy: forwarding connection ${connections}\n`);
  const upstream = net.connect(Number(targetPort), '127.0.0.1');
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});

server.listen(Number(listenPort), '127.0.0.1', () => writeFileSync(readyFile, `${process.pid}\n`));
