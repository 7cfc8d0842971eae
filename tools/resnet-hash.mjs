#!/usr/bin/env node
// Same bits check for kernel changes (run `npm run build` first): a hash of every ResNet-18
// parameter and gradient after three training steps (torchvision's layout, 32x32, batch 64, SGD
// momentum, the precision's autocast and GradScaler) on the wasm backend.
//
//   node tools/resnet-hash.mjs [ROOT] [THREADS] [PRECISION]     (defaults: this checkout, 2, fp16)
//
// ROOT is a checkout with a built dist/ (a copy of the base build, say): run it for the base and
// for the change, at 1 and 2 threads, fp32 / fp16 / bf16, and compare the lines.
import { createHash } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const [rootArg, threadsArg = "2", precision = "fp16"] = process.argv.slice(2);
const root = resolve(rootArg ?? join(dirname(fileURLToPath(import.meta.url)), ".."));
const dist = (p) => pathToFileURL(join(root, "dist", p)).href;
await import(dist("index.js"));
const { selectBackend } = await import(dist("bench/common.js"));
const { Generator, manualSeed } = await import(dist("random/generator.js"));
const { randint, randn } = await import(dist("ops/creation.js"));
const { createModel } = await import(dist("models/index.js"));
const { SGD } = await import(dist("optim/sgd.js"));
const { autocastDtype, scalerFor, trainStep } = await import(dist("train/classifier.js"));

await selectBackend("wasm", Number(threadsArg));
manualSeed(0);
const model = createModel("resnet18", { inChannels: 3, imageSize: 32, numClasses: 10, stem: "imagenet" });
const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
const gen = new Generator(1);
const x32 = randn([64, 3, 32, 32], { generator: gen });
const dtype = autocastDtype(precision);
const x = dtype ? x32.to(dtype) : x32;
const y = randint(0, 10, [64], { generator: gen });
const ctx = { model, optimizer, scaler: scalerFor(precision), precision };
const losses = [];
for (let i = 0; i < 3; i++) {
  const { loss } = trainStep(ctx, x, y);
  losses.push(await loss.item());
  loss.dispose();
}
const h = createHash("sha256");
for (const p of model.parameters()) {
  h.update(Buffer.from((await p.data()).buffer));
  if (p.grad) h.update(Buffer.from((await p.grad.data()).buffer));
}
console.log(`${precision}, ${threadsArg} thread(s): ${h.digest("hex").slice(0, 16)} (losses ${losses.join(", ")})`);
process.exit(0);
