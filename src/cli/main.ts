/**
 * The `mllm-labs` command.
 *
 *   mllm-labs run <notebook...> [--out DIR] [--in-place [--overwrite-on-failure]] [--timeout S]
 *   mllm-labs check <executed.ipynb> <reference.ipynb> [--rtol X] [--atol X] [--image-threshold X]
 *   mllm-labs build-exercises [--check] [--force] [--solutions DIR] [--notebooks DIR]
 *   mllm-labs grade <lab> <submission...> --out DIR [--jobs N] [--cell-timeout S] [--notebook-timeout S] [--memory MB]
 *   mllm-labs parity <fixture-dir...> [--backend NAME] [--json]
 *   mllm-labs eval <checkpoint-dir...> [--data DIR] [--backend NAME]
 *   mllm-labs pretrain <vision|language|audio|blip2|llava|llava-blind|llava-sentiment|llava-medical|llava-code-blind|llava-code|llava-robust-blind|llava-robust|lora-sweep|storyteller|videollama|sensors|points> [--out DIR] [--data DIR] [--steps N] [--backend NAME] [--force] [--ablation NAME]
 *   mllm-labs install-kernel
 *   mllm-labs kernel --connection-file FILE
 */
import * as path from "path";
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { packageVersion, projectRoot } from "../util/project_root";

const PROJECT_ROOT = projectRoot();

function positiveNumber(name: string) {
  return (value: string): number => {
    const number = Number(value);
    if (!Number.isFinite(number) || number <= 0)
      throw new InvalidArgumentError(`${name} must be a positive number, got "${value}"`);
    return number;
  };
}

function nonNegativeNumber(name: string) {
  return (value: string): number => {
    const number = Number(value);
    if (!Number.isFinite(number) || number < 0) throw new InvalidArgumentError(`${name} must be a number ≥ 0, got "${value}"`);
    return number;
  };
}

