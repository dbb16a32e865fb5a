"""Ridge probes of an object's center from per-frame features (bench/video_llama_features.js writes them).

Split by clip (first 60% train, next 20% to pick the ridge strength, last 20% test); features standardised
on the train frames; reports the test mean absolute error in pixels (64×64 frames) and the error of
predicting the train mean (the no-information baseline). Then the initial direction of each test clip
(left/right/up/down, from the true first step) read from the probe's predicted positions of frames 0-3
(the larger of the x and y slopes decides): what a bridge could read of motion from these features.
"""
import json
import sys

import numpy as np

folder = sys.argv[1]
meta = json.load(open(f"{folder}/targets.json"))
targets = np.array(meta["targets"], dtype=np.float64)
clip, xy = targets[:, 0].astype(int), targets[:, 1:]
clips = meta["clips"]
train, val = clip < int(0.6 * clips), (clip >= int(0.6 * clips)) & (clip < int(0.8 * clips))
test = clip >= int(0.8 * clips)
for name in ["patches", "queries", "cls"]:
    x = np.fromfile(f"{folder}/{name}.f32", dtype=np.float32).astype(np.float64).reshape(meta["frames"], -1)
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    x = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    best = None
    for lam in [0.1, 1, 10, 100, 1000, 10000]:
        # dual form: w = Xᵀ (X Xᵀ + λI)⁻¹ y, as many unknowns as train frames
        a = x[train]
        w = a.T @ np.linalg.solve(a @ a.T + lam * np.eye(len(a)), xy[train])
        err = np.abs(x[val] @ w - xy[val]).mean()
        if best is None or err < best[0]:
            best = (err, lam, w)
    _, lam, w = best
    test_error = np.abs(x[test] @ w - xy[test]).mean(0)
    predicted = x @ w
    correct = total = 0
    for c in sorted(set(clip[test])):
        rows = np.where(clip == c)[0]
        step = xy[rows[1]] - xy[rows[0]]
        truth = ("right" if step[0] > 0 else "left") if abs(step[0]) > abs(step[1]) else ("down" if step[1] > 0 else "up")
        slope = np.polyfit(np.arange(4), predicted[rows[:4]], 1)[0]
        guess = ("right" if slope[0] > 0 else "left") if abs(slope[0]) > abs(slope[1]) else ("down" if slope[1] > 0 else "up")
        correct += guess == truth
        total += 1
    baseline = np.abs(xy[train].mean(0) - xy[test]).mean(0)
    print(json.dumps({"suite": "frame_position_probe", "features": name, "dims": x.shape[1] - 1, "ridge": lam,
                      "test_mae_px": [round(v, 2) for v in test_error], "mean_baseline_px": [round(v, 2) for v in baseline],
                      "direction_from_probe": round(correct / total, 3), "direction_clips": total, "direction_chance": 0.25,
                      "frames": {"train": int(train.sum()), "test": int(test.sum())}}))
