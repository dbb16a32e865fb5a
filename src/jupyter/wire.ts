/**
 * The Jupyter messaging protocol's wire format (version 5.3), shared by the
 * lab kernel (server side) and the headless runner (client side).
 *
 * Reference: https://jupyter-client.readthedocs.io/en/latest/messaging.html#the-wire-protocol
 *
 * A message on a ZeroMQ socket is a list of frames:
 *
 *   [identity..., "<IDS|MSG>", hmac, header, parent_header, metadata, content, buffers...]
 *
 * `hmac` is the hex HMAC-SHA256 of the four JSON frames (header, parent
 * header, metadata, content), in that order, keyed with the connection
 * file's `key`. An empty key disables signing (the signature is "").
 */
import { createHmac, randomUUID, timingSafeEqual } from "crypto";

/** The protocol version this project speaks. */
export const PROTOCOL_VERSION = "5.3";

/** The frame that separates ZeroMQ routing identities from the message. */
export const DELIMITER = Buffer.from("<IDS|MSG>");

export interface MessageHeader {
  msg_id: string;
  msg_type: string;
  session: string;
  username: string;
  date: string;
  version: string;
}

/** One Jupyter message, decoded. */
export interface JupyterMessage<Content = Record<string, any>> {
  /** ZeroMQ routing identities (ROUTER sockets); empty on other sockets. */
  identities: Buffer[];
  header: MessageHeader;
  /** The header of the request this message answers, or `{}`. */
  parent_header: Partial<MessageHeader>;
  metadata: Record<string, any>;
  content: Content;
  /** Binary buffers after the content frame. */
  buffers: Buffer[];
}

/** The contents of a kernel connection file. */
export interface ConnectionInfo {
  transport: "tcp" | "ipc";
  ip: string;
  key: string;
  signature_scheme: string;
  shell_port: number;
  iopub_port: number;
  stdin_port: number;
  control_port: number;
  hb_port: number;
  kernel_name?: string;
}

/** Raised when a message is malformed or its signature does not verify. */
export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

/**
 * Signs the four JSON frames with HMAC-SHA256.
 * @returns the lowercase hex digest, or "" when `key` is empty (signing off).
 */
export function sign(key: string, frames: ReadonlyArray<Buffer | string>): string {
  if (key === "") return "";
  const hmac = createHmac("sha256", key);
  for (const frame of frames) hmac.update(frame);
  return hmac.digest("hex");
}

/** Checks that a connection file names a signature scheme this code implements. */
export function checkSignatureScheme(info: Pick<ConnectionInfo, "signature_scheme">): void {
  const scheme = info.signature_scheme ?? "hmac-sha256";
  if (scheme !== "hmac-sha256") {
    throw new WireError(`unsupported signature_scheme "${scheme}"; expected "hmac-sha256"`);
  }
}

/** Creates a fresh header. */
export function makeHeader(msgType: string, session: string, username = "mllm-labs"): MessageHeader {
  return {
    msg_id: randomUUID(),
    msg_type: msgType,
    session,
    username,
    date: new Date().toISOString(),
    version: PROTOCOL_VERSION,
  };
}

/** Encodes a message into signed frames ready for `socket.send`. */
export function encode(key: string, message: Omit<JupyterMessage, "buffers"> & { buffers?: Buffer[] }): Buffer[] {
  const json = [message.header, message.parent_header, message.metadata, message.content].map((part) =>
    Buffer.from(JSON.stringify(part), "utf8"),
  );
  const signature = sign(key, json);
  return [...message.identities, DELIMITER, Buffer.from(signature, "ascii"), ...json, ...(message.buffers ?? [])];
}

/**
 * Decodes frames received from a socket and verifies the signature.
 * @throws WireError when the delimiter is missing, a JSON frame does not parse, or the HMAC does not match.
 */
export function decode(key: string, frames: ReadonlyArray<Buffer>): JupyterMessage {
  const delimiterIndex = frames.findIndex((frame) => frame.equals(DELIMITER));
  if (delimiterIndex < 0) throw new WireError("message has no <IDS|MSG> delimiter frame");
  if (frames.length < delimiterIndex + 6) {
    throw new WireError(`message has ${frames.length - delimiterIndex - 1} frames after the delimiter; expected at least 5`);
  }
  const signature = frames[delimiterIndex + 1].toString("ascii");
  const json = frames.slice(delimiterIndex + 2, delimiterIndex + 6);
  if (key !== "") {
    const expected = Buffer.from(sign(key, json), "ascii");
    const got = Buffer.from(signature, "ascii");
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
      throw new WireError(`invalid HMAC signature "${signature.slice(0, 16)}…"`);
    }
  }
  const names = ["header", "parent_header", "metadata", "content"];
  const [header, parent_header, metadata, content] = json.map((frame, i) => {
    try {
      return JSON.parse(frame.toString("utf8"));
    } catch (error) {
      throw new WireError(`the ${names[i]} frame is not JSON: ${(error as Error).message}`);
    }
  });
  if (typeof header?.msg_type !== "string") throw new WireError("the header has no msg_type");
  return {
    identities: frames.slice(0, delimiterIndex).map((frame) => Buffer.from(frame)),
    header,
    parent_header,
    metadata,
    content,
    buffers: frames.slice(delimiterIndex + 6).map((frame) => Buffer.from(frame)),
  };
}

/** The address of one socket of a connection. */
export function socketAddress(info: ConnectionInfo, port: number): string {
  return info.transport === "ipc" ? `ipc://${info.ip}-${port}` : `tcp://${info.ip}:${port}`;
}
