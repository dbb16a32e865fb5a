/**
 * A Jupyter client in pure Node over `zeromq`: starts a kernel process from a
 * kernelspec argv, talks to it over shell, control, iopub and heartbeat, and
 * offers execute, interrupt, restart and shutdown. No Python.
 *
 * Reference: jupyter_client's `KernelManager` and `BlockingKernelClient`
 * (https://github.com/jupyter/jupyter_client), messaging protocol 5.3.
 */
import { spawn, type ChildProcess } from "child_process";
import { randomBytes, randomUUID } from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { decode, encode, makeHeader, socketAddress, type ConnectionInfo, type JupyterMessage } from "../jupyter/wire";
import { RUNNER_FOLDER_PREFIX } from "../kernel/parent_watch";

type Socket = any;

/** Options for {@link KernelClient.start}. */
export interface KernelClientArgs {
  /** The kernel's command line; `{connection_file}` is replaced by the connection file's path. */
  argv: string[];
  /** Working folder of the kernel (the notebook's folder). Default: `process.cwd()`. */
  cwd?: string;
  /** Extra environment variables for the kernel. */
  env?: Record<string, string>;
  /** Seconds to wait for the kernel to answer kernel_info. Default: 60. */
  startTimeout?: number;
  /** Where the kernel's own stderr goes (messages outside cells). Default: ignored. */
  onKernelStderr?: (text: string) => void;
  /**
   * How client and kernel connect: "tcp" on 127.0.0.1, or "ipc": Unix sockets
   * in `connectionDir`, for a kernel in its own network namespace (the grader's
   * sandbox). Default: "tcp".
   */
  transport?: "tcp" | "ipc";
  /**
   * An existing folder for the connection file (and the ipc sockets), e.g. one
   * bound into a sandbox; its files are removed at close, the folder is kept.
   * Default: a new temporary folder (`mllm-labs-kernel-*` in `os.tmpdir()`),
   * removed at shutdown, after a failed start, and when this process exits.
   */
  connectionDir?: string;
  /** The user that owns the connection file, for a kernel started as another user (the grader's sandbox). Default: this process's. */
  connectionFileOwner?: { uid: number; gid: number };
}

/** Why a request did not complete. */
export class KernelError extends Error {
  constructor(
    message: string,
    /** "timeout", "died" or "protocol". */
    public readonly kind: "timeout" | "died" | "protocol",
  ) {
    super(message);
    this.name = "KernelError";
  }
}

/** The messages that one execute request produced. */
export interface ExecuteResult {
  reply: JupyterMessage;
  /** The iopub messages in the order received, status and execute_input left out. */
  messages: JupyterMessage[];
}

/** Options for {@link KernelClient.execute}. */
export interface ExecuteOptions {
  /** Seconds before the cell is interrupted. Default: no limit. */
  timeout?: number;
  /** Called with each iopub output message as it arrives (for live progress). */
  onMessage?: (message: JupyterMessage) => void;
}

/** Start-up attempts when the kernel finds a port taken (see `KernelClient.launch`). */
const PORT_ATTEMPTS = 3;

