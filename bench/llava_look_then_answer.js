/**
 * Look, then answer (docs/lab02-plan.md, "Three tunes against binding"): llava-robust's committed recipe with each
 * existence answer preceded by what the model sees of the asked shape, "is there a red star in the image?" → "the star
 * is blue. no" ("the stars are red and blue. yes", "there is no star. no"). The colour of a named shape is a lookup the
 * model already makes (VQA colour 0.75); written before the verdict, it turns a binding question into that lookup and a
 * comparison of words, a chain of thought of one step. Trains the sighted model only (`runLlavaFullTune`; the folder
 * OUT is written beside symlinks to the committed llava, llava-blind, llava-robust-blind, language and vision, and
 * measured there with the eval's 6-token answers), then asks the eval's POPE questions (300 test scenes, 3 per image,
 * seed 0) with room for the longer answer (16 new tokens; POPE's parse: a "no" or "not" anywhere), and prints one JSON
 * line: POPE's F1, accuracy and yes-ratio per kind, and on the adversarial questions how often the colours it names for
 * the asked shape are the scene's (`lookup_right`), how often its verdict agrees with them (`verdict_follows_lookup`)
 * and how often the verdict is right when they are (`verdict_right_when_lookup_right`).
 * `node bench/llava_look_then_answer.js OUT [STEPS=1500]` (about 30 minutes on two threads);
 * `node bench/llava_look_then_answer.js OUT eval` measures a folder it wrote, without training.
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));

/** What the model is taught to say of the asked shape before its verdict. */
function lookThenAnswer(objects, color, shape, verdict) {
  const colors = [...new Set(objects.filter((o) => o.shape === shape).map((o) => o.color))];
  const seen =
    colors.length === 0
      ? `there is no ${shape}.`
      : colors.length === 1
        ? `the ${shape} is ${colors[0]}.`
        : `the ${shape}s are ${colors.slice(0, -1).join(", ")} and ${colors[colors.length - 1]}.`;
  return `${seen} ${verdict}`;
}

