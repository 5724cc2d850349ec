// A small browser-like WebSocket client (RFC 6455, text frames) over node:net, so the facade can
// be tested against the real local service from Node without npm packages. Like a browser it
// sends the page's Origin header, which Node's own WebSocket does not let us choose.
//
//   const WebSocket = webSocketClass('http://127.0.0.1:8080');
//   const ws = new WebSocket('ws://127.0.0.1:18520');  // onopen / onmessage / onerror / onclose
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Returns a WebSocket class whose connections carry `Origin: origin` (none when null). */
export function webSocketClass(origin) {
  return class MiniWebSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;

    constructor(url) {
      const u = new URL(url);
      if (u.protocol !== 'ws:') { throw new SyntaxError('only ws: URLs'); }
      this.url = url;
      this.readyState = 0;
      this.onopen = null;
      this.onmessage = null;
      this.onerror = null;
      this.onclose = null;
      this._buf = Buffer.alloc(0);
      this._frags = [];
      this._closeSent = false;
      const key = randomBytes(16).toString('base64');
      this._accept = createHash('sha1').update(key + GUID).digest('base64');
      this._sock = net.connect(Number(u.port || 80), u.hostname.replace(/^\[|\]$/g, ''));
      this._sock.on('connect', () => {
        const lines = [
          `GET ${u.pathname || '/'} HTTP/1.1`, `Host: ${u.host}`, 'Upgrade: websocket',
          'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13',
        ];
        if (origin) { lines.push(`Origin: ${origin}`); }
        this._sock.write(lines.join('\r\n') + '\r\n\r\n');
      });
      this._sock.on('data', (d) => this._onData(d));
      this._sock.on('error', () => {});
      this._sock.on('close', () => this._finish(1006, ''));
    }

    send(text) {
      if (this.readyState !== 1) { throw new Error('WebSocket is not open'); }
      this._sock.write(frame(1, Buffer.from(String(text), 'utf8')));
    }

    close(code = 1000) {
      if (this.readyState >= 2) { return; }
      this.readyState = 2;
      this._sendClose(code);
    }

    _sendClose(code) {
      if (this._closeSent) { return; }
      this._closeSent = true;
      const p = Buffer.alloc(2);
      p.writeUInt16BE(code);
      this._sock.write(frame(8, p));
      this._sock.end();
    }

    _finish(code, reason) {
      if (this.readyState === 3) { return; }
      const wasConnecting = this.readyState === 0;
      this.readyState = 3;
      this._sock.destroy();
      if (wasConnecting || code === 1006) { this.onerror?.({ type: 'error' }); }
      this.onclose?.({ type: 'close', code, reason, wasClean: code !== 1006 });
    }

    _onData(d) {
      this._buf = Buffer.concat([this._buf, d]);
      if (this.readyState === 0) {
        const end = this._buf.indexOf('\r\n\r\n');
        if (end < 0) { return; }
        const head = this._buf.subarray(0, end).toString('latin1');
        this._buf = this._buf.subarray(end + 4);
        const ok = /^HTTP\/1\.1 101 /.test(head) &&
          new RegExp(`^sec-websocket-accept: *${this._accept.replace(/[+/=]/g, '\\$&')} *$`, 'mi').test(head);
        if (!ok) { this._finish(1006, ''); return; }
        this.readyState = 1;
        this.onopen?.({ type: 'open' });
      }
      for (;;) {
        const f = parseFrame(this._buf);
        if (!f) { return; }
        this._buf = this._buf.subarray(f.size);
        if (f.opcode === 8) {
          const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
          this._sendClose(code === 1005 ? 1000 : code);
          this._finish(code, f.payload.subarray(2).toString('utf8'));
          return;
        }
        if (f.opcode === 9) { this._sock.write(frame(10, f.payload)); continue; }
        if (f.opcode === 10) { continue; }
        this._frags.push(f.payload);
        if (f.fin) {
          const data = Buffer.concat(this._frags).toString('utf8');
          this._frags = [];
          if (this.readyState === 1) { this.onmessage?.({ type: 'message', data }); }
        }
      }
    }
  };
}

// One masked client frame.
function frame(opcode, payload) {
  const len = payload.length;
  const head = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = 0x80 | opcode;
  if (len < 126) { head[1] = 0x80 | len; } else if (len < 65536) {
    head[1] = 0x80 | 126; head.writeUInt16BE(len, 2);
  } else { head[1] = 0x80 | 127; head.writeBigUInt64BE(BigInt(len), 2); }
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) { body[i] ^= mask[i & 3]; }
  return Buffer.concat([head, mask, body]);
}

// A complete server frame at the start of `buf`, or null.
function parseFrame(buf) {
  if (buf.length < 2) { return null; }
  const fin = (buf[0] & 0x80) !== 0;
  const opcode = buf[0] & 0x0f;
  const masked = (buf[1] & 0x80) !== 0;
  let len = buf[1] & 0x7f;
  let off = 2;
  if (len === 126) { if (buf.length < 4) { return null; } len = buf.readUInt16BE(2); off = 4; } else if (len === 127) {
    if (buf.length < 10) { return null; }
    len = Number(buf.readBigUInt64BE(2)); off = 10;
  }
  const maskOff = off;
  if (masked) { off += 4; }
  if (buf.length < off + len) { return null; }
  const payload = Buffer.from(buf.subarray(off, off + len));
  if (masked) { for (let i = 0; i < len; i++) { payload[i] ^= buf[maskOff + (i & 3)]; } }
  return { fin, opcode, payload, size: off + len };
}
