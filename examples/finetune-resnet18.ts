/**
 * The seed's fine-tuning example: torchvision's ImageNet-pretrained ResNet-18 with a new 10-class
 * head, trained on CIFAR-10 under float16 autocast with a GradScaler, then saved for PyTorch.
 *
 *   npm run build && node build/examples/finetune-resnet18.js [CIFAR_ROOT] [EPOCHS=1] [IMAGE_SIZE=224] [WEIGHTS=IMAGENET1K_V1]
 *
 * The weights are downloaded once into $MIXPREC_HOME (default ~/.cache/mixprec) from torchvision's
 * URL, or read from a .pth / .safetensors file given as WEIGHTS. PyTorch, for comparison:
 *
 *   model = torchvision.models.resnet18(weights="IMAGENET1K_V1")
 *   model.fc = nn.Linear(model.fc.in_features, 10)
 *   ... with torch.autocast("cuda", dtype=torch.float16): loss = criterion(model(x), y)
 *   scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update()
 *   torch.save(model.state_dict(), "resnet18-cifar10.pth")
 */
import * as mx from 'mixprec';

const nn = mx.nn;
const T = mx.data.transforms;

async function main(root: string, epochs: number, imageSize: number, weights: string): Promise<void> {
  mx.manualSeed(0);
  // ImageNet's statistics and the image size the weights were trained at (CIFAR's 32 pixels upsampled).
  const normalize = new T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
  const trainTransform = new T.Compose([new T.RandomHorizontalFlip(), new T.ToTensor(), new T.Resize(imageSize), normalize]);
  const testTransform = new T.Compose([new T.ToTensor(), new T.Resize(imageSize), normalize]);
  const { train, test } = await mx.data.CIFAR10.loadSplits(root, { download: true, trainTransform, testTransform });
  const trainloader = new mx.data.DataLoader(train, { batchSize: 32, shuffle: true });
  const testloader = new mx.data.DataLoader(test, { batchSize: 64, shuffle: false });

  // numClasses 10: the backbone from the weights, a freshly initialised fc for CIFAR-10's classes.
  const model = await mx.models.resnet18({ weights, numClasses: 10 });
  const criterion = new nn.CrossEntropyLoss();
  const optimizer = new mx.optim.SGD(model.parameters(), { lr: 0.001, momentum: 0.9 });
  const scaler = new mx.amp.GradScaler();

  for (let epoch = 0; epoch < epochs; epoch++) {
    model.train();
    let runningLoss = 0;
    let i = 0;
    for await (const [inputs, labels] of trainloader) {
      const loss = mx.scope(() => {
        optimizer.zeroGrad();
        const loss = mx.amp.autocast({ dtype: 'float16' }, () => criterion.call(model.call(inputs), labels));
        scaler.scale(loss).backward();
        scaler.step(optimizer);
        scaler.update();
        return loss;
      });
      runningLoss += await loss.item();
      loss.dispose();
      if (++i % 50 === 0) {
        console.log(`[${epoch + 1}, ${i}] loss: ${(runningLoss / 50).toFixed(3)}`);
        runningLoss = 0;
      }
    }
  }

  model.eval();
  let correct = 0;
  let total = 0;
  for await (const [images, labels] of testloader) {
    const hits = mx.noGrad(() => mx.scope(() => mx.eq(mx.argmax(mx.amp.autocast({ dtype: 'float16' }, () => model.call(images)), 1), labels).sum()));
    correct += await hits.item();
    hits.dispose();
    total += labels.shape[0]!;
  }
  console.log(`test accuracy: ${((100 * correct) / total).toFixed(2)}%`);
  await mx.io.saveTorch('resnet18-cifar10.pth', model.stateDict());
  console.log('saved resnet18-cifar10.pth (torch.load(path, weights_only=True) reads it)');
}

await main(process.argv[2] ?? './data', Number(process.argv[3] ?? 1), Number(process.argv[4] ?? 224), process.argv[5] ?? 'IMAGENET1K_V1');
