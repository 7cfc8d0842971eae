/**
 * The seed's PyTorch program (the CIFAR-10 tutorial network, SGD with momentum, float16 autocast and
 * a GradScaler) in mixprec, line for line where JavaScript allows.
 *
 *   npm run build && node build/examples/cifar10-amp.js ../shared/datasets/cifar-10-binary.tar.gz
 */
import * as mx from 'mixprec';

const nn = mx.nn;
const F = mx.nn.functional;
const transforms = mx.data.transforms;

class Net extends nn.Module {
  declare readonly conv1: mx.nn.Conv2d;
  declare readonly pool: mx.nn.MaxPool2d;
  declare readonly conv2: mx.nn.Conv2d;
  declare readonly fc1: mx.nn.Linear;
  declare readonly fc2: mx.nn.Linear;
  declare readonly fc3: mx.nn.Linear;

  constructor() {
    super();
    this.registerModule('conv1', new nn.Conv2d(3, 6, 5));
    this.registerModule('pool', new nn.MaxPool2d(2, { stride: 2 }));
    this.registerModule('conv2', new nn.Conv2d(6, 16, 5));
    this.registerModule('fc1', new nn.Linear(16 * 5 * 5, 120));
    this.registerModule('fc2', new nn.Linear(120, 84));
    this.registerModule('fc3', new nn.Linear(84, 10));
  }

  forward(x: mx.Tensor): mx.Tensor {
    x = this.pool.call(F.relu(this.conv1.call(x)));
    x = this.pool.call(F.relu(this.conv2.call(x)));
    x = x.flatten(1);
    x = F.relu(this.fc1.call(x));
    x = F.relu(this.fc2.call(x));
    return this.fc3.call(x);
  }
}

async function main(root: string, epochs: number): Promise<void> {
  mx.manualSeed(0);
  const transform = new transforms.Compose([new transforms.ToTensor(), new transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])]);
  const { train: trainset, test: testset } = await mx.data.CIFAR10.loadSplits(root, { download: true, trainTransform: transform, testTransform: transform });
  const trainloader = new mx.data.DataLoader(trainset, { batchSize: 64, shuffle: true });
  const testloader = new mx.data.DataLoader(testset, { batchSize: 500, shuffle: false });

  const net = new Net();
  const criterion = new nn.CrossEntropyLoss();
  const optimizer = new mx.optim.SGD(net.parameters(), { lr: 0.01, momentum: 0.9 });
  const scaler = new mx.amp.GradScaler();

  for (let epoch = 0; epoch < epochs; epoch++) {
    let runningLoss = 0;
    let i = 0;
    for await (const [inputs, labels] of trainloader) {
      const loss = mx.scope(() => {
        optimizer.zeroGrad();
        const loss = mx.amp.autocast({ dtype: 'float16' }, () => {
          const outputs = net.call(inputs);
          return criterion.call(outputs, labels);
        });
        scaler.scale(loss).backward();
        scaler.step(optimizer);
        scaler.update();
        return loss;
      });
      runningLoss += await loss.item();
      if (++i % 200 === 0) {
        console.log(`[${epoch + 1}, ${i}] loss: ${(runningLoss / 200).toFixed(3)}`);
        runningLoss = 0;
      }
    }
  }

  let correct = 0;
  let total = 0;
  for await (const [images, labels] of testloader) {
    const predicted = mx.noGrad(() => mx.argmax(net.call(images), 1));
    correct += await mx.eq(predicted, labels).sum().item();
    total += labels.shape[0]!;
  }
  console.log(`test accuracy: ${((100 * correct) / total).toFixed(2)}%`);
}

await main(process.argv[2] ?? './data', Number(process.argv[3] ?? 2));
