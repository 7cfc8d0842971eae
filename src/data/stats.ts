/** Per-channel means and standard deviations of the training sets, for Normalize (the usual values). */
export const CIFAR10_STATS = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] } as const;
export const MNIST_STATS = { mean: [0.1307], std: [0.3081] } as const;
/** torchvision's ImageNet statistics, which its pretrained weights expect (mixprec train --pretrained). */
export const IMAGENET_STATS = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;