/** Runs the command line; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command("mllm-labs")
    .description("Multimodal LLM labs: run, check and build the lab notebooks")
    .version(packageVersion())
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });

  program
    .command("run")
    .description("execute notebooks headless on the lab kernel and write them executed")
    .argument("<notebook...>", "notebooks to execute, in order")
    .option("--out <dir>", "folder for the executed notebooks", "out")
    .option(
      "--in-place",
      "overwrite the input notebooks instead (a failing run keeps the original and writes NAME.partial.ipynb)",
    )
    .option("--overwrite-on-failure", "with --in-place, overwrite the input with the partial notebook even when the run fails")
    .option("--timeout <seconds>", "seconds each cell may run (at most 2147483)", positiveNumber("--timeout"), 600)
    .action(
      async (notebooks: string[], options: { out: string; inPlace?: boolean; overwriteOnFailure?: boolean; timeout: number }) => {
        const { runNotebooks } = await import("../runner/run");
        await runNotebooks(
          notebooks,
          {
            outDir: options.out,
            inPlace: options.inPlace,
            overwriteOnFailure: options.overwriteOnFailure,
            timeout: options.timeout,
            log: (line) => process.stderr.write(line + "\n"),
          },
          (result) => {
            const summary = `${result.input}: ${result.cellsRun}/${result.codeCells} cells in ${result.seconds.toFixed(1)} s → ${result.output}`;
            if (result.ok) {
              process.stdout.write(`ok ${summary}\n`);
            } else {
              process.stdout.write(`FAILED ${summary}\n  ${result.failure}\n`);
              code = result.signal === "SIGINT" ? 130 : result.signal === "SIGTERM" ? 143 : 1;
            }
          },
        );
      },
    );

  program
    .command("check")
    .description("compare an executed notebook with its reference, output by output")
    .argument("<executed>", "the executed notebook")
    .argument("<reference>", "the reference notebook (e.g. the solution)")
    .option("--rtol <x>", "relative tolerance for numbers in outputs", nonNegativeNumber("--rtol"), 1e-4)
    .option("--atol <x>", "absolute tolerance for numbers in outputs", nonNegativeNumber("--atol"), 1e-6)
    .option(
      "--image-threshold <x>",
      "perceptual distance allowed between images (0..1)",
      nonNegativeNumber("--image-threshold"),
      0.02,
    )
    .option("--max-per-cell <n>", "differences printed per cell (the rest are counted)", positiveNumber("--max-per-cell"), 10)
    .action(
      async (
        executed: string,
        reference: string,
        options: { rtol: number; atol: number; imageThreshold: number; maxPerCell: number },
      ) => {
        const { checkNotebooks, formatReport } = await import("../checker/check");
        const differences = await checkNotebooks(executed, reference, {
          tolerance: { rtol: options.rtol, atol: options.atol },
          imageThreshold: options.imageThreshold,
        });
        process.stdout.write(formatReport(differences, executed, reference, { maxPerCell: options.maxPerCell }));
        if (differences.length > 0) code = 1;
      },
    );

  program
    .command("build-exercises")
    .description(
      "write notebooks/ from solutions/ (solution regions become TODO stubs, hidden tests removed, outputs cleared, nbgrader metadata in both)",
    )
    .option("--check", "write nothing; fail if notebooks/ or the solutions' grading metadata is out of date")
    .option("--force", "overwrite exercise notebooks whose answer cells were edited (someone's work)")
    .option("--solutions <dir>", "solution notebooks", path.join(PROJECT_ROOT, "solutions"))
    .option("--notebooks <dir>", "exercise notebooks", path.join(PROJECT_ROOT, "notebooks"))
    .action(async (options: { check?: boolean; force?: boolean; solutions: string; notebooks: string }) => {
      const { buildExercises } = await import("../exercises/build");
      const { built, orphans } = buildExercises(options.solutions, options.notebooks, {
        check: options.check,
        force: options.force,
      });
      for (const item of built) {
        if (item.solutionChanged) {
          process.stdout.write(
            `${(options.check ? "OUT OF DATE" : "annotated").padEnd(11)} ${path.relative(process.cwd(), item.solution)} (grading metadata)\n`,
          );
        }
        if (item.refused) {
          process.stdout.write(
            `KEPT        ${path.relative(process.cwd(), item.exercise)}: ${item.refused}; not overwritten (--force overwrites it)\n`,
          );
          continue;
        }
        const state = item.changed ? (options.check ? "OUT OF DATE" : "written") : "up to date";
        process.stdout.write(
          `${state.padEnd(11)} ${path.relative(process.cwd(), item.exercise)} (${item.regions} exercise regions)\n`,
        );
      }
      for (const orphan of orphans) process.stdout.write(`NO SOLUTION ${path.relative(process.cwd(), orphan)} (left as is)\n`);
      if (built.some((b) => b.refused)) code = 1;
      if (options.check && (built.some((b) => b.changed || b.solutionChanged) || orphans.length > 0)) {
        process.stdout.write("notebooks/ is out of date: run `npm run build-exercises`\n");
        code = 1;
      }
    });

  program
    .command("grade")
    .description(
      "grade students' exercise notebooks, each in its own sandbox; writes gradebook.csv, gradebook.json and feedback/<student>.html",
    )
    .argument("<lab>", "the solution notebook, or its lab number (solutions/NN-*.ipynb)")
    .argument("<submission...>", "notebooks, students' folders, or class folders of them")
    .requiredOption("--out <dir>", "folder for the gradebook and the feedback")
    .option("--jobs <n>", "submissions graded at once (default: the number of CPU cores)", positiveNumber("--jobs"))
    .option("--cell-timeout <seconds>", "seconds each cell may run", positiveNumber("--cell-timeout"), 120)
    .option("--notebook-timeout <seconds>", "seconds one submission may run in all", positiveNumber("--notebook-timeout"), 900)
    .option("--memory <MiB>", "address space of each sandboxed process, MiB", positiveNumber("--memory"), 4096)
    .option("--processes <n>", "processes and threads per sandbox", positiveNumber("--processes"), 256)
    .option("--disk <MiB>", "size of the submission's folder and /tmp, MiB", positiveNumber("--disk"), 64)
    .action(
      async (
        lab: string,
        submissions: string[],
        options: {
          out: string;
          jobs?: number;
          cellTimeout: number;
          notebookTimeout: number;
          memory: number;
          processes: number;
          disk: number;
        },
      ) => {
        const { gradeSubmissions } = await import("../grade/grade");
        for (const [name, value] of [
          ["--cell-timeout", options.cellTimeout],
          ["--notebook-timeout", options.notebookTimeout],
        ] as const) {
          if (value > 86400) throw new InvalidArgumentError(`${name} must be at most 86400 s (a day), got ${value}`);
        }
        const rows = await gradeSubmissions(lab, submissions, {
          outDir: options.out,
          jobs: options.jobs,
          cellTimeout: options.cellTimeout,
          notebookTimeout: options.notebookTimeout,
          limits: {
            memoryMiB: Math.round(options.memory),
            processes: Math.round(options.processes),
            diskMiB: Math.round(options.disk),
          },
          log: (line) => process.stderr.write(line + "\n"),
        });
        for (const row of rows) process.stdout.write(`${row.student}\t${row.total}/${row.max}\t${row.status}\n`);
        process.stdout.write(
          `gradebook: ${path.join(options.out, "gradebook.csv")}, feedback: ${path.join(options.out, "feedback")}/\n`,
        );
        if (rows.some((r) => r.status.startsWith("error"))) code = 1;
      },
    );

  program
    .command("parity")
    .description("run the library on reference fixtures (Hugging Face / peft / bitsandbytes outputs) and compare every output")
    .argument(
      "<fixture-dir...>",
      "fixture folders (model/config.json + io.safetensors, base/ + adapter/, nf4.json, whisper_mel, clip_preprocess)",
    )
    .option(
      "--backend <name>",
      "tensor backend: webgpu, tensorflow, native or cpu (default: the engine's choice or MLLM_BACKEND)",
    )
    .option("--json", "print one JSON object per fixture instead of the table")
    .action(async (directories: string[], options: { backend?: string; json?: boolean }) => {
      const { initEngine, closeEngine } = await import("../engine/init");
      const { runParity, formatReport } = await import("../parity/run");
      const engine = await initEngine({ backend: options.backend as any, verbose: !options.json });
      try {
        for (const directory of directories) {
          let report;
          try {
            report = await runParity(directory);
          } catch (error) {
            process.stdout.write(
              options.json
                ? JSON.stringify({ directory, ok: false, error: (error as Error).message }) + "\n"
                : `parity: ${directory}: ${(error as Error).message}\n`,
            );
            code = 1;
            continue;
          }
          if (options.json) process.stdout.write(JSON.stringify({ ...report, backend: engine.backend }) + "\n");
          else process.stdout.write(formatReport(report) + "\n");
          if (!report.ok) code = 1;
        }
      } finally {
        closeEngine();
      }
    });

  program
    .command("eval")
    .description(
      "recompute a checkpoint's card metrics (and, for the labs' models, its baselines) on the world's test split; prints one JSON object per checkpoint",
    )
    .argument(
      "<checkpoint-dir...>",
      "checkpoint folders (data/checkpoints/vision, language, audio, blip2, llava, videollama, sensors, …)",
    )
    .option("--data <dir>", "the world folder", path.join(PROJECT_ROOT, "data", "world"))
    .option(
      "--backend <name>",
      "tensor backend: webgpu, tensorflow, native or cpu (default: the engine's choice or MLLM_BACKEND)",
    )
    .action(async (directories: string[], options: { data: string; backend?: string }) => {
      const { initEngine, closeEngine } = await import("../engine/init");
      const { evaluateCheckpoint } = await import("../pretrain/run");
      const engine = await initEngine({ backend: options.backend as any, verbose: false });
      try {
        for (const directory of directories) {
          try {
            const result = await evaluateCheckpoint(directory, options.data);
            process.stdout.write(JSON.stringify({ ...result, backend: engine.backend }) + "\n");
          } catch (error) {
            process.stderr.write(`eval: ${(error as Error).message}\n`);
            code = 1;
          }
        }
      } finally {
        closeEngine();
      }
    });

  program
    .command("pretrain")
    .description(
      "train a backbone on the world and write its checkpoint with config, tokenizer and card (npm run pretrain -- <name>)",
    )
    .argument(
      "<name>",
      "vision, language, audio, blip2, llava, llava-blind, llava-sentiment, llava-medical, llava-code-blind, llava-code, llava-robust-blind, llava-robust, lora-sweep, storyteller, videollama, sensors or points (the labs' models need their backbones beside their folder)",
    )
    .option("--out <dir>", "checkpoint folder (default data/checkpoints/<name>)")
    .option("--data <dir>", "the world folder", path.join(PROJECT_ROOT, "data", "world"))
    .option("--steps <n>", "optimiser steps (default: the card's)", positiveNumber("--steps"))
    .option("--seed <n>", "seed", nonNegativeNumber("--seed"), 0)
    .option("--backend <name>", "tensor backend (default: the engine's choice or MLLM_BACKEND; the cards were made on native)")
    .option("--force", "replace an existing checkpoint folder")
    .option(
      "--ablation <name>",
      "llava only: one ablation row of LLAVA_ABLATIONS (default reruns the card's plan; an unknown name lists them all): the card's plan with one change; writes only card.json (default --out data/checkpoints/llava-ablation-<name>)",
    )
    .action(
      async (
        name: string,
        options: {
          out?: string;
          data: string;
          steps?: number;
          seed: number;
          backend?: string;
          force?: boolean;
          ablation?: string;
        },
      ) => {
        const { initEngine, closeEngine } = await import("../engine/init");
        const { pretrain } = await import("../pretrain/run");
        await initEngine({ backend: options.backend as any });
        try {
          const folder = options.ablation === undefined ? name : `${name}-ablation-${options.ablation}`;
          const out = options.out ?? path.join(PROJECT_ROOT, "data", "checkpoints", folder);
          const card = await pretrain(name, {
            world: options.data,
            out,
            steps: options.steps,
            seed: options.seed,
            force: options.force,
            ablation: options.ablation,
          });
          process.stdout.write(
            JSON.stringify({
              checkpoint: out,
              parameters: card.parameters,
              train_seconds: card.train_seconds,
              metrics: card.metrics,
            }) + "\n",
          );
        } finally {
          closeEngine();
        }
      },
    );

  program
    .command("install-kernel")
    .description('register the "Multimodal Labs (TypeScript)" kernelspec under <project>/.jupyter')
    .action(async () => {
      const { jupyterDataDir } = await import("../kernel/kernelspec");
      const { installKernelspec, describeInstall } = await import("../kernel/kernelspec_install");
      process.stdout.write(
        `${describeInstall(installKernelspec(PROJECT_ROOT))}\nJupyter finds it with JUPYTER_PATH=${jupyterDataDir(PROJECT_ROOT)} (npm start sets it)\n`,
      );
    });

  program
    .command("kernel")
    .description("start the lab kernel (Jupyter runs this)")
    .requiredOption("--connection-file <file>", "the connection file Jupyter wrote")
    .action(async (options: { connectionFile: string }) => {
      const { startKernel } = await import("../kernel/main");
      await startKernel(options.connectionFile);
      code = -1; // keep running
    });

  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
  if (code === -1) return new Promise<number>(() => undefined);
  return code;
}
