/**
 * Inertial sensor windows: a phone's 3-axis accelerometer (m/s², gravity
 * included) and gyroscope (rad/s) sampled at 50 Hz for 4 s, for five
 * activities, with the device held at a random orientation, sensor bias and
 * noise; a caption per window (after the human-activity datasets such as
 * UCI-HAR, Anguita et al., 2013).
 *
 * Each activity is a small physical model: a gait cycle at a step rate with
 * harmonics (walking, running, stairs), pedalling (cycling), or stillness with
 * posture sway (sitting).
 */
import { Random } from "../util/random";

export const ACTIVITIES = ["walking", "running", "sitting", "stairs", "cycling"] as const;
export type Activity = (typeof ACTIVITIES)[number];

export interface SensorWindow {
  readonly activity: Activity;
  /** Steps or pedal strokes per second. */
  readonly cadence: number;
  /** "gently" / "briskly" etc.: how hard, from the movement's amplitude. */
  readonly intensity: "light" | "moderate" | "vigorous";
  /** [T, 6] row-major: ax, ay, az, gx, gy, gz. */
  readonly values: Float32Array;
  readonly caption: string;
}

export const SENSOR_RATE = 50;
export const SENSOR_CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"] as const;
const GRAVITY = 9.81;

/** Per-activity gait: cadence range (Hz), vertical and forward acceleration amplitudes (m/s²), rotation amplitude (rad/s). */
const MODELS: Record<Activity, { cadence: [number, number]; vertical: [number, number]; forward: number; rotation: number }> = {
  walking: { cadence: [1.6, 2.1], vertical: [1.5, 3.0], forward: 1.0, rotation: 0.6 },
  running: { cadence: [2.5, 3.1], vertical: [6.0, 10.0], forward: 2.5, rotation: 1.6 },
  sitting: { cadence: [0.2, 0.35], vertical: [0.02, 0.08], forward: 0.03, rotation: 0.03 },
  stairs: { cadence: [1.3, 1.7], vertical: [2.5, 4.5], forward: 0.6, rotation: 0.8 },
  cycling: { cadence: [1.0, 1.5], vertical: [0.3, 0.8], forward: 0.5, rotation: 2.2 },
};

function gaussian(random: Random): number {
  const u = Math.max(random.next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random.next());
}

/** A random rotation matrix (uniform axis, any angle): the phone's orientation in the pocket. */
function randomRotation(random: Random): number[] {
  const [a, b, c] = [random.next() * 2 * Math.PI, Math.acos(2 * random.next() - 1), random.next() * 2 * Math.PI];
  const [ca, sa, cb, sb, cc, sc] = [Math.cos(a), Math.sin(a), Math.cos(b), Math.sin(b), Math.cos(c), Math.sin(c)];
  // Z(a)·Y(b)·Z(c)
  return [ca * cb * cc - sa * sc, -ca * cb * sc - sa * cc, ca * sb, sa * cb * cc + ca * sc, -sa * cb * sc + ca * cc, sa * sb, -sb * cc, sb * sc, cb];
}

/** A window of `seconds` (default 4) of `activity`. */
export function sampleSensorWindow(random: Random, activity: Activity, seconds = 4): SensorWindow {
  const model = MODELS[activity];
  if (!model) throw new Error(`sampleSensorWindow: unknown activity ${JSON.stringify(activity)}; expected one of ${ACTIVITIES.join(", ")}`);
  const T = Math.round(seconds * SENSOR_RATE);
  const cadence = model.cadence[0] + random.next() * (model.cadence[1] - model.cadence[0]);
  const strength = random.next();
  const vertical = model.vertical[0] + strength * (model.vertical[1] - model.vertical[0]);
  const rotation = randomRotation(random);
  const phase = random.next() * 2 * Math.PI;
  const bias = Array.from({ length: 6 }, (_, k) => gaussian(random) * (k < 3 ? 0.05 : 0.01));
  const noise = [0.04, 0.005]; // accelerometer, gyroscope standard deviations
  const tilt = activity === "sitting" || activity === "cycling" ? 0.5 + random.next() * 0.5 : 0.1 * random.next(); // posture lean, rad
  const values = new Float32Array(T * 6);
  for (let i = 0; i < T; i++) {
    const t = i / SENSOR_RATE;
    const w = 2 * Math.PI * cadence * t + phase;
    let body: number[];
    if (activity === "cycling") {
      // Pedalling: the thigh swings at the cadence; little impact
      body = [model.forward * Math.sin(w) * 0.5, vertical * Math.sin(w), 0.2 * Math.sin(2 * w), model.rotation * Math.cos(w), 0.2 * Math.sin(w), 0.1 * Math.sin(2 * w)];
    } else if (activity === "sitting") {
      body = [0.02 * Math.sin(w), vertical * Math.sin(w * 0.7), 0.02 * Math.cos(w), 0.02 * Math.sin(w), 0.02 * Math.cos(w * 1.3), 0.01 * Math.sin(w)];
    } else {
      // Heel strikes: the fundamental plus sharper harmonics; stairs add a slow climb asymmetry
      const impact = Math.sin(w) + 0.5 * Math.sin(2 * w + 0.4) + 0.25 * Math.sin(3 * w + 0.9);
      const climb = activity === "stairs" ? 0.8 * Math.sin(w / 2) : 0;
      body = [model.forward * Math.sin(w + 1.1), vertical * (impact + climb) / 1.5, 0.3 * vertical * Math.sin(w / 2), model.rotation * Math.sin(w / 2), 0.4 * model.rotation * Math.sin(w), 0.3 * model.rotation * Math.cos(w / 2)];
    }
    // Gravity in the body frame (leaning forward by `tilt`), then everything into the device frame.
    const world = [body[0] + GRAVITY * Math.sin(tilt), body[1] + GRAVITY * Math.cos(tilt), body[2]];
    for (let axis = 0; axis < 3; axis++) {
      let acc = 0;
      let gyro = 0;
      for (let k = 0; k < 3; k++) {
        acc += rotation[axis * 3 + k] * world[k];
        gyro += rotation[axis * 3 + k] * body[3 + k];
      }
      values[i * 6 + axis] = acc + bias[axis] + noise[0] * gaussian(random);
      values[i * 6 + 3 + axis] = gyro + bias[3 + axis] + noise[1] * gaussian(random);
    }
  }
  const intensity = strength < 0.33 ? "light" : strength < 0.66 ? "moderate" : "vigorous";
  const pace = cadence.toFixed(1);
  const captions: Record<Activity, string> = {
    walking: `the person is walking at a ${intensity === "vigorous" ? "brisk" : intensity === "light" ? "relaxed" : "steady"} pace, about ${pace} steps per second`,
    running: `the person is running ${intensity === "vigorous" ? "hard" : "at an easy pace"}, about ${pace} steps per second`,
    sitting: "the person is sitting still, with only small movements",
    stairs: `the person is climbing stairs, about ${pace} steps per second`,
    cycling: `the person is cycling, pedalling about ${(cadence * 60).toFixed(0)} times a minute`,
  };
  return { activity, cadence: Math.round(cadence * 100) / 100, intensity, values, caption: captions[activity] };
}
