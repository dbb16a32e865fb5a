// tfjs's cpu backend prints a banner about tfjs-node on its first write; tests use it as a reference backend.
import * as tf from "@tensorflow/tfjs";

await tf.setBackend("cpu");
(tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
