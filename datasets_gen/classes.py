"""CIFAR-10's class names in the official label order."""

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
NUM_CLASSES = len(CIFAR10_CLASSES)
IMAGE_SHAPE = (32, 32, 3)
