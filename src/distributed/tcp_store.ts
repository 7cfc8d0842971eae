/**
 * The rendezvous key-value store that rank 0 serves for `env://` and `tcp://` (as torchrun's TCP
 * store): every rank's Gloo rendezvous (native/src/tcp_store.cc) sets its addresses and waits for
 * the others' here. It only runs during initProcessGroup's rendezvous and never keeps the process
 * alive (server and sockets are unref'd).
 *
 * Frames, in both directions big-endian:
 *   request  u8 op (1 set, 2 get) | u32 key length | key | u32 value length | value
 *            (get's value is a u32: how long to wait for the key, in ms)
 *   reply    u8 status (0 ok, 1 timed out, 2 error) | u32 length | bytes (get: the value; error: a message)
 */
import { createServer, type Server, type Socket } from 'node:net';

const SET = 1;
const GET = 2;
const OK = 0;
const TIMED_OUT = 1;
const ERROR = 2;
/** Frames above this are refused (rendezvous values are a few hundred bytes per rank). */
const MAX_FIELD = 64 * 1024 * 1024;

interface Waiter {
  socket: Socket;
  timer: NodeJS.Timeout;
}

export class TcpStoreServer {
  private readonly values = new Map<string, Buffer>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server) {}

  /** Listen on `port` on every interface. */
  static listen(port: number): Promise<TcpStoreServer> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      const store = new TcpStoreServer(server);
      server.on('connection', (socket) => store.accept(socket));
      server.once('error', (e: NodeJS.ErrnoException) => {
        reject(
          new Error(
            e.code === 'EADDRINUSE'
              ? `mx.distributed: rank 0 cannot serve the rendezvous store on port ${port}: it is in use (another job? choose another MASTER_PORT)`
              : `mx.distributed: rank 0 cannot serve the rendezvous store on port ${port}: ${e.message}`,
          ),
        );
      });
      server.listen(port, () => {
        server.unref();
        resolve(store);
      });
    });
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    for (const set of this.waiters.values()) for (const w of set) clearTimeout(w.timer);
    this.waiters.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    socket.unref();
    socket.setNoDelay(true);
    this.sockets.add(socket);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        const frame = parseFrame(pending);
        if (frame === null) break;
        if (frame === 'invalid') {
          reply(socket, ERROR, Buffer.from('malformed request'));
          socket.destroy();
          return;
        }
        pending = pending.subarray(frame.length);
        this.handle(socket, frame.op, frame.key, frame.value);
      }
    });
    const forget = () => {
      this.sockets.delete(socket);
      for (const set of this.waiters.values()) {
        for (const w of set) {
          if (w.socket === socket) {
            clearTimeout(w.timer);
            set.delete(w);
          }
        }
      }
    };
    socket.on('close', forget);
    socket.on('error', forget);
  }

  private handle(socket: Socket, op: number, key: string, value: Buffer): void {
    if (op === SET) {
      this.values.set(key, value);
      reply(socket, OK, Buffer.alloc(0));
      const waiting = this.waiters.get(key);
      if (waiting) {
        this.waiters.delete(key);
        for (const w of waiting) {
          clearTimeout(w.timer);
          reply(w.socket, OK, value);
        }
      }
      return;
    }
    if (op === GET) {
      const known = this.values.get(key);
      if (known) {
        reply(socket, OK, known);
        return;
      }
      const timeoutMs = value.length >= 4 ? value.readUInt32BE(0) : 0;
      let set = this.waiters.get(key);
      if (!set) this.waiters.set(key, (set = new Set()));
      const waiters = set;
      const waiter: Waiter = {
        socket,
        timer: setTimeout(() => {
          waiters.delete(waiter);
          reply(socket, TIMED_OUT, Buffer.alloc(0));
        }, timeoutMs),
      };
      waiter.timer.unref();
      waiters.add(waiter);
      return;
    }
    reply(socket, ERROR, Buffer.from(`unknown op ${op}`));
  }
}

type Frame = { op: number; key: string; value: Buffer; length: number };

function parseFrame(buf: Buffer): Frame | null | 'invalid' {
  if (buf.length < 5) return null;
  const keyLength = buf.readUInt32BE(1);
  if (keyLength > MAX_FIELD) return 'invalid';
  if (buf.length < 9 + keyLength) return null;
  const valueLength = buf.readUInt32BE(5 + keyLength);
  if (valueLength > MAX_FIELD) return 'invalid';
  const length = 9 + keyLength + valueLength;
  if (buf.length < length) return null;
  return {
    op: buf[0]!,
    key: buf.toString('utf8', 5, 5 + keyLength),
    value: Buffer.from(buf.subarray(9 + keyLength, length)),
    length,
  };
}

function reply(socket: Socket, status: number, body: Buffer): void {
  if (socket.destroyed) return;
  const head = Buffer.alloc(5);
  head[0] = status;
  head.writeUInt32BE(body.length, 1);
  socket.write(Buffer.concat([head, body]));
}
