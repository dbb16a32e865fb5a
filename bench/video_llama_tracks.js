/**
 * Lab 03 diagnostic (docs/lab03-plan.md, "Fourth round"): can the video Q-Former learn where each object is and which
 * way it moves when it is taught from the clips' exact tracks, and does the frozen LLM then read direction from its
 * queries? A BLIP-2-style stage 1 for video: a linear track head on the Q-Former's flattened queries predicts, for two
 * object slots, every frame's position and visibility, the object's initial direction, colour and shape; the slots are
 * matched to the clip's objects by the cheaper of the two assignments (DETR's set loss, Carion et al. 2020, for two
 * slots). Optionally this track stage (`pre` steps, the head's loss alone) comes first; then `steps` steps of the LLM
 * answer loss on the clips' questions, order questions and captions (as stage A of `npm run pretrain -- videollama`),
 * with the track loss beside it (`lambda`), or with the Q-Former frozen and only the projection learning (`freezeQ=1`).
 * Held out: the head's direction accuracy and position error, and the greedy answers per question type (direction
 * split by one- and two-object clips) for the frames in order, shuffled, and the middle frame repeated.
 *
 * `node bench/video_llama_tracks.js NAME [key=value …]`; keys (defaults):
 * - seed (501): the training clips' seed; the held-out clips are drawn with seed + 1;
 * - train (1600) fresh training clips, heldout (300) held-out clips;
 * - pre (0) track-stage steps, steps (600) answer steps, lambda (1) the track loss's weight in the answer steps;
 * - freezeQ (0: 1 freezes the Q-Former and the head in the answer steps), dironly (0: 1 asks only direction questions);
 * - codes (0: 1 adds two soft tokens after the projected queries, each a learned linear map of one slot's predicted
 *   direction, colour, shape and mean visibility);
 * - merge (1), diff (1), tokpos (0), pool (2): VideoLlamaConfig's mergeFrameTokens, frameDifferences,
 *   frameTokenPositions, framePatchPool;
 * - lr (1e-3) peak learning rate, answerLr (0: lr) that of the answer steps, posw (10) the position loss's weight;
 * - evalEvery (0): check the held-out head every N steps.
 * The last line is `RESULT {json}`.
 *
 * The library's version of this head, its set loss and code tokens is `VideoTrackHead` (src/models/video_track_head.ts,
 * docs/lab03-plan.md "Fifth round"); this script keeps its own three-attribute head so that the fourth round's numbers
 * reproduce.
 */
"use strict";
const path = require("path");
const tf = require("@tensorflow/tfjs");
const dist = (file) => require(path.join(__dirname, "../dist/src", file));
const { initEngine } = dist("engine/init");
const { VideoLlamaForConditionalGeneration, VIDEO_LLAMA_PRESETS } = dist("models/video_llama");
const { loadLlama, loadCLIPVision, loadAudioEncoder } = dist("io/pretrained");
const { loadTokenizer } = dist("tokenizer/tokenizer");
const { languageText } = dist("pipelines/blip2");
const { AdamW } = dist("train/adamw");
const { Random } = dist("util/random");
const { sampleVideo, DIRECTIONS } = dist("data/video");
const { COLOR_NAMES, SHAPE_NAMES } = dist("data/vocabulary");
const { orderQuestions } = dist("data/video_questions");
const { learningRateAt } = dist("pretrain/common");
const { shuffledFrameOrder, singleMiddleFrame } = dist("data/temporal_sampling");
const { assembleSoftPrompt, shiftedLanguageModelLoss } = dist("models/blip2_losses");
const { answerClipQuestions, renderedFrameFeatures, videoQuestionPrompt, VIDEO_CAPTION_QUESTION } = dist("pretrain/videollama");
const { videoQuestionType } = dist("metrics/video_qa");
const { vqaAccuracy } = dist("data/vqa");

