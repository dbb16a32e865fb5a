/**
 * A tiny drawing language for the code-generation instruction set: a program
 * draws a scene, one statement per line,
 *
 *     background white
 *     circle red small at 18 22
 *     star blue large at 44 40
 *
 * The model sees the image and writes the program; the metric executes the
 * answer and compares its render with the image (execution-based evaluation
 * as in HumanEval, Chen et al., 2021, with pictures for tests).
 */
import { type Scene, type SceneObject, BACKGROUNDS, sceneSvg, svgToRgb } from "./scene";
import { COLOR_NAMES, SHAPE_NAMES, SIZE_NAMES, type ColorName, type ShapeName, type SizeName } from "./vocabulary";

/** Background names of the language → colors (the scene generator's backgrounds). */
export const BACKGROUND_NAMES: Record<string, string> = { white: BACKGROUNDS[0], gray: BACKGROUNDS[1], cream: BACKGROUNDS[2], mist: BACKGROUNDS[3] };

/** The program that draws `scene`. */
export function sceneToProgram(scene: Scene): string {
  const background = Object.entries(BACKGROUND_NAMES).find(([, hex]) => hex === scene.background)?.[0];
  if (!background) throw new Error(`sceneToProgram: background ${scene.background} has no name in the drawing language`);
  return [`background ${background}`, ...scene.objects.map((o) => `${o.shape} ${o.color} ${o.size} at ${Math.round(o.x)} ${Math.round(o.y)}`)].join("\n");
}

/** Parses a program; errors name the line and what was expected. */
export function parseProgram(program: string, canvas = 64): Scene {
  let background: string = BACKGROUND_NAMES.white;
  const objects: SceneObject[] = [];
  const lines = program.split("\n");
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const words = line.split(/\s+/);
    const where = `line ${index + 1} ${JSON.stringify(line)}`;
    if (words[0] === "background") {
      if (words.length !== 2 || !(words[1] in BACKGROUND_NAMES)) throw new Error(`drawing program, ${where}: expected "background <${Object.keys(BACKGROUND_NAMES).join("|")}>"`);
      background = BACKGROUND_NAMES[words[1]];
      return;
    }
    const [shape, color, size, at, x, y] = words;
    if (words.length !== 6 || at !== "at") throw new Error(`drawing program, ${where}: expected "<shape> <color> <size> at <x> <y>"`);
    if (!SHAPE_NAMES.includes(shape as ShapeName)) throw new Error(`drawing program, ${where}: unknown shape ${JSON.stringify(shape)}; expected one of ${SHAPE_NAMES.join(", ")}`);
    if (!COLOR_NAMES.includes(color as ColorName)) throw new Error(`drawing program, ${where}: unknown color ${JSON.stringify(color)}; expected one of ${COLOR_NAMES.join(", ")}`);
    if (!SIZE_NAMES.includes(size as SizeName)) throw new Error(`drawing program, ${where}: unknown size ${JSON.stringify(size)}; expected one of ${SIZE_NAMES.join(", ")}`);
    const [px, py] = [Number(x), Number(y)];
    if (!Number.isInteger(px) || !Number.isInteger(py) || px < 0 || py < 0 || px > canvas || py > canvas) throw new Error(`drawing program, ${where}: coordinates must be integers in 0…${canvas}, got ${x} ${y}`);
    objects.push({ shape: shape as ShapeName, color: color as ColorName, size: size as SizeName, x: px, y: py });
  });
  return { canvas, background, objects };
}

export interface ProgramScore {
  /** The answer parsed and ran. */
  readonly runs: boolean;
  /** Fraction of pixels whose colors agree (every channel within 24 of 255). 0 when it does not run. */
  readonly pixelAgreement: number;
  /** Same objects (shape, color, size) at positions within 2 px, in any order. */
  readonly exactMatch: boolean;
  /** The parse error, when it did not run. */
  readonly error?: string;
}

/** Executes `answer` and compares its drawing with the reference program's. */
export async function scoreProgram(answer: string, reference: string, canvas = 64): Promise<ProgramScore> {
  const target = parseProgram(reference, canvas);
  let drawn: Scene;
  try {
    drawn = parseProgram(answer, canvas);
  } catch (error) {
    return { runs: false, pixelAgreement: 0, exactMatch: false, error: (error as Error).message };
  }
  const [a, b] = await Promise.all([svgToRgb(sceneSvg(drawn)), svgToRgb(sceneSvg(target))]);
  let agree = 0;
  for (let p = 0; p < a.data.length; p += 3) {
    if (Math.abs(a.data[p] - b.data[p]) <= 24 && Math.abs(a.data[p + 1] - b.data[p + 1]) <= 24 && Math.abs(a.data[p + 2] - b.data[p + 2]) <= 24) agree++;
  }
  const remaining = target.objects.slice();
  for (const o of drawn.objects) {
    const k = remaining.findIndex((t) => t.shape === o.shape && t.color === o.color && t.size === o.size && Math.abs(t.x - o.x) <= 2 && Math.abs(t.y - o.y) <= 2);
    if (k >= 0) remaining.splice(k, 1);
    else remaining.push(o); // an extra object: no match
  }
  return { runs: true, pixelAgreement: agree / (a.data.length / 3), exactMatch: remaining.length === 0 && drawn.objects.length === target.objects.length };
}
