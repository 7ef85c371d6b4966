// What smoke.js and arm64.js send through a server: `text` and the client's FIN, then every byte
// until the server's FIN. scripts/check-package.sh copies it next to them.
const { connect } = require('node:net');

module.exports = function echo(port, text) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(text));
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => (reply += d));
    socket.on('end', () => resolve(reply));
    socket.on('error', reject);
  });
};