async function freePort(ip: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, ip, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Jupyter's placeholders in a kernelspec argv. */
function substitute(argv: string[], connectionFile: string): string[] {
  return argv.map((arg) => arg.split("{connection_file}").join(connectionFile));
}

interface Waiter {
  onIopub: (message: JupyterMessage) => void;
  onReply: (message: JupyterMessage) => void;
}

/** Clients whose kernel may still be running: killed if this process exits without shutting them down. */
const liveClients = new Set<KernelClient>();
/**
 * The connection folders clients made and have not removed yet: removed if this
 * process exits without shutting their kernels down (the kernel's own parent
 * watch, which would remove one, dies with the kernel's process group).
 */
const temporaryFolders = new Set<string>();
process.on("exit", () => {
  for (const client of liveClients) client.killProcessGroup();
  for (const folder of temporaryFolders) fs.rmSync(folder, { recursive: true, force: true });
});

export class KernelClient {
  readonly session = randomUUID();
  private info!: ConnectionInfo;
  private connectionFile!: string;
  /** The folder this client made for the connection file (no `connectionDir` given), until it is removed. */
  private temporaryFolder: string | undefined;
  private process: ChildProcess | undefined;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private shell!: Socket;
  private control!: Socket;
  private iopub!: Socket;
  private heartbeat!: Socket;
  private readonly waiters = new Map<string, Waiter>();
  private deathListeners: ((reason: string) => void)[] = [];
  private stderrTail = "";
  private closed = false;
  private groupKilled = false;

  private constructor(private readonly args: KernelClientArgs) {}

  /** Starts a kernel and waits until it answers kernel_info on shell and publishes on iopub. */
  static async start(args: KernelClientArgs): Promise<KernelClient> {
    const client = new KernelClient(args);
    await client.launch();
    return client;
  }

  /** Whether the kernel process is still running. */
  get alive(): boolean {
    return this.process !== undefined && this.exit === undefined;
  }

  /** The last lines the kernel wrote to its own stderr (for crash reports). */
  get kernelStderr(): string {
    return this.stderrTail;
  }

  /**
   * Starts the kernel; on any failure the kernel is killed and its temporary folder removed before the error is thrown.
   * A TCP port found free can be taken by another process before the kernel binds it (jupyter_client's ports have the
   * same race; two test files starting kernels at once hit it): a kernel that dies at start-up with "Address already
   * in use" is started again on fresh ports, up to {@link PORT_ATTEMPTS} times in all.
   */
  private async launch(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.closed = false; // each attempt opens new sockets (on new ports)
      this.groupKilled = false;
      try {
        await this.launchKernel();
        return;
      } catch (error) {
        await this.close();
        const portTaken = error instanceof KernelError && error.kind === "died" && /Address already in use/.test(error.message);
        if (!portTaken || this.args.transport === "ipc" || attempt >= PORT_ATTEMPTS) throw error;
      }
    }
  }

  private async launchKernel(): Promise<void> {
    const ipc = this.args.transport === "ipc";
    if (this.args.connectionDir === undefined) {
      this.temporaryFolder = fs.mkdtempSync(path.join(os.tmpdir(), RUNNER_FOLDER_PREFIX));
      temporaryFolders.add(this.temporaryFolder);
    }
    const folder = this.args.connectionDir ?? this.temporaryFolder!;
    // ipc: the "ip" is a path prefix and the "ports" number the socket files (`<ip>-<port>`).
    const ip = ipc ? path.join(folder, "kernel") : "127.0.0.1";
    const ports = [];
    for (let i = 0; i < 5; i++) ports.push(ipc ? i + 1 : await freePort(ip));
    this.info = {
      transport: ipc ? "ipc" : "tcp",
      ip,
      key: randomBytes(32).toString("hex"),
      signature_scheme: "hmac-sha256",
      shell_port: ports[0],
      iopub_port: ports[1],
      stdin_port: ports[2],
      control_port: ports[3],
      hb_port: ports[4],
      kernel_name: "",
    };
    this.connectionFile = path.join(folder, "connection.json");
    fs.writeFileSync(this.connectionFile, JSON.stringify(this.info), { mode: 0o600 });
    if (this.args.connectionFileOwner)
      fs.chownSync(this.connectionFile, this.args.connectionFileOwner.uid, this.args.connectionFileOwner.gid);
    const [command, ...rest] = substitute(this.args.argv, this.connectionFile);
    this.exit = undefined;
    this.stderrTail = "";
    // The kernel leads its own process group (as jupyter_client's start_new_session),
    // so the runner can kill it with every process a cell started; it watches
    // MLLM_LABS_PARENT_PID and exits when the runner is gone (kernel/parent_watch).
    const child = spawn(command, rest, {
      cwd: this.args.cwd ?? process.cwd(),
      env: { ...process.env, ...this.args.env, MLLM_LABS_PARENT_PID: String(process.pid) },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    this.process = child;
    liveClients.add(this);
    child.stdout?.on("data", () => undefined);
    child.stderr?.on("data", (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      this.stderrTail = (this.stderrTail + text).slice(-4000);
      this.args.onKernelStderr?.(text);
    });
    child.on("exit", (code, signal) => {
      if (this.process !== child) return; // an earlier attempt's kernel (launch), already killed with its group
      this.exit = { code, signal };
      // Whatever the kernel left running (a cell's child processes) goes with it.
      this.killProcessGroup();
      const reason = `the kernel process exited (${signal ? `signal ${signal}` : `code ${code}`})`;
      for (const listener of this.deathListeners) listener(reason);
    });
    child.on("error", (error) => {
      if (this.process !== child) return;
      this.exit = { code: null, signal: null };
      for (const listener of this.deathListeners) listener(`the kernel could not start: ${error.message}`);
    });

    const zmq = require("zeromq");
    this.shell = new zmq.Dealer({ routingId: this.session });
    this.control = new zmq.Dealer({ routingId: `${this.session}-control` });
    this.iopub = new zmq.Subscriber();
    this.heartbeat = new zmq.Request({ relaxed: true, correlate: true, sendTimeout: 2000 });
    for (const socket of [this.shell, this.control, this.iopub, this.heartbeat]) socket.linger = 0;
    this.iopub.subscribe();
    this.shell.connect(socketAddress(this.info, this.info.shell_port));
    this.control.connect(socketAddress(this.info, this.info.control_port));
    this.iopub.connect(socketAddress(this.info, this.info.iopub_port));
    this.heartbeat.connect(socketAddress(this.info, this.info.hb_port));
    void this.listen(this.shell, "reply");
    void this.listen(this.control, "reply");
    void this.listen(this.iopub, "iopub");

    // Wait for the kernel: kernel_info on shell, and its status on iopub (a
    // subscriber may miss messages published before it connected).
    const deadline = Date.now() + (this.args.startTimeout ?? 60) * 1000;
    let lastError: Error | undefined;
    while (Date.now() < deadline) {
      const exit = this.exit as { code: number | null; signal: NodeJS.Signals | null } | undefined;
      if (exit) {
        throw new KernelError(
          `the kernel exited during start-up (${exit.signal ?? `code ${exit.code}`}):\n${this.stderrTail.trim()}`,
          "died",
        );
      }
      try {
        let sawIopub = false;
        await this.request(this.shell, "kernel_info_request", {}, { timeout: 2, onIopub: () => (sawIopub = true) });
        // Give iopub a moment to deliver the idle status of that request.
        for (let i = 0; i < 20 && !sawIopub; i++) await new Promise((resolve) => setTimeout(resolve, 25));
        if (sawIopub) return;
      } catch (error) {
        lastError = error as Error;
        if (error instanceof KernelError && error.kind === "died") {
          // Let the kernel's stderr drain: it says why it died.
          await Promise.race([
            new Promise((resolve) => child.once("close", resolve)),
            new Promise((resolve) => setTimeout(resolve, 1000)),
          ]);
          await this.close();
          const exit = this.exit as { code: number | null; signal: NodeJS.Signals | null } | undefined;
          throw new KernelError(
            `the kernel exited during start-up (${exit?.signal ?? `code ${exit?.code}`}):\n${this.stderrTail.trim()}`,
            "died",
          );
        }
      }
    }
    await this.close();
    throw new KernelError(
      `the kernel did not answer within ${this.args.startTimeout ?? 60} s${lastError ? ` (${lastError.message})` : ""}:\n${this.stderrTail.trim()}`,
      "timeout",
    );
  }

  private async listen(socket: Socket, channel: "reply" | "iopub"): Promise<void> {
    try {
      for await (const frames of socket) {
        let message: JupyterMessage;
        try {
          message = decode(this.info.key, frames);
        } catch {
          continue; // A message that does not verify is dropped, as jupyter_client does.
        }
        const waiter = this.waiters.get(String(message.parent_header.msg_id));
        if (!waiter) continue;
        if (channel === "reply") waiter.onReply(message);
        else waiter.onIopub(message);
      }
    } catch {
      // The socket was closed.
    }
  }

  /**
   * Sends a request and resolves with its reply once the kernel is idle again
   * (its iopub `status: idle` for this request has arrived), so every output
   * of the request has been seen.
   */
  private request(
    socket: Socket,
    msgType: string,
    content: object,
    options: { timeout?: number; onIopub?: (message: JupyterMessage) => void; waitForIdle?: boolean } = {},
  ): Promise<JupyterMessage> {
    const header = makeHeader(msgType, this.session);
    return new Promise<JupyterMessage>((resolve, reject) => {
      let reply: JupyterMessage | undefined;
      let idle = options.waitForIdle === false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (error?: Error) => {
        this.waiters.delete(header.msg_id);
        this.deathListeners = this.deathListeners.filter((listener) => listener !== onDeath);
        if (timer) clearTimeout(timer);
        if (error) reject(error);
        else resolve(reply!);
      };
      const onDeath = (reason: string) => finish(new KernelError(reason, "died"));
      this.deathListeners.push(onDeath);
      this.waiters.set(header.msg_id, {
        onReply: (message) => {
          reply = message;
          if (idle) finish();
        },
        onIopub: (message) => {
          if (message.header.msg_type === "status" && message.content.execution_state === "idle") {
            idle = true;
            if (reply) finish();
            return;
          }
          options.onIopub?.(message);
        },
      });
      if (options.timeout !== undefined) {
        timer = setTimeout(
          () => finish(new KernelError(`no reply to ${msgType} within ${options.timeout} s`, "timeout")),
          options.timeout * 1000,
        );
      }
      if (this.exit) return onDeath("the kernel process is not running");
      socket
        .send(encode(this.info.key, { identities: [], header, parent_header: {}, metadata: {}, content }))
        .catch((error: Error) => finish(error));
    });
  }

  /** kernel_info_reply's content. */
  async kernelInfo(): Promise<Record<string, any>> {
    return (await this.request(this.shell, "kernel_info_request", {}, { timeout: 30 })).content;
  }

  /**
   * Executes code and collects its outputs. On timeout the cell is interrupted
   * and a KernelError("timeout") is thrown after the kernel settles (or dies).
   */
  async execute(code: string, options: ExecuteOptions = {}): Promise<ExecuteResult> {
    const messages: JupyterMessage[] = [];
    const onIopub = (message: JupyterMessage) => {
      if (message.header.msg_type === "status" || message.header.msg_type === "execute_input") return;
      messages.push(message);
      options.onMessage?.(message);
    };
    const pending = this.request(
      this.shell,
      "execute_request",
      { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: false },
      { onIopub },
    );
    if (options.timeout === undefined) return { reply: await pending, messages };
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), options.timeout! * 1000)));
    const first = await Promise.race([pending, timedOut]);
    clearTimeout(timer);
    if (first !== "timeout") return { reply: first, messages };
    await this.interrupt();
    // Let the interrupted cell finish its reply, but not forever.
    const settled = await Promise.race([
      pending.then(
        () => "settled",
        () => "settled",
      ),
      new Promise((resolve) => setTimeout(() => resolve("stuck"), 5000)),
    ]);
    throw new KernelError(
      `the cell ran longer than ${options.timeout} s and was interrupted${settled === "stuck" ? " (the kernel did not stop; it will be restarted)" : ""}`,
      "timeout",
    );
  }

  /** Interrupts the running cell: SIGINT to the kernel process (interrupt_mode "signal"). */
  async interrupt(): Promise<void> {
    if (this.alive) this.process!.kill("SIGINT");
  }

  /**
   * Kills the kernel's whole process group (the kernel and every process a cell
   * started) with SIGKILL. Synchronous, so it also runs from an `exit` handler.
   */
  killProcessGroup(): void {
    const pid = this.process?.pid;
    if (pid === undefined || this.groupKilled) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // The group is already gone.
    }
    if (this.exit) {
      this.groupKilled = true;
      liveClients.delete(this);
    }
  }

  /** Sends one heartbeat and waits for its echo. */
  async ping(timeoutMs = 2000): Promise<boolean> {
    try {
      const payload = randomBytes(8);
      await this.heartbeat.send(payload);
      const [echo] = await Promise.race([
        this.heartbeat.receive(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("heartbeat timeout")), timeoutMs)),
      ]);
      return Buffer.from(echo).equals(payload);
    } catch {
      return false;
    }
  }

  /** Asks the kernel to shut down; kills it if it does not exit within `graceSeconds`. */
  async shutdown(graceSeconds = 5): Promise<void> {
    if (this.alive) {
      const exited = new Promise<void>((resolve) => this.process!.once("exit", () => resolve()));
      try {
        await this.request(this.control, "shutdown_request", { restart: false }, { timeout: graceSeconds, waitForIdle: false });
      } catch {
        // Killed below.
      }
      const done = await Promise.race([
        exited.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), graceSeconds * 1000)),
      ]);
      if (!done && this.alive) {
        this.killProcessGroup();
        await exited;
      }
    }
    this.killProcessGroup();
    await this.close();
  }

  /** Kills the kernel and starts a fresh one with the same command. */
  async restart(): Promise<void> {
    if (this.alive) {
      const exited = new Promise<void>((resolve) => this.process!.once("exit", () => resolve()));
      this.killProcessGroup();
      await exited;
    }
    this.killProcessGroup();
    await this.close();
    await this.launch();
  }

  /** Removes the folder this client made for the connection file, if any; a given `connectionDir` is left alone. */
  private removeTemporaryFolder(): void {
    if (this.temporaryFolder === undefined) return;
    fs.rmSync(this.temporaryFolder, { recursive: true, force: true });
    temporaryFolders.delete(this.temporaryFolder);
    this.temporaryFolder = undefined;
  }

  private async close(): Promise<void> {
    this.killProcessGroup();
    if (this.closed) return;
    this.closed = true;
    for (const socket of [this.shell, this.control, this.iopub, this.heartbeat]) socket?.close();
    this.waiters.clear();
    this.removeTemporaryFolder();
    if (!this.connectionFile) return;
    if (this.args.connectionDir !== undefined) {
      fs.rmSync(this.connectionFile, { force: true });
      if (this.info.transport === "ipc")
        for (let port = 1; port <= 5; port++) fs.rmSync(`${this.info.ip}-${port}`, { force: true });
    }
  }
}
