/**
 * The lab kernel's Jupyter server: binds the five sockets of a connection
 * file and answers the messaging protocol 5.3 around {@link LabExecutor}.
 *
 * It fixes the protocol gaps of tslab's own server (tslab 1.0.22 `dist/jupyter.js`):
 * - a failed cell publishes an `error` message and its reply carries ename,
 *   evalue and traceback (tslab only prints to stderr);
 * - the value of a cell's last expression is an `execute_result` (tslab prints it to stdout);
 * - `kernel_info_reply` has a `status`; `comm_info_reply` has the right type;
 * - a request that arrives right after a failed cell runs (tslab silently
 *   aborts everything sent within 200 ms of an error);
 * - `execute_input`, `history_request`, `interrupt_request` and `clear_output` are supported.
 *
 * Reference: https://jupyter-client.readthedocs.io/en/latest/messaging.html
 */
import { readFileSync } from "fs";
import {
  decode,
  encode,
  makeHeader,
  socketAddress,
  checkSignatureScheme,
  PROTOCOL_VERSION,
  type ConnectionInfo,
  type JupyterMessage,
} from "../jupyter/wire";
import { LabExecutor, isCompleteCode, printQuickInfo } from "./executor";
import { valueBundle, type MimeBundle } from "./value_bundle";
import { hostHook, type DisplayRequest } from "./host";
import { packageVersion } from "../util/project_root";

type Socket = any;

/** Options for {@link KernelServer}. */
export interface KernelServerArgs {
  /** Path of the connection file Jupyter wrote. */
  connectionFile: string;
  /** Project root, stripped from paths in tracebacks. */
  projectRoot: string;
  /** Awaited before the first cell runs (the lab preload). */
  ready?: Promise<unknown>;
  /** Text written to the first cell's stderr (notes from the preload). */
  startupNotes?: () => string[];
}

const STREAM_FLUSH_MS = 50;

export class KernelServer {
  private readonly info: ConnectionInfo;
  private readonly executor: LabExecutor;
  private readonly session = makeHeader("status", "kernel").msg_id;
  private executionCount = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private iopub!: Socket;
  private shell!: Socket;
  private control!: Socket;
  private stdin!: Socket;
  private heartbeat!: Socket;
  /** The request whose outputs streams and displays belong to. */
  private currentParent: JupyterMessage | undefined;
  private pendingStreams: { name: "stdout" | "stderr"; text: string }[] = [];
  private streamTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly args: KernelServerArgs;
  private startupNotesShown = false;

  constructor(args: KernelServerArgs) {
    this.args = args;
    this.info = JSON.parse(readFileSync(args.connectionFile, "utf8"));
    checkSignatureScheme(this.info);
    this.executor = new LabExecutor({ projectRoot: args.projectRoot });
  }

  /** Binds the sockets and starts serving; resolves once bound. */
  async start(): Promise<void> {
    const zmq = require("zeromq");
    this.iopub = new zmq.Publisher();
    this.shell = new zmq.Router();
    this.control = new zmq.Router();
    this.stdin = new zmq.Router();
    this.heartbeat = new zmq.Reply();
    const info = this.info;
    await Promise.all([
      this.iopub.bind(socketAddress(info, info.iopub_port)),
      this.shell.bind(socketAddress(info, info.shell_port)),
      this.control.bind(socketAddress(info, info.control_port)),
      this.stdin.bind(socketAddress(info, info.stdin_port)),
      this.heartbeat.bind(socketAddress(info, info.hb_port)),
    ]);
    this.captureStreams();
    hostHook.install({
      display: (request) => this.publishDisplay(request),
      clearOutput: (wait) => this.publishClearOutput(wait),
    });
    void this.serve(this.shell, false);
    void this.serve(this.control, true);
    void (async () => {
      for await (const frames of this.heartbeat) {
        if (this.closed) break;
        await this.heartbeat.send(frames);
      }
    })().catch(() => undefined);
  }

