// The browser half of the parity harness: runs one scenario (tests/parity/scenario.py) in the
// page and returns what a script could see. wsapi_runner.py is the same interpreter in Python;
// the two are kept step for step alike, so keep them in sync when either changes.
"use strict";

// Data longer than this many bytes is logged as its length and SHA-256 (16 hex digits).
const INLINE_LIMIT = 64;
const WAIT_TIMEOUT_MS = 5000;
const DRAIN_POLL_MS = 5;
// After the close event, how long stray events are still logged.
const SETTLE_MS = 50;
const EVENT_TYPES = ["open", "message", "error", "close"];

function hex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function fromHex(text) {
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.substr(2 * i, 2), 16);
  return bytes;
}

function pattern(length) {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + 7) & 255;
  return bytes;
}

// What a script reads from received data, in the shape data.py's describe_* give. A digest
// is computed asynchronously: its promise joins `reads`, awaited before the log is returned.
function describeBytes(into, bytes, reads) {
  if (bytes.length <= INLINE_LIMIT) {
    into.hex = hex(bytes);
  } else {
    into.length = bytes.length;
    reads.push(crypto.subtle.digest("SHA-256", bytes).then((hash) => {
      into.sha256 = hex(new Uint8Array(hash)).slice(0, 16);
    }));
  }
  return into;
}

function describeText(text, reads) {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= INLINE_LIMIT) return { kind: "text", value: text };
  return describeBytes({ kind: "text" }, bytes, reads);
}

// The value a send step names (scenario.py's payload helpers).
function makeData(spec) {
  switch (spec.kind) {
    case "text":
      return "repeat" in spec ? spec.repeat.repeat(spec.times) : spec.value;
    case "binary":
      return ("length" in spec ? pattern(spec.length) : fromHex(spec.hex)).buffer;
    case "view": {
      const whole = fromHex(spec.hex);
      return new Uint8Array(whole.buffer, spec.offset, spec.length);
    }
    case "blob":
      return new Blob(["length" in spec ? pattern(spec.length) : fromHex(spec.hex)]);
    default:
      throw new Error("unknown data kind " + spec.kind);
  }
}

async function runScenario(scenario, host) {
  const log = [];
  const reads = [];
  const counts = { open: 0, message: 0, error: 0, close: 0 };
  const waiters = [];
  const listeners = {};
  let ws = null;

  function state(into) {
    return Object.assign(into, {
      readyState: ws.readyState,
      bufferedAmount: ws.bufferedAmount,
      protocol: ws.protocol,
      extensions: ws.extensions,
    });
  }

  function eventEntry(name, event) {
    const entry = state({ event: event.type, listener: name });
    if (event.type === "message") {
      const data = event.data;
      if (typeof data === "string") entry.data = describeText(data, reads);
      else if (data instanceof ArrayBuffer)
        entry.data = describeBytes({ kind: "arraybuffer" }, new Uint8Array(data), reads);
      else if (data instanceof Blob) {
        const into = { kind: "blob", size: data.size, type: data.type };
        entry.data = into;
        reads.push(data.arrayBuffer().then((buffer) => {
          const more = [];
          describeBytes(into, new Uint8Array(buffer), more);
          return Promise.all(more);
        }));
      } else entry.data = { kind: typeof data };
      entry.origin = event.origin;
      entry.lastEventId = event.lastEventId;
    } else if (event.type === "close") {
      Object.assign(entry, { code: event.code, reason: event.reason, wasClean: event.wasClean });
    }
    return entry;
  }

  function count(event) {
    counts[event.type] += 1;
    for (const waiter of waiters.slice()) {
      if (waiter.type === event.type && counts[event.type] >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        // After this dispatch ends, as an awaiting coroutine resumes in Python.
        setTimeout(waiter.resolve, 0);
      }
    }
  }

  function until(type, number, timeoutMs) {
    if (counts[type] >= number) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = { type, count: number, resolve: () => resolve(true) };
      waiters.push(waiter);
      setTimeout(() => {
        const index = waiters.indexOf(waiter);
        if (index >= 0) {
          waiters.splice(index, 1);
          resolve(false);
        }
      }, timeoutMs);
    });
  }

  function listen(step) {
    let calls = 0;
    const fn = (event) => {
      calls += 1;
      log.push(eventEntry(step.name, event));
      if (step.at === undefined || step.at === calls) for (const inner of step.do || []) doStep(inner, event);
    };
    listeners[step.name] = { step, fn, target: step.how === "object" ? { handleEvent: fn } : fn };
    const entry = listeners[step.name];
    if (step.how === "on") ws["on" + step.type] = fn;
    else ws.addEventListener(step.type, entry.target, step.once ? { once: true } : undefined);
  }

  // The steps a script may run anywhere, inside a listener too (event is null outside one).
  function doStep(step, event) {
    try {
      switch (step.op) {
        case "send":
          ws.send(makeData(step.data));
          break;
        case "close":
          if ("reason" in step) ws.close(step.code, step.reason);
          else if ("code" in step) ws.close(step.code);
          else ws.close();
          break;
        case "binaryType":
          ws.binaryType = step.value;
          break;
        case "check":
          log.push(state({ step: "check", label: step.label, binaryType: ws.binaryType, url: ws.url }));
          break;
        case "listen":
          listen(step);
          break;
        case "unlisten": {
          const entry = listeners[step.name];
          if (entry.step.how === "on") ws["on" + entry.step.type] = null;
          else ws.removeEventListener(entry.step.type, entry.target);
          break;
        }
        case "handler":
          ws["on" + step.type] = step.name === null ? null : listeners[step.name].fn;
          break;
        case "stop":
          event.stopImmediatePropagation();
          break;
        default:
          throw new Error("unknown step " + step.op);
      }
    } catch (error) {
      if (!(error instanceof DOMException || error instanceof TypeError)) throw error;
      log.push({ step: step.op, exception: error.name });
    }
  }

  function construct(step) {
    const url = step.url.replace("{host}", host);
    try {
      ws = "protocols" in step ? new WebSocket(url, step.protocols) : new WebSocket(url);
    } catch (error) {
      log.push({ step: "construct", exception: error.name });
      return;
    }
    for (const type of EVENT_TYPES) ws.addEventListener(type, count);
    log.push(state({ step: "construct", binaryType: ws.binaryType, url: ws.url }));
    if (step.log) for (const type of EVENT_TYPES) listen({ type, how: "add", name: "log" });
  }

  for (const step of scenario.steps) {
    if (step.op === "construct") construct(step);
    else if (ws === null) break;
    else if (step.op === "wait") {
      if (!(await until(step.event, step.count, WAIT_TIMEOUT_MS)))
        log.push({ step: "wait", event: step.event, timeout: true });
    } else if (step.op === "sleep") {
      await new Promise((resolve) => setTimeout(resolve, step.ms));
    } else if (step.op === "drain") {
      const deadline = Date.now() + WAIT_TIMEOUT_MS;
      while (ws.bufferedAmount > 0 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
      if (ws.bufferedAmount > 0) log.push({ step: "drain", timeout: true });
    } else doStep(step, null);
  }
  if (ws !== null) {
    if (!(await until("close", 1, scenario.end_timeout_ms))) {
      // Still not closed: log it, then close it as a script would.
      log.push({ step: "end", timeout: true, readyState: ws.readyState });
      ws.close();
      await until("close", 1, WAIT_TIMEOUT_MS);
    }
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  }
  await Promise.all(reads);
  return log;
}

