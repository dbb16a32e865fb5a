/**
 * Entry point of the lab kernel: tslab's TypeScript executor behind the
 * project's own protocol server ({@link KernelServer}), with the lab preload.
 *
 * Jupyter starts it as `node dist/src/kernel/main.js --connection-file FILE`
 * (see {@link writeKernelspec}); the runner starts it the same way.
 */
import { projectRoot } from "../util/project_root";
import { KernelServer } from "./server";
import { preload } from "./preload";
import { watchParent } from "./parent_watch";

export async function startKernel(connectionFile: string): Promise<KernelServer> {
  watchParent(connectionFile);
  const notes: string[] = [];
  const ready = preload(notes);
  const server = new KernelServer({ connectionFile, projectRoot: projectRoot(), ready, startupNotes: () => notes });
  await server.start();
  process.on("SIGINT", () => server.interrupt());
  process.on("SIGTERM", () => {
    void server.close().then(() => process.exit(0));
  });
  // A promise rejected or an exception thrown outside any cell's await chain must not kill the kernel.
  process.on("uncaughtException", (error) => process.stderr.write(`Uncaught exception: ${error?.stack ?? error}\n`));
  process.on("unhandledRejection", (reason) =>
    process.stderr.write(`Unhandled promise rejection: ${(reason as Error)?.stack ?? reason}\n`),
  );
  return server;
}

if (require.main === module) {
  const index = process.argv.indexOf("--connection-file");
  const connectionFile = index >= 0 ? process.argv[index + 1] : undefined;
  if (!connectionFile) {
    process.stderr.write("usage: node dist/src/kernel/main.js --connection-file FILE\n");
    process.exit(2);
  }
  startKernel(connectionFile).catch((error) => {
    process.stderr.write(`mllm-labs kernel failed to start: ${error?.stack ?? error}\n`);
    process.exit(1);
  });
}
