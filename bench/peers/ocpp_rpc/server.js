// Peer 3: a central system on the Node.js `ocpp-rpc` package, written as its README's server example.
//
//     node bench/peers/ocpp_rpc/server.js --host 127.0.0.1 --port P [--ready-file F] [--backlog B]
//
// The command line and the ready file are the Python peers' (bench/peers/central.py): `--port 0` takes a free
// port, and once listening the ready file gets {pid, host, port, server, nofile}, written atomically.
//
// An RPCServer with `strictMode: true` for both subprotocols: the package validates every incoming CALL and every
// reply of ours against its bundled OCPP JSON schemas (ajv) and answers a failing one with a CallError. The
// handlers answer what `ampgate sim` sends, with the Python peers' answers: BootNotification Accepted with
// interval 300, Heartbeat, StatusNotification, Authorize (any id tag Accepted), 1.6 StartTransaction (an id from
// one counter per process, Accepted), MeterValues, StopTransaction (idTagInfo when the request has an idTag),
// 2.0.1 TransactionEvent (idTokenInfo Accepted when the event carries an idToken), FirmwareStatusNotification;
// anything else is NotImplemented, as in the README. Like the Python peers it stores nothing: every answer comes
// from memory.
//
// Two things differ from the README's example, both configuration a deployment for thousands of chargers sets:
// the HTTP server is our own (the README's "bring your own HTTP server" pattern, built like `server.listen()`
// builds its own) so that it listens with the Python peers' backlog, since Node's default of 511 would make a
// boot storm time the kernel's 1 s SYN retry rather than the server; and the auth callback refuses (400) a client
// that offers neither OCPP subprotocol, where the package would otherwise accept it with none. Any charger id and
// any password are accepted.
//
// One process, one event loop. Node cannot raise its own open-file limit: whoever starts it raises the soft limit
// to the hard one (bench/compare.py does), and the ready file reports the soft limit this process runs under.
// At that limit libuv accepts and at once closes each further connection, so the peer holds what it has.

'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const { RPCServer, createRPCError } = require('ocpp-rpc');

const SUBPROTOCOLS = ['ocpp1.6', 'ocpp2.0.1'];
// The interval ampgate gives too, so the simulated chargers heartbeat at the same pace against every system.
const HEARTBEAT_INTERVAL = 300;
// The Python peers' listen backlog (bench/peers/central.py says why).
const LISTEN_BACKLOG = 4096;

function parseArgs(argv) {
    const args = { host: '127.0.0.1', port: 9000, readyFile: null, backlog: LISTEN_BACKLOG };
    const names = { '--host': 'host', '--port': 'port', '--ready-file': 'readyFile', '--backlog': 'backlog' };
    for (let i = 0; i < argv.length; i += 2) {
        const key = names[argv[i]];
        if (key === undefined || i + 1 >= argv.length) {
            console.error(`usage: server.js [--host H] [--port P] [--ready-file F] [--backlog B] (got ${argv[i]})`);
            process.exit(2);
        }
        args[key] = argv[i + 1];
    }
    args.port = Number(args.port);
    args.backlog = Number(args.backlog);
    return args;
}

// The soft RLIMIT_NOFILE of this process: Node has no getrlimit, Linux shows it in /proc.
function openFileLimit() {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    return Number(line.split(/\s+/)[3]);
}

function log(level, message) {
    // The Python peers' log format: bench/compare.py counts the lines with ` ERROR `.
    process.stdout.write(`${new Date().toISOString()} peer.ocpp-rpc ${level} ${message}\n`);
}

const now = () => new Date().toISOString();

// One counter per server process: StartTransaction ids are unique over all its chargers (and remembered nowhere).
let lastTransactionId = 0;

function handle16(client) {
    client.handle('BootNotification', () => ({ status: 'Accepted', interval: HEARTBEAT_INTERVAL, currentTime: now() }));
    client.handle('Heartbeat', () => ({ currentTime: now() }));
    client.handle('StatusNotification', () => ({}));
    client.handle('Authorize', () => ({ idTagInfo: { status: 'Accepted' } }));
    client.handle('StartTransaction', () => ({
        transactionId: ++lastTransactionId,
        idTagInfo: { status: 'Accepted' },
    }));
    client.handle('MeterValues', () => ({}));
    client.handle('StopTransaction', ({ params }) =>
        params.idTag === undefined ? {} : { idTagInfo: { status: 'Accepted' } });
    client.handle('FirmwareStatusNotification', () => ({}));
}

function handle201(client) {
    client.handle('BootNotification', () => ({ status: 'Accepted', interval: HEARTBEAT_INTERVAL, currentTime: now() }));
    client.handle('Heartbeat', () => ({ currentTime: now() }));
    client.handle('StatusNotification', () => ({}));
    client.handle('Authorize', () => ({ idTokenInfo: { status: 'Accepted' } }));
    // The spec requires idTokenInfo in the response when the request carried an idToken.
    client.handle('TransactionEvent', ({ params }) =>
        params.idToken === undefined ? {} : { idTokenInfo: { status: 'Accepted' } });
    client.handle('MeterValues', () => ({}));
    client.handle('FirmwareStatusNotification', () => ({}));
}

async function main() {
    const args = parseArgs(process.argv.slice(2));
    const server = new RPCServer({ protocols: SUBPROTOCOLS, strictMode: true });

    server.auth((accept, reject, handshake) => {
        if (!SUBPROTOCOLS.some((p) => handshake.protocols.has(p))) {
            reject(400, 'no OCPP subprotocol offered');
            return;
        }
        accept();
    });

    server.on('client', (client) => {
        if (client.protocol === 'ocpp1.6') {
            handle16(client);
        } else {
            handle201(client);
        }
        client.handle(({ method }) => {
            throw createRPCError('NotImplemented', `${method} is not handled`);
        });
        client.on('strictValidationFailure', ({ error }) => {
            log('ERROR', `${client.identity}: strict validation failed: ${error.message}`);
        });
        client.on('badMessage', ({ error }) => {
            log('ERROR', `${client.identity}: bad message: ${error.message}`);
        });
    });
    server.on('error', (err) => log('ERROR', `server: ${err.message}`));

    // As RPCServer.listen() builds its server, with the backlog set.
    const httpServer = http.createServer({ noDelay: true }, (req, res) => {
        res.statusCode = 404;
        res.end();
    });
    httpServer.on('upgrade', server.handleUpgrade);
    httpServer.on('error', (err) => log('ERROR', `http server: ${err.message}`));
    await new Promise((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen({ port: args.port, host: args.host, backlog: args.backlog }, resolve);
    });

    if (args.readyFile) {
        const version = require('ocpp-rpc/package.json').version;
        const info = {
            pid: process.pid,
            host: args.host,
            port: httpServer.address().port,
            server: `ocpp-rpc ${version} on Node.js ${process.versions.node}`,
            nofile: openFileLimit(),
        };
        const tmp = path.join(path.dirname(args.readyFile), `${path.basename(args.readyFile)}.tmp`);
        fs.writeFileSync(tmp, JSON.stringify(info));
        fs.renameSync(tmp, args.readyFile);
    }
}

main().catch((err) => {
    log('ERROR', err.stack || String(err));
    process.exit(1);
});