void (async () => {
  const out = path.resolve(process.argv[2]);
  const evalOnly = process.argv[3] === "eval";
  const steps = evalOnly ? undefined : Number(process.argv[3] ?? 1500);
  const world = path.join(root, "data/world");
  await dist("engine/init").initEngine({ backend: "native" });
  const { llavaTrainingData, EXISTENCE_STAGE_SEED_OFFSET, loadLlava } = dist("pretrain/llava");
  const { robustExistencePairs, LLAVA_ROBUST_PLAN, LLAVA_ROBUST_NEIGHBOURS, ROBUST_PAIRS_SEED_OFFSET, ROBUST_STAGE_SEED_OFFSET } =
    dist("pretrain/llava_robust");
  const { runLlavaFullTune } = dist("pretrain/llava_full_tune");
  const { llavaDomainMarkdown } = dist("pretrain/llava_domain");
  const { conversationFromPairs } = dist("data/llava_instructions");
  const { sampleScene, sceneSvg, svgToRgb } = dist("data/scene");
  const { SCENE_COUNT_WEIGHTS } = dist("data/world");
  const { Random } = dist("util/random");
  const { chatBatch } = dist("pipelines/llava_chat");
  const { imageTensor, openSplit } = dist("data/loaders");
  const { buildPopeQuestions, popeMetrics, POPE_NEGATIVES } = dist("metrics/pope");
  const plan = { ...LLAVA_ROBUST_PLAN, steps };
  const seed = 0;
  if (!evalOnly)
    await runLlavaFullTune(
      { world, out },
      {
        name: "llava-robust",
        blind: false,
        baseRelative: LLAVA_ROBUST_NEIGHBOURS.base,
        neighbours: { sighted: LLAVA_ROBUST_NEIGHBOURS.robust, blind: LLAVA_ROBUST_NEIGHBOURS.blind },
        examples: async () => {
          const mixture = await llavaTrainingData(world, plan.replay, seed, true);
          // llava-robust's scenes and pairs (the same seeds), each answer preceded by what is seen of the shape
          const sceneRandom = new Random(seed + EXISTENCE_STAGE_SEED_OFFSET);
          const pairRandom = new Random(seed + ROBUST_PAIRS_SEED_OFFSET);
          const existence = [];
          for (let k = 0; k < plan.existenceScenes; k++) {
            const scene = sampleScene(sceneRandom, { countWeights: SCENE_COUNT_WEIGHTS });
            const rounds = robustExistencePairs(scene.objects, plan, pairRandom).map((round) => ({
              instruction: round.instruction,
              response: lookThenAnswer(scene.objects, round.color, round.shape, round.response),
            }));
            existence.push({
              image: { key: `fresh/existence/${k}`, rgb: (await svgToRgb(sceneSvg(scene))).data },
              conversation: (r) => conversationFromPairs(r.shuffle(rounds)),
            });
          }
          return [...existence, ...mixture.stage2];
        },
        steps: plan.steps,
        batchSize: plan.batchSize,
        learningRate: plan.learningRate,
        stageSeed: seed + ROBUST_STAGE_SEED_OFFSET,
        blindConfigNote: "",
        baselineNotes: {},
        card: ({ common }) => ({
          ...common,
          title: "llava-robust, look then answer (bench/llava_look_then_answer.js)",
          description: "bench/llava_look_then_answer.js: not a committed checkpoint",
          data: "llava-robust's, each existence answer preceded by the asked shape's colours",
          metric_notes: {},
          plan,
          eval_options: plan.evaluation,
        }),
        markdown: llavaDomainMarkdown,
      },
    );
  const { model, tokenizer } = loadLlava(out);
  const split = openSplit(world, "scenes", "test");
  const byId = new Map(split.records.map((r) => [r.id, r]));
  const result = { steps };
  const examples = [];
  const lookup = { answers: 0, right: 0, follows: 0, rightWhenLookupRight: 0 };
  for (const negatives of POPE_NEGATIVES) {
    const questions = buildPopeQuestions(split.records, { negatives, perImage: 3, seed: 0 });
    const answers = [];
    for (let start = 0; start < questions.length; start += 64) {
      const chunk = questions.slice(start, start + 64);
      const pixels = await imageTensor(
        chunk.map((q) => path.join(split.dir, byId.get(q.imageId).image)),
        "clip",
      );
      const replies = await chatBatch(
        model,
        tokenizer,
        chunk.map((q) => [{ role: "user", content: q.question }]),
        { pixelValues: pixels },
        { maxNewTokens: 16 },
      );
      pixels.dispose();
      replies.forEach((reply, k) => {
        answers.push(reply.text); // popeMetrics parses as POPE does
        if (examples.length < 6) examples.push(`${chunk[k].question} → ${reply.text}`);
        if (negatives !== "adversarial") return;
        // "the star is blue. no" → the named colours ["blue"] and the verdict "no"; other forms are not counted
        const q = chunk[k];
        const text = reply.text.trim();
        const match =
          text.match(/^there is no \w+\.()/) ??
          text.match(/^the \w+ is (\w+)\./) ??
          text.match(/^the \w+s are ([\w, ]+ and \w+)\./);
        if (!match) return;
        const named = match[1]
          ? match[1]
              .split(/, | and /)
              .sort()
              .join(",")
          : "";
        const objects = byId.get(q.imageId).objects;
        const truth = [...new Set(objects.filter((o) => o.shape === q.shape).map((o) => o.color))].sort().join(",");
        const verdict = text.split(/\s+/).pop();
        lookup.answers++;
        if (named === truth) lookup.right++;
        if (verdict === (named.split(",").includes(q.color) ? "yes" : "no")) lookup.follows++;
        if (named === truth && verdict === q.answer) lookup.rightWhenLookupRight++;
      });
    }
    const metrics = popeMetrics(
      answers,
      questions.map((q) => q.answer),
    );
    for (const key of ["f1", "accuracy", "yes_ratio"])
      result[`pope_${negatives}_${key}`] = Number(metrics[key === "yes_ratio" ? "yesRatio" : key].toFixed(3));
  }
  model.dispose();
  const share = (count, of) => Number((count / of).toFixed(3));
  console.log(
    JSON.stringify({
      ...result,
      adversarial_answers_parsed: lookup.answers,
      lookup_right: share(lookup.right, lookup.answers),
      verdict_follows_lookup: share(lookup.follows, lookup.answers),
      verdict_right_when_lookup_right: share(lookup.rightWhenLookupRight, lookup.right),
      examples,
    }),
  );
})();
