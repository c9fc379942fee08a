"""Built-in architecture families; importing this package registers every one of them.

Each module reproduces the state-dict layout of the public code named in its docstring, so that code's
checkpoints load with ``strict=True``. None imports timm or torchvision at import time.
"""

from libkd_bench.models.architectures import (  # noqa: F401  (imported to register)
    chenyaofo,
    cifar_resnet,
    controls,
    huyvnphan,
    huyvnphan_inception,
    kuangliu,
    kuangliu_mobile,
    kuangliu_multibranch,
    kuangliu_resnet_variants,
    mobilenetv2,
    rednet,
    shufflenet,
    timm_models,
    vgg,
    vit,
    wide_resnet,
)