const root = path.join(__dirname, "..");
const checkpoints = path.join(root, "data/checkpoints");
const name = process.argv[2] ?? "run";
const DEFAULTS = {
  seed: 501,
  train: 1600,
  heldout: 300,
  pre: 0,
  steps: 600,
  lambda: 1,
  freezeQ: 0,
  dironly: 0,
  merge: 1,
  diff: 1,
  tokpos: 0,
  pool: 2,
  lr: 1e-3,
  answerLr: 0,
  codes: 0,
  posw: 10,
  evalEvery: 0,
};
const options = { ...DEFAULTS };
for (const arg of process.argv.slice(3)) {
  const [key, value] = arg.split("=");
  if (!(key in DEFAULTS) || !Number.isFinite(Number(value)))
    throw new Error(
      `video_llama_tracks: unknown option or non-number value ${JSON.stringify(arg)}; keys: ${Object.keys(DEFAULTS).join(", ")}`,
    );
  options[key] = Number(value);
}
const F = 12;
const DIRECTION_NAMES = Object.keys(DIRECTIONS);
const COLORS = COLOR_NAMES.length;
const SHAPES = SHAPE_NAMES.length;
/** Per slot: F positions (x, y), F visibility logits, 4 direction, the colour and the shape logits. */
const PER_SLOT = 3 * F + 4 + COLORS + SHAPES;

const questionsOf = (clips) =>
  clips.flatMap((clip, row) =>
    [...clip.questions, ...orderQuestions(clip.tracks, F)].map((q) => ({
      clip: row,
      question: q.question,
      answer: q.answer,
      answers: q.answers,
    })),
  );

/** The exact tracks as arrays, two object slots per clip (the second empty for one-object clips); positions in [−1, 1]. */
function trackTargets(clips) {
  const N = clips.length;
  const out = {
    position: new Float32Array(N * 2 * F * 2),
    visible: new Float32Array(N * 2 * F),
    exists: new Float32Array(N * 2),
    direction: new Int32Array(N * 2),
    color: new Int32Array(N * 2),
    shape: new Int32Array(N * 2),
  };
  clips.forEach((clip, n) =>
    clip.tracks.forEach((track, k) => {
      const j = n * 2 + k;
      out.exists[j] = 1;
      out.direction[j] = DIRECTION_NAMES.indexOf(track.direction);
      out.color[j] = COLOR_NAMES.indexOf(track.object.color);
      out.shape[j] = SHAPE_NAMES.indexOf(track.object.shape);
      for (let f = 0; f < F; f++) {
        out.visible[j * F + f] = f >= track.appearAt && f < track.disappearAt ? 1 : 0;
        out.position[(j * F + f) * 2] = track.positions[f][0] / 32 - 1;
        out.position[(j * F + f) * 2 + 1] = track.positions[f][1] / 32 - 1;
      }
    }),
  );
  return out;
}

/** The targets of the clips `rows`, as tensors. */
function gatherTargets(targets, rows) {
  const B = rows.length;
  const pick = (array, per) => {
    const out = new array.constructor(B * 2 * per);
    rows.forEach((row, b) => out.set(array.subarray(row * 2 * per, (row + 1) * 2 * per), b * 2 * per));
    return out;
  };
  return {
    position: tf.tensor4d(pick(targets.position, F * 2), [B, 2, F, 2]),
    visible: tf.tensor3d(pick(targets.visible, F), [B, 2, F]),
    exists: tf.tensor2d(pick(targets.exists, 1), [B, 2]),
    direction: tf.tensor2d(pick(targets.direction, 1), [B, 2], "int32"),
    color: tf.tensor2d(pick(targets.color, 1), [B, 2], "int32"),
    shape: tf.tensor2d(pick(targets.shape, 1), [B, 2], "int32"),
  };
}

/**
 * The track loss of a batch. queries: [B, Nq, Dq] → per clip [B] (the cheaper slot assignment), the predictions, and
 * whether the slots were swapped (matched on positions and visibility alone).
 */
