// Preloaded into NNI's Node.js manager (NODE_OPTIONS="--require .../loopback.js"):
// NNI 3.0 calls server.listen(port) with no host, which listens on every interface.
// A listen() given a port and no host is sent to 127.0.0.1 instead.
'use strict';
const net = require('net');
const originalListen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    if (args.length === 1 || typeof args[1] === 'function') {
      args.splice(1, 0, '127.0.0.1');
    }
  } else if (args[0] && typeof args[0] === 'object' && 'port' in args[0] && !args[0].host) {
    args[0] = Object.assign({}, args[0], { host: '127.0.0.1' });
  }
  return originalListen.apply(this, args);
};