// --- WebSocketStream scenarios (tests/parity/stream_scenarios.py) --------------------------
// stream_runner.py is the same interpreter in Python: keep the two step for step alike.
// Every step logs its outcome; a promise a step waits for is awaited within STREAM_WAIT_MS.
const STREAM_WAIT_MS = 5000;

function streamError(error) {
  if (error instanceof WebSocketError) {
    return { error: error.name, closeCode: error.closeCode, reason: error.reason };
  }
  if (error && error.name === "timeout") return { timeout: true };
  return { error: error && error.name ? error.name : String(error) };
}

function withinWait(promise) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject({ name: "timeout" }), STREAM_WAIT_MS);
    promise.then(
      (value) => { clearTimeout(timer); resolve(value); },
      (error) => { clearTimeout(timer); reject(error); },
    );
  });
}

function streamReason(spec) {
  // A step's reason: null, a WebSocketError's init, or a plain object with the same fields.
  if (spec == null) return undefined;
  if (spec.plain) return { closeCode: spec.closeCode, reason: spec.reason };
  const init = {};
  if ("closeCode" in spec) init.closeCode = spec.closeCode;
  if ("reason" in spec) init.reason = spec.reason;
  return new WebSocketError("", init);
}

function describeChunk(value, reads) {
  // The proposal reads binary messages as Uint8Array; log what the chunk really is.
  if (typeof value === "string") return describeText(value, reads);
  const kind = Object.prototype.toString.call(value).slice(8, -1);
  const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : value;
  return describeBytes({ kind }, bytes, reads);
}

async function runStreamScenario(program, host) {
  const log = [];
  const reads = [];
  let wss = null;
  let reader = null;
  let writer = null;
  async function settle(entry, promise, describe) {
    try {
      const value = await withinWait(promise);
      Object.assign(entry, describe ? describe(value) : { ok: true });
    } catch (error) {
      Object.assign(entry, streamError(error));
    }
    log.push(entry);
  }
  function attempt(entry, action) {
    try {
      action();
    } catch (error) {
      Object.assign(entry, streamError(error));
    }
    log.push(entry);
  }
  for (const step of program.steps) {
    switch (step.op) {
      case "construct": {
        const options = {};
        if ("protocols" in step) options.protocols = step.protocols;
        wss = new WebSocketStream(step.url.replace("{host}", host), options);
        log.push({ step: "construct", url: wss.url.replace(host, "{host}") });
        break;
      }
      case "opened":
        await settle({ step: "opened" }, wss.opened, (info) => {
          reader = info.readable.getReader();
          writer = info.writable.getWriter();
          return { protocol: info.protocol, extensions: info.extensions };
        });
        break;
      case "write":
        await settle({ step: "write" }, writer.write(makeData(step.data)));
        break;
      case "read":
        for (let i = 0; i < step.count; i++) {
          await settle({ step: "read" }, reader.read(), ({ value, done }) =>
            done ? { done: true } : { value: describeChunk(value, reads) });
        }
        break;
      case "close": {
        const info = {};
        if ("closeCode" in step) info.closeCode = step.closeCode;
        if ("reason" in step) info.reason = step.reason;
        attempt({ step: "close" }, () => wss.close(info));
        break;
      }
      case "cancel":
        await settle({ step: "cancel" }, reader.cancel(streamReason(step.reason)));
        break;
      case "abort":
        await settle({ step: "abort" }, writer.abort(streamReason(step.reason)));
        break;
      case "writerClose":
        await settle({ step: "writerClose" }, writer.close());
        break;
      case "sleep":
        await new Promise((resolve) => setTimeout(resolve, step.ms));
        break;
      default:
        throw new Error("unknown stream step " + step.op);
    }
  }
  await settle({ step: "closed" }, wss.closed, (info) => ({
    closeCode: info.closeCode,
    reason: info.reason,
  }));
  await Promise.all(reads);
  return log;
}