function trackLoss(head, queries, targets) {
  const B = queries.shape[0];
  const out = queries.reshape([B, -1]).matMul(head.weight).add(head.bias).reshape([B, 2, PER_SLOT]); // [B, slots, PER_SLOT]
  const predicted = {
    position: out.slice([0, 0, 0], [B, 2, 2 * F]).reshape([B, 2, F, 2]),
    visible: out.slice([0, 0, 2 * F], [B, 2, F]),
    direction: out.slice([0, 0, 3 * F], [B, 2, 4]),
    color: out.slice([0, 0, 3 * F + 4], [B, 2, COLORS]),
    shape: out.slice([0, 0, 3 * F + 4 + COLORS], [B, 2, SHAPES]),
  };
  const crossEntropy = (logits, labels, classes) =>
    tf.losses.softmaxCrossEntropy(tf.oneHot(labels, classes), logits, undefined, undefined, tf.Reduction.NONE);
  const take = (x, index) => x.slice([0, index], [B, 1]).reshape([B, ...x.shape.slice(2)]); // slot or object `index`
  const cost = [0, 1].map((slot) =>
    [0, 1].map((object) => {
      const visible = take(targets.visible, object); // [B, F]
      const squared = take(predicted.position, slot)
        .sub(take(targets.position, object))
        .square()
        .sum(2)
        .mul(visible)
        .sum(1)
        .div(visible.sum(1).maximum(1)); // [B]
      const visibility = tf.losses
        .sigmoidCrossEntropy(visible, take(predicted.visible, slot), undefined, 0, tf.Reduction.NONE)
        .mean(1); // [B]
      const classes = crossEntropy(take(predicted.direction, slot), take(targets.direction, object), 4)
        .add(crossEntropy(take(predicted.color, slot), take(targets.color, object), COLORS))
        .add(crossEntropy(take(predicted.shape, slot), take(targets.shape, object), SHAPES));
      const geometry = visibility.add(take(targets.exists, object).mul(squared.mul(options.posw))); // [B]
      return { total: geometry.add(take(targets.exists, object).mul(classes)), geometry };
    }),
  );
  const pairings = (part) => [cost[0][0][part].add(cost[1][1][part]), cost[0][1][part].add(cost[1][0][part])];
  const [straight, swapped] = pairings("total");
  // Which slot holds which object, for scoring: decided by where and when (positions, visibility) only, so that the
  // labels being scored do not choose the matching.
  const [straightGeometry, swappedGeometry] = pairings("geometry");
  return { loss: tf.minimum(straight, swapped), predicted, swapped: swappedGeometry.less(straightGeometry) };
}