  private async serve(socket: Socket, isControl: boolean): Promise<void> {
    try {
      for await (const frames of socket) {
        let message: JupyterMessage;
        try {
          message = decode(this.info.key, frames);
        } catch (error) {
          process.stderr.write(`[mllm-labs kernel] dropped a message: ${(error as Error).message}\n`);
          continue;
        }
        if (isControl) {
          // Control requests (interrupt, shutdown) must not wait behind a running cell.
          await this.handle(socket, message);
        } else {
          // Shell requests run one at a time, in arrival order; a failure never cancels the next.
          this.queue = this.queue
            .then(() => this.handle(socket, message))
            .catch((error) => {
              process.stderr.write(`[mllm-labs kernel] internal error: ${(error as Error)?.stack ?? error}\n`);
            });
        }
      }
    } catch (error) {
      if (!this.closed) throw error;
    }
  }

  private send(socket: Socket, parent: JupyterMessage, msgType: string, content: object, metadata: object = {}): Promise<void> {
    const frames = encode(this.info.key, {
      identities: socket === this.iopub ? [] : parent.identities,
      header: makeHeader(msgType, this.session, parent.header.username),
      parent_header: parent.header,
      metadata,
      content,
    });
    return socket.send(frames);
  }

  private publish(parent: JupyterMessage, msgType: string, content: object, metadata: object = {}): Promise<void> {
    return this.send(this.iopub, parent, msgType, content, metadata);
  }

  private async handle(socket: Socket, message: JupyterMessage): Promise<void> {
    const type = message.header.msg_type;
    await this.publish(message, "status", { execution_state: "busy" });
    let shutdown = false;
    try {
      switch (type) {
        case "kernel_info_request":
          await this.send(socket, message, "kernel_info_reply", this.kernelInfo());
          break;
        case "execute_request":
          await this.execute(socket, message);
          break;
        case "is_complete_request": {
          const result = isCompleteCode(String(message.content.code ?? ""));
          const content = result.completed ? { status: "complete" } : { status: "incomplete", indent: result.indent ?? "" };
          await this.send(socket, message, "is_complete_reply", content);
          break;
        }
        case "complete_request": {
          const code = String(message.content.code ?? "");
          const cursor = Number(message.content.cursor_pos ?? code.length);
          const info = this.executor.complete(code, cursor);
          await this.send(socket, message, "complete_reply", {
            status: "ok",
            matches: info.candidates,
            cursor_start: info.start,
            cursor_end: info.end,
            metadata: {},
          });
          break;
        }
        case "inspect_request": {
          const code = String(message.content.code ?? "");
          const info = this.executor.inspect(code, Number(message.content.cursor_pos ?? code.length));
          const found = info !== undefined && info !== null;
          await this.send(socket, message, "inspect_reply", {
            status: "ok",
            found,
            data: found ? { "text/plain": printQuickInfo(info) } : {},
            metadata: {},
          });
          break;
        }
        case "history_request":
          await this.send(socket, message, "history_reply", { status: "ok", history: [] });
          break;
        case "comm_info_request":
          await this.send(socket, message, "comm_info_reply", { status: "ok", comms: {} });
          break;
        case "interrupt_request":
          this.executor.interrupt();
          await this.send(socket, message, "interrupt_reply", { status: "ok" });
          break;
        case "shutdown_request": {
          const restart = Boolean(message.content.restart);
          await this.send(socket, message, "shutdown_reply", { status: "ok", restart });
          shutdown = true;
          break;
        }
        default:
          // Unknown requests (debug_request, usage_request, comm messages) get no reply, as in ipykernel without those features.
          break;
      }
    } finally {
      this.flushStreams();
      await this.publish(message, "status", { execution_state: "idle" });
    }
    if (shutdown) {
      await this.close();
      process.exit(0);
    }
  }

  private kernelInfo() {
    return {
      status: "ok",
      protocol_version: PROTOCOL_VERSION,
      implementation: "mllm-labs",
      implementation_version: packageVersion(),
      language_info: {
        name: "typescript",
        version: "5.0",
        mimetype: "text/typescript",
        file_extension: ".ts",
        // tslab's setting: turns on TypeScript highlighting in the classic Notebook and JupyterLab.
        codemirror_mode: { mode: "typescript", name: "javascript", typescript: true },
      },
      banner: "Multimodal Labs (TypeScript): tslab with the mllm-labs preload",
      help_links: [{ text: "mllm-labs README", url: "https://github.com/mllm-labs/mllm-labs#readme" }],
    };
  }

