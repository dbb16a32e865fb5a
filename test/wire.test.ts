import { describe, expect, it } from "vitest";
import { decode, DELIMITER, encode, makeHeader, sign, WireError, checkSignatureScheme } from "../src/jupyter/wire";

describe("Jupyter wire protocol", () => {
  it("signs frames like Python's hmac (HMAC-SHA256 over header, parent, metadata, content)", () => {
    // Expected digest computed with Python: hmac.new(b"secret-key", digestmod=hashlib.sha256) over the same frames.
    const frames = [
      '{"msg_id":"1","msg_type":"execute_request","session":"s","username":"u","date":"2026-01-01T00:00:00Z","version":"5.3"}',
      "{}",
      "{}",
      '{"code":"1+1"}',
    ];
    expect(sign("secret-key", frames)).toBe("f62cdf0036441baae97eb13648717dc6e72e02d465117b316b5004d62133f027");
    expect(sign("", frames)).toBe("");
  });

  it("round-trips a message with identities and buffers", () => {
    const header = makeHeader("execute_request", "session-1");
    const frames = encode("k", {
      identities: [Buffer.from("client-7")],
      header,
      parent_header: {},
      metadata: { a: 1 },
      content: { code: "6 * 7" },
      buffers: [Buffer.from([1, 2, 3])],
    });
    expect(frames[1].equals(DELIMITER)).toBe(true);
    const message = decode("k", frames);
    expect(message.identities.map(String)).toEqual(["client-7"]);
    expect(message.header).toEqual(header);
    expect(message.content).toEqual({ code: "6 * 7" });
    expect([...message.buffers[0]]).toEqual([1, 2, 3]);
  });

  it("rejects a forged signature, a missing delimiter, short and non-JSON messages", () => {
    const frames = encode("right", {
      identities: [],
      header: makeHeader("x", "s"),
      parent_header: {},
      metadata: {},
      content: {},
    });
    expect(() => decode("wrong", frames)).toThrow(/invalid HMAC/);
    expect(() =>
      decode(
        "right",
        frames.filter((f) => !f.equals(DELIMITER)),
      ),
    ).toThrow(/delimiter/);
    expect(() => decode("right", frames.slice(0, 4))).toThrow(/frames after the delimiter/);
    const bad = [...frames];
    bad[5] = Buffer.from("{not json");
    expect(() => decode("", bad)).toThrow(WireError);
  });

  it("accepts only hmac-sha256", () => {
    expect(() => checkSignatureScheme({ signature_scheme: "hmac-md5" })).toThrow(/hmac-md5/);
    expect(() => checkSignatureScheme({ signature_scheme: "hmac-sha256" })).not.toThrow();
  });
});
