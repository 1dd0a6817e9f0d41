// A small client of the AppSync real-time protocol (WebSocket subprotocol "graphql-ws"): the
// caller's credential (an ID token, a SigV4 signature or the API key, see caller.js) travels
// base64-encoded in the `header` query parameter for the connection and in each `start` message's
// `extensions.authorization` (a signature there signs that start's `data`). The connection is kept alive by the server's `ka`
// messages; when it drops (or falls silent past `connectionTimeoutMs`), the client reconnects
// with jittered exponential backoff (as AppSync's guide asks), starts every subscription again
// and tells each one (`onStarted`) so the page can fill what it missed from
// getWorkflowHistory(afterSeq). `onActive(n)` says how many subscriptions AppSync acknowledged.

const RETRY_MS = [500, 1000, 2000, 5000];

function base64(text) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

export class Realtime {
  constructor(config, caller, onStatus = () => {}, onActive = () => {}) {
    this.config = config;
    this.caller = caller;
    this.connecting = false;
    this.host = new URL(config.graphqlUrl).host;
    this.onStatus = onStatus;
    this.onActive = onActive;
    this.active = new Set(); // ids AppSync acknowledged (start_ack) on the current connection
    this.subscriptions = new Map(); // id -> {query, variables, onData, onStarted, onError}
    this.socket = null;
    this.acked = false;
    this.attempt = 0;
    this.nextId = 1;
    this.closed = false;
    this.silenceTimer = null;
    this.retryTimer = null;
  }

  /** Subscribe; returns a function that stops the subscription. */
  subscribe(query, variables, { onData, onStarted = () => {}, onError = () => {} }) {
    const id = `s${this.nextId++}-${Math.random().toString(36).slice(2, 10)}`;
    this.subscriptions.set(id, { query, variables, onData, onStarted, onError });
    if (this.acked) this._start(id);
    else this._connect();
    return () => {
      this.subscriptions.delete(id);
      if (this.active.delete(id)) this.onActive(this.active.size);
      if (this.acked && this.socket) this.socket.send(JSON.stringify({ id, type: "stop" }));
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.silenceTimer);
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
  }

  async _connect() {
    if (this.socket || this.connecting || this.closed) return;
    this.connecting = true;
    this.onStatus("connecting");
    let socket;
    try {
      const header = await this.caller.realtimeHeader({ url: `${this.config.graphqlUrl}/connect`, body: "{}" });
      const url = `${this.config.realtimeUrl}?header=${encodeURIComponent(base64(JSON.stringify(header)))}&payload=e30=`;
      if (this.closed) return;
      socket = new WebSocket(url, ["graphql-ws"]);
    } catch (error) {
      this._retry();
      return;
    } finally {
      this.connecting = false;
    }
    this.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: "connection_init" }));
    socket.onmessage = (event) => this._message(JSON.parse(event.data));
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.acked = false;
      this.active.clear();
      this.onActive(0);
      clearTimeout(this.silenceTimer);
      if (!this.closed) this._retry();
    };
  }

  _retry() {
    this.onStatus("reconnecting");
    const delay = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)] * (0.5 + Math.random() / 2);
    this.attempt++;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this._connect(), delay);
  }

  _alive(timeoutMs) {
    clearTimeout(this.silenceTimer);
    this.timeoutMs = timeoutMs || this.timeoutMs || 300000;
    this.silenceTimer = setTimeout(() => this.socket && this.socket.close(4000, "keep-alive timeout"), this.timeoutMs);
  }

  async _start(id) {
    const sub = this.subscriptions.get(id);
    if (!sub || !this.socket) return;
    const socket = this.socket;
    const data = JSON.stringify({ query: sub.query, variables: sub.variables });
    let authorization;
    try {
      authorization = await this.caller.realtimeHeader({ url: this.config.graphqlUrl, body: data });
    } catch (error) {
      sub.onError([{ errorType: "Unauthorized", message: String(error.message || error) }]);
      return;
    }
    if (this.socket !== socket || !this.subscriptions.has(id)) return; // dropped or stopped meanwhile
    socket.send(JSON.stringify({ id, type: "start", payload: { data, extensions: { authorization } } }));
  }

  _message(message) {
    switch (message.type) {
      case "connection_ack":
        this.acked = true;
        this.attempt = 0;
        this._alive(message.payload && message.payload.connectionTimeoutMs);
        this.onStatus("live");
        for (const id of this.subscriptions.keys()) this._start(id);
        break;
      case "ka":
        this._alive();
        break;
      case "start_ack": {
        const sub = this.subscriptions.get(message.id);
        if (!sub) break;
        this.active.add(message.id);
        this.onActive(this.active.size);
        sub.onStarted();
        break;
      }
      case "data": {
        const sub = this.subscriptions.get(message.id);
        if (sub && message.payload && message.payload.data) sub.onData(message.payload.data);
        break;
      }
      case "error":
      case "connection_error": {
        const errors = (message.payload && message.payload.errors) || [{ errorType: message.type, message: JSON.stringify(message.payload) }];
        const sub = message.id && this.subscriptions.get(message.id);
        if (sub) sub.onError(errors);
        else this.onStatus("error", errors);
        break;
      }
      default:
        break;
    }
  }
}