void (async () => {
  await initEngine({ backend: "native", verbose: false });
  console.log(name, JSON.stringify(options));
  const tokenizer = loadTokenizer(path.join(root, "data/world/tokenizer"));
  const language = loadLlama(path.join(checkpoints, "language"));
  const audio = loadAudioEncoder(path.join(checkpoints, "audio"));
  const vision = loadCLIPVision(path.join(checkpoints, "vision"));
  const model = new VideoLlamaForConditionalGeneration(
    {
      ...VIDEO_LLAMA_PRESETS["video-llama-nano"],
      framePatchPool: options.pool,
      mergeFrameTokens: Boolean(options.merge),
      frameDifferences: Boolean(options.diff),
      frameTokenPositions: Boolean(options.tokpos),
      vision: vision.config,
      audio: audio.config,
      text: language.config,
      seed: 0,
    },
    { vision, audio, language },
  );
  const started = Date.now();
  const draw = (count, seed) => {
    const random = new Random(seed);
    return Array.from({ length: count }, () => sampleVideo(random, F));
  };
  const trainClips = draw(options.train, options.seed);
  const heldoutClips = draw(options.heldout, options.seed + 1);
  const trainFeatures = await renderedFrameFeatures(model, trainClips);
  const heldoutFeatures = await renderedFrameFeatures(model, heldoutClips);
  console.log(
    `features of ${trainClips.length} + ${heldoutClips.length} clips in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  const targets = trackTargets(trainClips);
  const heldoutTargets = trackTargets(heldoutClips);
  let items = questionsOf(trainClips).map((q) => ({
    clip: q.clip,
    prompt: videoQuestionPrompt(q.question),
    target: ` ${q.answer}`,
  }));
  trainClips.forEach((clip, row) =>
    items.push({ clip: row, prompt: videoQuestionPrompt(VIDEO_CAPTION_QUESTION), target: ` ${clip.caption}` }),
  );
  if (options.dironly) items = items.filter((item) => videoQuestionType(item.prompt) === "direction");
  const Nq = model.config.numVideoQueryTokens;
  const Dq = model.config.videoQformer.hiddenSize;
  const head = {
    weight: tf.variable(tf.randomNormal([Nq * Dq, 2 * PER_SLOT], 0, 0.02, "float32", 5)),
    bias: tf.variable(tf.zeros([2 * PER_SLOT])),
  };

  const CODE = 4 + COLORS + SHAPES + 1;
  const Dtext = model.config.text.hiddenSize;
  const codeProjection = {
    weight: tf.variable(tf.randomUniform([CODE, Dtext], -1 / Math.sqrt(CODE), 1 / Math.sqrt(CODE), "float32", 6)),
    bias: tf.variable(tf.zeros([Dtext])),
  };
  /** The video bridge's output ({ queryOutput [B, Nq, Dq], languageInputs [B, Nq, Dtext] }) → soft prompt [B, Nq (+ 2 with codes), Dtext] */
  const softPrompt = ({ queryOutput, languageInputs }) => {
    if (!options.codes) return languageInputs;
    const B = queryOutput.shape[0];
    const out = queryOutput.reshape([B, -1]).matMul(head.weight).add(head.bias).reshape([B, 2, PER_SLOT]);
    const code = tf.concat(
      [
        tf.softmax(out.slice([0, 0, 3 * F], [B, 2, 4])),
        tf.softmax(out.slice([0, 0, 3 * F + 4], [B, 2, COLORS])),
        tf.softmax(out.slice([0, 0, 3 * F + 4 + COLORS], [B, 2, SHAPES])),
        tf.sigmoid(out.slice([0, 0, 2 * F], [B, 2, F])).mean(2, true),
      ],
      2,
    ); // [B, 2, CODE]: each slot's predicted direction, colour, shape and how often it is visible
    const codeTokens = code
      .reshape([B * 2, CODE])
      .matMul(codeProjection.weight)
      .add(codeProjection.bias)
      .reshape([B, 2, Dtext]);
    return tf.concat([languageInputs, codeTokens], 1);
  };
  /** The answer loss through the frozen LLM with {@link softPrompt} (what `model.forward` computes, plus the code tokens). */
  const answerLossOf = (bridge, text) => {
    const embeds = model.languageModel.model.embedTokens.apply(text.inputIds);
    const soft = assembleSoftPrompt(softPrompt(bridge), embeds, text.attentionMask, text.labels);
    const { logits } = model.languageModel.forward({ inputsEmbeds: soft.inputsEmbeds, attentionMask: soft.attentionMask });
    return shiftedLanguageModelLoss(logits, soft.labels);
  };
  /** Greedy answers (≤ 4 tokens) with {@link softPrompt}; features: the held-out clips' (reordered) features. */
  async function answerWithCodes(features, questions) {
    const said = [];
    for (let start = 0; start < questions.length; start += 64) {
      const batch = questions.slice(start, start + 64);
      const text = languageText(
        tokenizer,
        batch.map((q) => videoQuestionPrompt(q.question)),
        undefined,
        "left",
      );
      const { inputsEmbeds, attentionMask } = tf.tidy(() => {
        const frames = tf.gather(
          features,
          batch.map((q) => q.clip),
        );
        const embeds = model.languageModel.model.embedTokens.apply(text.inputIds);
        return assembleSoftPrompt(softPrompt(model.videoPrompt(frames)), embeds, text.attentionMask);
      });
      const rows = await model.languageModel.generate(undefined, { inputsEmbeds, attentionMask, maxNewTokens: 4 });
      tf.dispose([inputsEmbeds, attentionMask, text.inputIds, text.attentionMask, text.labels].filter(Boolean));
      for (const row of rows) {
        const end = row.indexOf(tokenizer.eosTokenId);
        said.push(tokenizer.decode(end >= 0 ? row.slice(0, end) : row, { skipSpecialTokens: true }).trim());
      }
    }
    return said;
  }

  /** The held-out features with each clip's frames reordered as the view says ("shuffled": seed 11, "middle"). */
  const reordered = (view) =>
    tf.tidy(() => {
      const random = new Random(11);
      const identity = [...Array(F).keys()];
      const rows = heldoutClips.flatMap((_, clip) =>
        (view === "shuffled" ? shuffledFrameOrder(identity, random) : singleMiddleFrame(identity)).map((f) => clip * F + f),
      );
      const [M, , Kh, Dh] = heldoutFeatures.shape;
      return tf.gather(heldoutFeatures.reshape([M * F, Kh, Dh]), rows).reshape(heldoutFeatures.shape);
    });

  /** The head on the held-out clips: direction accuracy (all objects; one-object clips) and position error in pixels. */
  async function heldoutHead(features = heldoutFeatures, label = "frames in order") {
    const held = gatherTargets(heldoutTargets, [...heldoutClips.keys()]);
    const scores = tf.tidy(() => {
      const { loss, predicted, swapped } = trackLoss(head, model.videoPrompt(features).queryOutput, held);
      const guess = predicted.direction.argMax(2); // [B, slots]
      const column = (x, k) => x.slice([0, k], [-1, 1]).reshape([-1]);
      const forObject = (k) => tf.where(swapped, column(guess, 1 - k), column(guess, k)); // [B]
      const right = (k) => forObject(k).equal(column(held.direction, k)).cast("float32").mul(column(held.exists, k));
      const oneObject = column(held.exists, 1).equal(0).cast("float32");
      const position = tf.where(
        swapped.reshape([-1, 1, 1]),
        predicted.position.slice([0, 1], [-1, 1]).reshape([-1, F, 2]),
        predicted.position.slice([0, 0], [-1, 1]).reshape([-1, F, 2]),
      );
      const visible = held.visible.slice([0, 0], [-1, 1]).reshape([-1, F]);
      const pixels = position
        .sub(held.position.slice([0, 0], [-1, 1]).reshape([-1, F, 2]))
        .square()
        .sum(2)
        .sqrt()
        .mul(32)
        .mul(visible)
        .sum()
        .div(visible.sum());
      return [
        loss.mean(),
        right(0).add(right(1)).sum().div(held.exists.sum()),
        right(0).mul(oneObject).sum().div(oneObject.sum()),
        pixels,
      ];
    });
    const [loss, direction, directionOne, pixels] = (await Promise.all(scores.map((s) => s.data()))).map((d) => d[0]);
    tf.dispose([...scores, ...Object.values(held)]);
    const out = { loss, direction, directionOneObject: directionOne, positionErrorPx: pixels };
    console.log(
      `held-out head (${label}): ${JSON.stringify(Object.fromEntries(Object.entries(out).map(([k, v]) => [k, +v.toFixed(3)])))}`,
    );
    return out;
  }

  const bridgeVariables = model.videoBridge.trainableParameters();
  const optimizer = new AdamW({ learningRate: options.lr, weightDecay: 0 });
  const random = new Random(31);
  const [N, , K, D] = trainFeatures.shape;
  const flatFeatures = trainFeatures.reshape([N * F, K, D]);
  const losses = { answer: [], track: [] };
  let afterTrackStage;
  const trainStarted = Date.now();
  for (let step = -options.pre; step < options.steps; step++) {
    const answering = step >= 0;
    if (step === 0 && options.pre > 0) afterTrackStage = await heldoutHead();
    const batch = Array.from({ length: 32 }, () => items[random.int(0, items.length)]);
    const text = languageText(
      tokenizer,
      batch.map((i) => i.prompt),
      batch.map((i) => i.target),
    );
    const rows = batch.map((i) => i.clip);
    const frames = tf.tidy(() =>
      tf
        .gather(
          flatFeatures,
          rows.flatMap((clip) => [...Array(F).keys()].map((f) => clip * F + f)),
        )
        .reshape([32, F, K, D]),
    );
    const batchTargets = gatherTargets(targets, rows);
    optimizer.learningRate = answering
      ? learningRateAt(step, options.steps, options.answerLr || options.lr, 50)
      : learningRateAt(step + options.pre, options.pre, options.lr, 50);
    const variables =
      answering && options.freezeQ
        ? [
            ...model.videoBridge.projection.trainableParameters(),
            ...(options.codes ? [codeProjection.weight, codeProjection.bias] : []),
          ]
        : [
            ...bridgeVariables,
            head.weight,
            head.bias,
            ...(options.codes && answering ? [codeProjection.weight, codeProjection.bias] : []),
          ];
    let parts = [];
    const loss = optimizer.minimize(() => {
      const bridge = model.videoPrompt(frames); // once: the track head and the LLM read the same queries
      const answer = answering ? answerLossOf(bridge, text) : tf.scalar(0);
      const track = trackLoss(head, bridge.queryOutput, batchTargets).loss.mean();
      parts = [tf.keep(answer.clone()), tf.keep(track.clone())];
      return answering && options.freezeQ ? answer : answer.add(track.mul(answering ? options.lambda : 1));
    }, variables);
    const [answerLoss, trackLossValue] = await Promise.all(parts.map((p) => p.data()));
    losses.answer.push(answerLoss[0]);
    losses.track.push(trackLossValue[0]);
    tf.dispose([loss, ...parts, frames, text.inputIds, text.attentionMask, text.labels, ...Object.values(batchTargets)]);
    const done = step + options.pre + 1;
    if (done % 50 === 0) {
      const mean = (values) => (values.slice(-50).reduce((s, x) => s + x, 0) / Math.min(50, values.length)).toFixed(4);
      console.log(
        `${answering ? "answer" : "track"} step ${done}: answer loss ${mean(losses.answer)}, track loss ${mean(losses.track)} (${((Date.now() - trainStarted) / 1000).toFixed(0)} s)`,
      );
      if (options.evalEvery && done % options.evalEvery === 0) await heldoutHead();
    }
  }
  const trainSeconds = (Date.now() - trainStarted) / 1000;
  const head_ = await heldoutHead();
  const headViews = {};
  for (const view of ["shuffled", "middle"]) {
    const features = reordered(view);
    headViews[view] = await heldoutHead(features, view);
    features.dispose();
  }
  const heldoutSet = {
    frames: heldoutFeatures,
    questions: questionsOf(heldoutClips),
    captions: heldoutClips.map((c) => c.caption),
  };
  const answers = {};
  if (options.steps > 0)
    for (const frames of ["all", "shuffled", "middle"]) {
      let said;
      if (options.codes) {
        const features = frames === "all" ? heldoutFeatures : reordered(frames);
        said = await answerWithCodes(features, heldoutSet.questions);
        if (features !== heldoutFeatures) features.dispose();
      } else said = await answerClipQuestions(model, tokenizer, heldoutSet, heldoutSet.questions, { frames });
      const byType = {};
      heldoutSet.questions.forEach((q, k) => {
        let type = videoQuestionType(q.question);
        if (type === "direction")
          type = `direction (${heldoutClips[q.clip].tracks.length} object${heldoutClips[q.clip].tracks.length > 1 ? "s" : ""})`;
        (byType[type] ??= []).push(vqaAccuracy(said[k], q.answers));
      });
      answers[frames] = Object.fromEntries(
        Object.entries(byType).map(([type, scores]) => [
          type,
          { accuracy: +(scores.reduce((s, x) => s + x, 0) / scores.length).toFixed(3), n: scores.length },
        ]),
      );
      console.log(frames, JSON.stringify(answers[frames]));
    }
  tf.dispose([trainFeatures, heldoutFeatures, flatFeatures, head.weight, head.bias, codeProjection.weight, codeProjection.bias]);
  optimizer.dispose();
  model.dispose();
  console.log("RESULT", JSON.stringify({ name, options, afterTrackStage, head: head_, headViews, answers, trainSeconds }));
})();