  private async execute(socket: Socket, message: JupyterMessage): Promise<void> {
    const code = String(message.content.code ?? "");
    const silent = Boolean(message.content.silent);
    const storeHistory = message.content.store_history ?? !silent;
    if (!silent && storeHistory) this.executionCount++;
    const count = this.executionCount;
    this.currentParent = silent ? undefined : message;
    if (!silent) await this.publish(message, "execute_input", { code, execution_count: count });
    if (this.args.ready) {
      try {
        await this.args.ready;
      } catch {
        // The preload reports its own failure in the notes below; cells still run.
      }
    }
    if (!this.startupNotesShown && this.args.startupNotes) {
      this.startupNotesShown = true;
      for (const note of this.args.startupNotes()) process.stderr.write(note + "\n");
    }
    const outcome = await this.executor.execute(code, count);
    this.flushStreams();
    if (outcome.status === "ok") {
      if (outcome.hasValue && !silent) {
        let bundle: MimeBundle;
        try {
          bundle = valueBundle(outcome.value);
        } catch (error) {
          bundle = { data: { "text/plain": `<value could not be shown: ${(error as Error).message}>` }, metadata: {} };
        }
        await this.publish(message, "execute_result", { execution_count: count, data: bundle.data, metadata: bundle.metadata });
      }
      await this.send(socket, message, "execute_reply", {
        status: "ok",
        execution_count: count,
        user_expressions: {},
        payload: [],
      });
    } else {
      if (!silent) await this.publish(message, "error", outcome.error);
      await this.send(socket, message, "execute_reply", { status: "error", execution_count: count, ...outcome.error });
    }
  }

  /** Sends stdout and stderr of the process to iopub, batched every {@link STREAM_FLUSH_MS} ms. */
  private captureStreams(): void {
    const capture = (name: "stdout" | "stderr") => (chunk: unknown, encodingOrCallback?: unknown, callback?: unknown) => {
      const text = typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8");
      const last = this.pendingStreams[this.pendingStreams.length - 1];
      if (last && last.name === name) last.text += text;
      else this.pendingStreams.push({ name, text });
      this.streamTimer ??= setTimeout(() => this.flushStreams(), STREAM_FLUSH_MS);
      const done = typeof encodingOrCallback === "function" ? encodingOrCallback : callback;
      if (typeof done === "function") done();
      return true;
    };
    process.stdout.write = capture("stdout") as typeof process.stdout.write;
    process.stderr.write = capture("stderr") as typeof process.stderr.write;
  }

  private flushStreams(): void {
    if (this.streamTimer) clearTimeout(this.streamTimer);
    this.streamTimer = undefined;
    const parent = this.currentParent;
    const pending = this.pendingStreams;
    this.pendingStreams = [];
    if (!parent) return;
    for (const { name, text } of pending) void this.publish(parent, "stream", { name, text });
  }

  private publishDisplay(request: DisplayRequest): void {
    const parent = this.currentParent;
    if (!parent) return;
    this.flushStreams();
    const transient = request.displayId ? { display_id: request.displayId } : {};
    void this.publish(parent, request.update ? "update_display_data" : "display_data", {
      data: request.data,
      metadata: request.metadata ?? {},
      transient,
    });
  }

  private publishClearOutput(wait: boolean): void {
    const parent = this.currentParent;
    if (!parent) return;
    this.flushStreams();
    void this.publish(parent, "clear_output", { wait });
  }

  /** Stops serving and closes the sockets. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flushStreams();
    this.executor.close();
    for (const socket of [this.shell, this.control, this.stdin, this.heartbeat, this.iopub]) socket?.close();
  }

  /** Interrupts the running cell (SIGINT in "signal" interrupt mode). */
  interrupt(): void {
    this.executor.interrupt();
  }
}
