/** Per-channel means and standard deviations of the training sets, for Normalize (the usual values). */
export const CIFAR10_STATS = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] } as const;
export const MNIST_STATS = { mean: [0.1307], std: [0.3081] } as const;
